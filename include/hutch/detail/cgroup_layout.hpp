// hutch — how the host mounts cgroups: the layout (v2, hybrid, v1), its hierarchies and the
// caller's own cgroup in each; small cgroupfs file helpers.
#pragma once

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

#include <cerrno>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "syscall.hpp"

namespace hutch {

/// How the host mounts cgroups (public: see LiveCGroup::check()).
enum class CGroupLayout : std::uint8_t {
  unified,  ///< cgroup v2 only
  hybrid,   ///< v1 controllers, plus a v2 mount with no controllers (systemd's hybrid mode)
  legacy,   ///< v1 only
};

namespace detail {

/// A whole (small, kernel-made) file; empty if it cannot be read. Plain read(2): no stream,
/// no locale, nothing that misbehaves when the process is out of descriptors.
inline std::string read_text(const std::string& path, bool* ok = nullptr) {
  std::string text;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ok) *ok = fd >= 0;
  if (fd < 0) return text;
  char buffer[8192];
  for (;;) {
    const ssize_t n = sys::retry([&] { return ::read(fd, buffer, sizeof buffer); });
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

inline bool write_text(const std::string& path, std::string_view text) {
  return sys::write_file(path.c_str(), text.data(), text.size());
}

/// The value after `key ` in a flat-keyed file (memory.events, cpu.stat, ...).
inline std::uint64_t keyed(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string k;
  std::uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

inline std::uint64_t number(const std::string& text) {
  try {
    return std::stoull(text);
  } catch (...) {
    return 0;
  }
}

/// A cgroup hierarchy this process belongs to: where it is mounted, which controllers it has
/// and the cgroup this process is in.
struct Hierarchy {
  std::string mount;  // e.g. /sys/fs/cgroup/memory
  std::vector<std::string> controllers;
  std::string own;  // this process's cgroup path in it, e.g. /user.slice
  bool v2 = false;
  std::string own_dir() const { return own == "/" ? mount : mount + own; }
  bool has(std::string_view controller) const {
    return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
  }
};

struct Layout {
  CGroupLayout kind = CGroupLayout::legacy;
  std::vector<Hierarchy> hierarchies;  // v2: exactly one; v1: one per mounted hierarchy
};

/// Splits `text` at `separator` (empty pieces kept), calling `f` with each piece.
template <class F>
inline void split(std::string_view text, char separator, F f) {
  for (;;) {
    const auto at = text.find(separator);
    f(text.substr(0, at));
    if (at == std::string_view::npos) return;
    text.remove_prefix(at + 1);
  }
}

/// The whitespace-separated words of one line.
inline std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  split(line, ' ', [&](std::string_view w) {
    if (!w.empty()) out.push_back(w);
  });
  return out;
}

/// One /proc/self/mountinfo line's cgroup hierarchy, if it is one: its mount point and
/// controllers (fields: id parent dev root point options [optional...] - fstype source super).
inline std::optional<Hierarchy> hierarchy_of(std::string_view line) {
  const auto w = words(line);
  std::size_t dash = 6;
  while (dash < w.size() && w[dash] != "-") ++dash;
  if (w.size() < 5 || dash + 1 >= w.size()) return std::nullopt;
  const std::string_view fstype = w[dash + 1];
  Hierarchy h;
  h.mount = std::string(w[4]);
  if (fstype == "cgroup2") {
    h.v2 = true;
    split(read_text(h.mount + "/cgroup.controllers"), ' ', [&](std::string_view c) {
      while (!c.empty() && (c.back() == '\n')) c.remove_suffix(1);
      if (!c.empty()) h.controllers.emplace_back(c);
    });
    return h;
  }
  if (fstype != "cgroup" || dash + 3 >= w.size()) return std::nullopt;
  split(w[dash + 3], ',', [&](std::string_view o) {
    for (std::string_view known :
         {"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices"}) {
      if (o == known) h.controllers.emplace_back(o);
    }
  });
  if (h.controllers.empty()) return std::nullopt;
  return h;
}

/// The cgroup hierarchies mountinfo lists that can be seen: a mount that a later one covers
/// (the same mount point, or one of its parents, mounted over it: a tmpfs over /sys/fs/cgroup
/// with new hierarchies below, as engines' sandboxes do) is left out.
inline std::vector<Hierarchy> visible_hierarchies(std::string_view mountinfo) {
  std::vector<std::pair<std::size_t, Hierarchy>> found;  // by line
  std::vector<std::string> points;
  split(mountinfo, '\n', [&](std::string_view line) {
    const auto w = words(line);
    if (w.size() < 5) return;
    points.emplace_back(w[4]);
    if (auto h = hierarchy_of(line)) found.emplace_back(points.size() - 1, std::move(*h));
  });
  std::vector<Hierarchy> out;
  for (auto& [index, h] : found) {
    bool covered = false;
    for (std::size_t later = index + 1; later < points.size() && !covered; ++later) {
      const std::string& p = points[later];
      covered = h.mount == p || h.mount.starts_with(p == "/" ? p : p + "/");
    }
    if (!covered) out.push_back(std::move(h));
  }
  return out;
}

/// Reads /proc/self/mountinfo and /proc/self/cgroup (with plain reads and no streams: this
/// must work when the process is short of descriptors, and say so when it cannot).
inline result<Layout> detect_layout() {
  bool readable = false;
  const std::string mountinfo = read_text("/proc/self/mountinfo", &readable);
  if (!readable) return last_error(Step::cgroup_detect, "/proc/self/mountinfo");
  std::vector<Hierarchy> found = visible_hierarchies(mountinfo);
  // Our own cgroup in each hierarchy: "id:controllers:path" lines.
  split(read_text("/proc/self/cgroup"), '\n', [&](std::string_view line) {
    const auto first = line.find(':');
    const auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) return;
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string path(line.substr(second + 1));
    for (auto& h : found) {
      bool listed = false;
      split(controllers, ',',
            [&](std::string_view c) { listed |= !h.controllers.empty() && c == h.controllers[0]; });
      if ((h.v2 && controllers.empty()) || (!h.v2 && listed)) h.own = path;
    }
  });
  Layout layout;
  const Hierarchy* v2 = nullptr;
  bool any_v1 = false;
  for (const auto& h : found) {
    any_v1 |= !h.v2;
    if (h.v2) v2 = &h;
  }
  if (!any_v1 && v2) {
    layout.kind = CGroupLayout::unified;
    layout.hierarchies.push_back(*v2);
  } else if (any_v1) {
    layout.kind = v2 ? CGroupLayout::hybrid : CGroupLayout::legacy;
    for (const auto& h : found) {
      if (!h.v2 && !h.own.empty()) layout.hierarchies.push_back(h);
    }
  } else {
    return make_error(Step::cgroup_detect, ENOENT, "/proc/self/mountinfo",
                      "no cgroup filesystem is mounted");
  }
  return layout;
}

/// The layout, detected once per process — once it has been read: a failure (no descriptor
/// left, /proc not yet mounted) is returned to that caller and tried again by the next,
/// never kept for the process's life.
inline const result<Layout>& host_layout() {
  static std::atomic<const result<Layout>*> known{nullptr};
  static std::mutex mutex;
  if (const auto* layout = known.load(std::memory_order_acquire)) return *layout;
  std::lock_guard lock(mutex);
  if (const auto* layout = known.load(std::memory_order_relaxed)) return *layout;
  result<Layout> detected = detect_layout();
  if (detected) {
    const auto* layout = new result<Layout>(std::move(detected));  // never freed: a static
    known.store(layout, std::memory_order_release);
    return *layout;
  }
  thread_local result<Layout> failure{Error{}};
  failure = std::move(detected);
  return failure;
}

/// Expands a cpu/mem list such as "0-2,5" into numbers; false if malformed.
inline bool parse_list(std::string_view text, std::vector<unsigned>& out) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return true;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    std::string_view part =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    auto dash = part.find('-');
    try {
      unsigned a = static_cast<unsigned>(std::stoul(std::string(part.substr(0, dash))));
      unsigned b = dash == std::string_view::npos
                       ? a
                       : static_cast<unsigned>(std::stoul(std::string(part.substr(dash + 1))));
      if (b < a || b - a > 4096) return false;
      for (unsigned i = a; i <= b; ++i) out.push_back(i);
    } catch (...) {
      return false;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return true;
}

}  // namespace detail
}  // namespace hutch
