// hutch — how the host mounts cgroups: the layout (v2, hybrid, v1), its hierarchies and the
// caller's own cgroup in each; small cgroupfs file helpers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
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

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
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

/// Reads /proc/self/mountinfo and /proc/self/cgroup.
inline result<Layout> detect_layout() {
  Layout layout;
  std::ifstream mountinfo("/proc/self/mountinfo");
  if (!mountinfo) return last_error(Step::cgroup_detect, "/proc/self/mountinfo");
  std::string line;
  Hierarchy* v2 = nullptr;
  std::vector<Hierarchy> found;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, options, field;
    fields >> id >> parent >> dev >> root >> point >> options;
    while (fields >> field && field != "-") {
    }
    std::string fstype, source, super;
    fields >> fstype >> source >> super;
    if (fstype == "cgroup2") {
      Hierarchy h;
      h.mount = point;
      h.v2 = true;
      std::istringstream list(read_text(point + "/cgroup.controllers"));
      for (std::string c; list >> c;) h.controllers.push_back(c);
      found.push_back(h);
    } else if (fstype == "cgroup") {
      Hierarchy h;
      h.mount = point;
      std::istringstream opts(super);
      for (std::string o; std::getline(opts, o, ',');) {
        if (o == "cpu" || o == "cpuacct" || o == "cpuset" || o == "memory" || o == "pids" ||
            o == "blkio" || o == "freezer" || o == "devices") {
          h.controllers.push_back(o);
        }
      }
      if (!h.controllers.empty()) found.push_back(h);
    }
  }
  // Our own cgroup in each hierarchy.
  std::ifstream self("/proc/self/cgroup");
  while (std::getline(self, line)) {
    auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    for (auto& h : found) {
      if (h.v2 && controllers.empty()) h.own = path;
      if (!h.v2 && !h.controllers.empty() &&
          ("," + controllers + ",").find("," + h.controllers[0] + ",") != std::string::npos) {
        h.own = path;
      }
    }
  }
  bool any_v1 = false;
  for (auto& h : found) any_v1 |= !h.v2;
  for (auto& h : found) {
    if (h.v2) v2 = &h;
  }
  if (!any_v1 && v2) {
    layout.kind = CGroupLayout::unified;
    layout.hierarchies.push_back(*v2);
  } else if (any_v1) {
    layout.kind = v2 ? CGroupLayout::hybrid : CGroupLayout::legacy;
    for (auto& h : found) {
      if (!h.v2 && !h.own.empty()) layout.hierarchies.push_back(h);
    }
  } else {
    return make_error(Step::cgroup_detect, ENOENT, "/proc/self/mountinfo",
                      "no cgroup filesystem is mounted");
  }
  return layout;
}

/// The layout, detected once per process.
inline const result<Layout>& host_layout() {
  static const result<Layout> layout = detect_layout();
  return layout;
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
