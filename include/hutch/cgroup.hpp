// hutch — CGroup: resource limits (the spec) and LiveCGroup (a container's cgroup while it
// lives): cgroup v2 (unified) and v1 (legacy and hybrid layouts) behind one interface.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "detail/syscall.hpp"
#include "error.hpp"
#include "fd.hpp"

namespace hutch {

/// Size literals: `64_MiB`, `1_GiB`.
namespace literals {
constexpr std::uint64_t operator""_KiB(unsigned long long n) {
  return n << 10;
}
constexpr std::uint64_t operator""_MiB(unsigned long long n) {
  return n << 20;
}
constexpr std::uint64_t operator""_GiB(unsigned long long n) {
  return n << 30;
}
}  // namespace literals

/// Limits for a block device (io.max on v2, blkio.throttle.* on v1); 0 means no limit.
struct IoMax {
  std::string device;  // a block device node, e.g. "/dev/vda"
  std::uint64_t read_bps = 0, write_bps = 0, read_iops = 0, write_iops = 0;
};

/// The cgroup a container gets: a name and its limits. A new directory `<caller's cgroup>/
/// <name>` is created in each hierarchy needed (cgroup v2: one; v1: one per controller), the
/// child is placed in it before its command runs, and it is removed with the Child.
///
/// Values are checked before anything is created. The name must not exist yet: hutch never
/// adopts a cgroup it did not create. An empty name picks a unique one.
class CGroup {
 public:
  CGroup() = default;
  explicit CGroup(std::string name) : name_(std::move(name)) {}

  /// memory.max (v1 memory.limit_in_bytes): above it the kernel reclaims, then OOM-kills.
  CGroup& memory_max(std::uint64_t bytes) { return set(memory_max_, bytes); }
  /// memory.high (v1: memory.soft_limit_in_bytes, a weaker hint): throttles and reclaims.
  CGroup& memory_high(std::uint64_t bytes) { return set(memory_high_, bytes); }
  /// memory.swap.max (v1: memory.memsw.limit_in_bytes = memory_max + this).
  CGroup& memory_swap_max(std::uint64_t bytes) { return set(memory_swap_max_, bytes); }
  /// cpu.max as a fraction of one CPU (0.5: half a CPU), over a 100 ms period.
  CGroup& cpu_max(double cpus) {
    cpu_fraction_ = cpus;
    cpu_quota_us_ = cpus > 0 ? static_cast<std::uint64_t>(std::llround(cpus * 100000)) : 0;
    cpu_period_us_ = 100000;
    return *this;
  }
  /// cpu.max as quota and period in microseconds (v1 cpu.cfs_quota_us / cfs_period_us).
  CGroup& cpu_max(std::uint64_t quota_us, std::uint64_t period_us) {
    cpu_fraction_ = 1;
    cpu_quota_us_ = quota_us;
    cpu_period_us_ = period_us;
    return *this;
  }
  /// cpu.weight, 1..10000, default 100 (v1 cpu.shares, converted).
  CGroup& cpu_weight(std::uint64_t weight) { return set(cpu_weight_, weight); }
  /// cpuset.cpus, e.g. "0-1,3"; must be a subset of the caller's.
  CGroup& cpuset_cpus(std::string cpus) {
    cpuset_cpus_ = std::move(cpus);
    return *this;
  }
  CGroup& cpuset_mems(std::string mems) {
    cpuset_mems_ = std::move(mems);
    return *this;
  }
  /// pids.max: fork and clone fail with EAGAIN inside beyond it.
  CGroup& pids_max(std::uint64_t count) { return set(pids_max_, count); }
  /// io.weight, 1..10000, default 100 (v1 blkio.weight, converted).
  CGroup& io_weight(std::uint64_t weight) { return set(io_weight_, weight); }
  CGroup& io_max(IoMax limit) {
    io_max_.push_back(std::move(limit));
    return *this;
  }

  const std::string& name() const noexcept { return name_; }

 private:
  friend class LiveCGroup;
  CGroup& set(std::optional<std::uint64_t>& field, std::uint64_t value) {
    field = value;
    return *this;
  }
  std::string name_;
  std::optional<std::uint64_t> memory_max_, memory_high_, memory_swap_max_, cpu_weight_, pids_max_,
      io_weight_;
  std::optional<double> cpu_fraction_;
  std::uint64_t cpu_quota_us_ = 0, cpu_period_us_ = 0;
  std::string cpuset_cpus_, cpuset_mems_;
  std::vector<IoMax> io_max_;
};

/// What a container's cgroup has used so far. Fields the kernel does not report are 0.
struct CGroupStats {
  std::uint64_t memory_current = 0;  // bytes
  std::uint64_t memory_peak = 0;     // bytes (v2 memory.peak needs Linux 5.19)
  std::uint64_t cpu_user_us = 0;
  std::uint64_t cpu_system_us = 0;
  std::uint64_t pids_current = 0;
  std::uint64_t io_read_bytes = 0;
  std::uint64_t io_write_bytes = 0;
  std::uint64_t cpu_periods = 0;  // enforcement periods elapsed under cpu_max
  std::uint64_t cpu_throttled_periods = 0;
  std::uint64_t cpu_throttled_us = 0;
};

/// How the host mounts cgroups.
enum class CGroupLayout : std::uint8_t {
  unified,  ///< cgroup v2 only
  hybrid,   ///< v1 controllers, plus a v2 mount with no controllers (systemd's hybrid mode)
  legacy,   ///< v1 only
};

namespace detail {

struct SpawnAccess;

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
    for (auto& c : controllers) {
      if (c == controller) return true;
    }
    return false;
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

inline std::atomic<unsigned> cgroup_counter{0};

}  // namespace detail

/// A container's cgroup while it exists: created by spawn(), owned by the Child, removed when
/// the Child is gone (emptied first, rmdir retried while the kernel finishes).
class LiveCGroup {
 public:
  LiveCGroup(const LiveCGroup&) = delete;
  LiveCGroup& operator=(const LiveCGroup&) = delete;
  LiveCGroup(LiveCGroup&& other) noexcept
      : layout_(other.layout_),
        dirs_(std::exchange(other.dirs_, {})),
        controllers_(std::exchange(other.controllers_, {})),
        named_(other.named_) {}
  LiveCGroup& operator=(LiveCGroup&&) = delete;
  ~LiveCGroup() { (void)remove(); }

  /// Checks `spec` and creates its cgroup directories with the limits written. On any failure
  /// what was created is removed again.
  static result<LiveCGroup> create(const CGroup& spec) {
    BOOST_OUTCOME_TRYV(check(spec));
    return make(spec);
  }

  /// Checks `spec` against the host's hierarchies without creating anything; returns the
  /// host's layout.
  static result<CGroupLayout> check(const CGroup& spec) {
    const auto& layout = detail::host_layout();
    if (!layout) return layout.error();
    BOOST_OUTCOME_TRYV(validate(spec, *layout));
    return layout->kind;
  }

  CGroupLayout layout() const noexcept { return layout_; }
  /// Whether the caller chose the name (CGroup{"name"}); otherwise it is unique to this one.
  bool named() const noexcept { return named_; }
  /// The directories created, one per hierarchy (v2: one).
  const std::vector<std::string>& paths() const noexcept { return dirs_; }

  /// A directory fd for clone3(CLONE_INTO_CGROUP) on v2; -1 on v1.
  Fd open_for_clone() const {
    if (layout_ != CGroupLayout::unified || dirs_.empty()) return Fd();
    return Fd(::open(dirs_.front().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }

  /// Moves `pid` into every directory (v1, or v2 without CLONE_INTO_CGROUP).
  result<void> attach(pid_t pid) const {
    const std::string text = std::to_string(pid);
    for (const auto& dir : dirs_) {
      if (!detail::write_text(dir + "/cgroup.procs", text)) {
        return last_error(Step::cgroup_attach, dir + "/cgroup.procs");
      }
    }
    return success();
  }

  result<CGroupStats> stats() const {
    CGroupStats s;
    using detail::keyed;
    using detail::number;
    using detail::read_text;
    if (layout_ == CGroupLayout::unified) {
      const std::string& d = dirs_.front();
      s.memory_current = number(read_text(d + "/memory.current"));
      s.memory_peak = number(read_text(d + "/memory.peak"));
      std::string cpu = read_text(d + "/cpu.stat");
      s.cpu_user_us = keyed(cpu, "user_usec");
      s.cpu_system_us = keyed(cpu, "system_usec");
      s.cpu_periods = keyed(cpu, "nr_periods");
      s.cpu_throttled_periods = keyed(cpu, "nr_throttled");
      s.cpu_throttled_us = keyed(cpu, "throttled_usec");
      s.pids_current = number(read_text(d + "/pids.current"));
      std::istringstream io(read_text(d + "/io.stat"));
      for (std::string field; io >> field;) {
        if (field.rfind("rbytes=", 0) == 0) s.io_read_bytes += number(field.substr(7));
        if (field.rfind("wbytes=", 0) == 0) s.io_write_bytes += number(field.substr(7));
      }
      return s;
    }
    if (auto d = dir_of("memory")) {
      s.memory_current = number(read_text(*d + "/memory.usage_in_bytes"));
      s.memory_peak = number(read_text(*d + "/memory.max_usage_in_bytes"));
    }
    if (auto d = dir_of("cpuacct")) {
      s.cpu_user_us = number(read_text(*d + "/cpuacct.usage_user")) / 1000;
      s.cpu_system_us = number(read_text(*d + "/cpuacct.usage_sys")) / 1000;
    }
    if (auto d = dir_of("cpu")) {
      std::string cpu = read_text(*d + "/cpu.stat");
      s.cpu_periods = keyed(cpu, "nr_periods");
      s.cpu_throttled_periods = keyed(cpu, "nr_throttled");
      s.cpu_throttled_us = keyed(cpu, "throttled_time") / 1000;
    }
    if (auto d = dir_of("pids")) s.pids_current = number(read_text(*d + "/pids.current"));
    if (auto d = dir_of("blkio")) {
      std::istringstream io(read_text(*d + "/blkio.throttle.io_service_bytes"));
      for (std::string line; std::getline(io, line);) {
        std::istringstream f(line);
        std::string device, op;
        std::uint64_t value = 0;
        if (!(f >> device >> op >> value)) continue;
        if (op == "Read") s.io_read_bytes += value;
        if (op == "Write") s.io_write_bytes += value;
      }
    }
    return s;
  }

  /// Stops every process of the cgroup (v2 cgroup.freeze, v1 freezer.state) and waits until
  /// the kernel says they are frozen.
  result<void> freeze() const { return set_frozen(true); }
  result<void> thaw() const { return set_frozen(false); }

  /// SIGKILLs every process in the cgroup, including any that left the container's process
  /// tree (v2 cgroup.kill on Linux >= 5.14; otherwise freeze, signal each, thaw).
  result<void> kill_all() const {
    if (layout_ == CGroupLayout::unified &&
        detail::write_text(dirs_.front() + "/cgroup.kill", "1")) {
      return success();
    }
    const bool can_freeze = layout_ == CGroupLayout::unified || dir_of("freezer");
    if (can_freeze) {
      BOOST_OUTCOME_TRYV(freeze());
    }
    for (const auto& dir : dirs_) {
      std::istringstream procs(detail::read_text(dir + "/cgroup.procs"));
      for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
    }
    if (can_freeze) {
      BOOST_OUTCOME_TRYV(thaw());
    }
    return success();
  }

  /// Whether the kernel's OOM killer has killed a process of this cgroup.
  bool oom_killed() const {
    if (layout_ == CGroupLayout::unified) {
      return detail::keyed(detail::read_text(dirs_.front() + "/memory.events"), "oom_kill") > 0;
    }
    if (auto d = dir_of("memory")) {
      return detail::keyed(detail::read_text(*d + "/memory.oom_control"), "oom_kill") > 0;
    }
    return false;
  }

  /// Forgets the directories without removing them (for Child::detach()).
  void release() noexcept {
    dirs_.clear();
    controllers_.clear();
  }

  /// Empties the cgroup and removes its directories, retrying rmdir while the kernel
  /// finishes tearing the last processes down.
  result<void> remove() {
    if (dirs_.empty()) return success();
    std::optional<Error> first;
    bool killed = false;
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      int delay_us = 100;
      for (int attempt = 0;; ++attempt) {
        if (::rmdir(it->c_str()) == 0 || errno == ENOENT) break;
        if (errno == EBUSY && !killed) {
          // Usually the container is gone and the first rmdir works; if processes are
          // left (escaped the container's tree, or it was never waited for), kill them.
          killed = true;
          if (has_processes()) (void)kill_all();
          continue;
        }
        if (errno != EBUSY || attempt >= 40) {
          if (!first) first = last_error(Step::cgroup_remove, *it);
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        delay_us = std::min(delay_us * 2, 50000);
      }
    }
    dirs_.clear();
    if (first) return *first;
    return success();
  }

 private:
  explicit LiveCGroup(CGroupLayout layout) : layout_(layout) {}

  // spawn() checks the spec before it clones and creates the cgroup after (v1): once each.
  friend struct detail::SpawnAccess;

  /// create() for a spec that check() has passed.
  static result<LiveCGroup> make(const CGroup& spec) {
    const auto& layout = detail::host_layout();
    std::string name = spec.name_;
    if (name.empty()) {
      name = fmt::format("hutch-{}-{}", ::getpid(), detail::cgroup_counter.fetch_add(1));
    }
    LiveCGroup live(layout->kind);
    live.named_ = !spec.name_.empty();
    if (layout->kind == CGroupLayout::unified) {
      BOOST_OUTCOME_TRYV(live.create_v2(spec, layout->hierarchies.front(), name));
    } else {
      BOOST_OUTCOME_TRYV(live.create_v1(spec, *layout, name));
    }
    return live;
  }

  std::optional<std::string> dir_of(std::string_view controller) const {
    std::string needle;  // ",name,": built in steps, as gcc 12 -O3 misreads "," + string
    needle.append(1, ',').append(controller).append(1, ',');
    for (std::size_t i = 0; i < dirs_.size(); ++i) {
      if (controllers_.size() > i && controllers_[i].find(needle) != std::string::npos) {
        return dirs_[i];
      }
    }
    return std::nullopt;
  }

  bool has_processes() const {
    for (const auto& dir : dirs_) {
      std::string procs = detail::read_text(dir + "/cgroup.procs");
      if (procs.find_first_not_of(" \n") != std::string::npos) return true;
    }
    return false;
  }

  result<void> set_frozen(bool frozen) const {
    std::string file, want;
    if (layout_ == CGroupLayout::unified) {
      if (!detail::write_text(dirs_.front() + "/cgroup.freeze", frozen ? "1" : "0")) {
        return last_error(Step::cgroup_freeze, dirs_.front() + "/cgroup.freeze");
      }
      file = dirs_.front() + "/cgroup.events";
      want = frozen ? "frozen 1" : "frozen 0";
    } else {
      auto d = dir_of("freezer");
      if (!d) return make_error(Step::cgroup_freeze, ENOTSUP, "freezer", "no v1 freezer");
      if (!detail::write_text(*d + "/freezer.state", frozen ? "FROZEN" : "THAWED")) {
        return last_error(Step::cgroup_freeze, *d + "/freezer.state");
      }
      file = *d + "/freezer.state";
      want = frozen ? "FROZEN" : "THAWED";
    }
    for (int i = 0; i < 2000; ++i) {
      if (detail::read_text(file).find(want) != std::string::npos) return success();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return make_error(Step::cgroup_freeze, ETIMEDOUT, file);
  }

  static result<void> validate(const CGroup& spec, const detail::Layout& layout) {
    const std::string& name = spec.name_;
    if (!name.empty() && (name == "." || name == ".." || name.find('/') != std::string::npos ||
                          name.find('\0') != std::string::npos || name.size() > 200)) {
      return invalid(name, "a cgroup name is one path component: no '/', not '.' or '..'");
    }
    if (spec.memory_max_ && *spec.memory_max_ == 0) return invalid("memory_max", "must be > 0");
    if (spec.memory_high_ && *spec.memory_high_ == 0) {
      return invalid("memory_high", "must be > 0");
    }
    if (spec.cpu_fraction_) {
      if (!(*spec.cpu_fraction_ > 0) || spec.cpu_quota_us_ < 1000 || spec.cpu_period_us_ < 1000 ||
          spec.cpu_period_us_ > 1000000) {
        return invalid("cpu_max",
                       "needs a quota of at least 1000 us and a period of 1000-1000000 us");
      }
    }
    if (spec.cpu_weight_ && (*spec.cpu_weight_ < 1 || *spec.cpu_weight_ > 10000)) {
      return invalid(std::to_string(*spec.cpu_weight_), "cpu_weight is 1..10000");
    }
    if (spec.io_weight_ && (*spec.io_weight_ < 1 || *spec.io_weight_ > 10000)) {
      return invalid(std::to_string(*spec.io_weight_), "io_weight is 1..10000");
    }
    if (spec.pids_max_ && *spec.pids_max_ == 0) return invalid("pids_max", "must be > 0");
    for (const auto& io : spec.io_max_) {
      struct stat st {};
      if (::stat(io.device.c_str(), &st) != 0) {
        return last_error(Step::validate, io.device, "io_max device");
      }
      if (!S_ISBLK(st.st_mode)) {
        return make_error(Step::validate, ENOTBLK, io.device, "io_max needs a block device");
      }
    }
    for (auto [list, file, what] : {std::tuple{&spec.cpuset_cpus_, "cpuset.cpus", "cpuset_cpus"},
                                    std::tuple{&spec.cpuset_mems_, "cpuset.mems", "cpuset_mems"}}) {
      if (list->empty()) continue;
      std::vector<unsigned> wanted, allowed;
      if (!detail::parse_list(*list, wanted) || wanted.empty()) {
        return invalid(*list, fmt::format("{} is a list like \"0-2,4\"", what));
      }
      const detail::Hierarchy* h = nullptr;
      for (const auto& candidate : layout.hierarchies) {
        if (candidate.has("cpuset")) h = &candidate;
      }
      if (!h) return make_error(Step::validate, ENOTSUP, what, "no cpuset controller");
      std::string parent =
          detail::read_text(h->own_dir() + "/" + file + (h->v2 ? ".effective" : ""));
      detail::parse_list(parent, allowed);
      for (unsigned n : wanted) {
        if (std::find(allowed.begin(), allowed.end(), n) == allowed.end()) {
          return invalid(*list, fmt::format("{} must be a subset of the caller's ({})", what,
                                            parent.substr(0, parent.find('\n'))));
        }
      }
    }
    return success();
  }

  static std::string device_numbers(const std::string& device) {
    struct stat st {};
    ::stat(device.c_str(), &st);
    return fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
  }

  /// Creates `dir` and records it (so a later failure removes it).
  result<void> make_dir(const std::string& dir, std::string controllers) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      std::string note;
      if (errno == EEXIST) note = "hutch only uses cgroups it creates; pick another name";
      if (errno == EACCES || errno == EPERM || errno == EROFS) {
        note = layout_ == CGroupLayout::unified
                   ? "the caller's cgroup is not delegated to this user: run under a "
                     "delegated unit, e.g. systemd-run --user --scope -p Delegate=yes"
                   : "cgroup v1 hierarchies are writable only by root";
      }
      return last_error(Step::cgroup_create, dir, std::move(note));
    }
    dirs_.push_back(dir);
    controllers_.push_back("," + controllers + ",");
    return success();
  }

  result<void> write(const std::string& dir, const std::string& file, const std::string& value) {
    if (!detail::write_text(dir + "/" + file, value)) {
      return last_error(Step::cgroup_configure, dir + "/" + file, value);
    }
    return success();
  }

  result<void> create_v2(const CGroup& spec, const detail::Hierarchy& h, const std::string& name) {
    std::vector<std::string> needed = {"pids", "memory"};
    if (spec.cpu_fraction_ || spec.cpu_weight_) needed.push_back("cpu");
    if (!spec.cpuset_cpus_.empty() || !spec.cpuset_mems_.empty()) needed.push_back("cpuset");
    if (spec.io_weight_ || !spec.io_max_.empty()) needed.push_back("io");
    const std::string parent = h.own_dir();
    // Controllers must be enabled in the parent's subtree_control; a cgroup that holds
    // processes (our own, unless it is the root) cannot enable them, and we never move the
    // caller, so the delegation must already be there.
    std::string enabled = " " + detail::read_text(parent + "/cgroup.subtree_control") + " ";
    for (const auto& c : needed) {
      if (enabled.find(" " + c + " ") != std::string::npos ||
          enabled.find(" " + c + "\n") != std::string::npos) {
        continue;
      }
      if (!h.has(c)) {
        return make_error(Step::cgroup_create, ENOTSUP, c,
                          fmt::format("controller not available in {}", h.mount));
      }
      if (!detail::write_text(parent + "/cgroup.subtree_control", "+" + c)) {
        return last_error(Step::cgroup_create, parent + "/cgroup.subtree_control",
                          fmt::format("controller {} is not delegated to the caller's cgroup; "
                                      "delegate it with systemd (Delegate=yes, or "
                                      "systemd-run --scope -p Delegate={})",
                                      c, c));
      }
    }
    const std::string dir = parent + "/" + name;
    BOOST_OUTCOME_TRYV(make_dir(dir, "pids,memory,cpu,cpuset,io,freezer"));
    if (spec.memory_max_) {
      BOOST_OUTCOME_TRYV(write(dir, "memory.max", std::to_string(*spec.memory_max_)));
    }
    if (spec.memory_high_) {
      BOOST_OUTCOME_TRYV(write(dir, "memory.high", std::to_string(*spec.memory_high_)));
    }
    if (spec.memory_swap_max_) {
      BOOST_OUTCOME_TRYV(write(dir, "memory.swap.max", std::to_string(*spec.memory_swap_max_)));
    }
    if (spec.cpu_fraction_) {
      BOOST_OUTCOME_TRYV(
          write(dir, "cpu.max", fmt::format("{} {}", spec.cpu_quota_us_, spec.cpu_period_us_)));
    }
    if (spec.cpu_weight_) {
      BOOST_OUTCOME_TRYV(write(dir, "cpu.weight", std::to_string(*spec.cpu_weight_)));
    }
    if (!spec.cpuset_cpus_.empty()) {
      BOOST_OUTCOME_TRYV(write(dir, "cpuset.cpus", spec.cpuset_cpus_));
    }
    if (!spec.cpuset_mems_.empty()) {
      BOOST_OUTCOME_TRYV(write(dir, "cpuset.mems", spec.cpuset_mems_));
    }
    if (spec.pids_max_) {
      BOOST_OUTCOME_TRYV(write(dir, "pids.max", std::to_string(*spec.pids_max_)));
    }
    if (spec.io_weight_) {
      BOOST_OUTCOME_TRYV(write(dir, "io.weight", fmt::format("default {}", *spec.io_weight_)));
    }
    for (const auto& io : spec.io_max_) {
      auto limit = [](std::uint64_t v) { return v ? std::to_string(v) : std::string("max"); };
      BOOST_OUTCOME_TRYV(
          write(dir, "io.max",
                fmt::format("{} rbps={} wbps={} riops={} wiops={}", device_numbers(io.device),
                            limit(io.read_bps), limit(io.write_bps), limit(io.read_iops),
                            limit(io.write_iops))));
    }
    return success();
  }

  result<void> create_v1(const CGroup& spec, const detail::Layout& layout,
                         const std::string& name) {
    const bool cpu = spec.cpu_fraction_ || spec.cpu_weight_;
    const bool cpuset = !spec.cpuset_cpus_.empty() || !spec.cpuset_mems_.empty();
    for (const auto& h : layout.hierarchies) {
      // Always: memory (limits, stats, OOM), pids, cpuacct (CPU time), freezer (freeze and
      // kill_all). The rest only when a limit needs them.
      bool wanted = h.has("memory") || h.has("pids") || h.has("cpuacct") || h.has("freezer") ||
                    (cpu && h.has("cpu")) || (cpuset && h.has("cpuset")) ||
                    ((spec.io_weight_ || !spec.io_max_.empty()) && h.has("blkio"));
      if (!wanted) continue;
      std::string controllers;
      for (auto& c : h.controllers) controllers += (controllers.empty() ? "" : ",") + c;
      const std::string dir = h.own_dir() + "/" + name;
      BOOST_OUTCOME_TRYV(make_dir(dir, controllers));
      if (h.has("memory")) {
        if (spec.memory_max_) {
          BOOST_OUTCOME_TRYV(
              write(dir, "memory.limit_in_bytes", std::to_string(*spec.memory_max_)));
        }
        if (spec.memory_high_) {
          BOOST_OUTCOME_TRYV(
              write(dir, "memory.soft_limit_in_bytes", std::to_string(*spec.memory_high_)));
        }
        if (spec.memory_swap_max_) {
          std::uint64_t memory = spec.memory_max_.value_or(*spec.memory_swap_max_);
          BOOST_OUTCOME_TRYV(write(dir, "memory.memsw.limit_in_bytes",
                                   std::to_string(memory + *spec.memory_swap_max_)));
        }
      }
      if (h.has("cpu")) {
        if (spec.cpu_fraction_) {
          BOOST_OUTCOME_TRYV(write(dir, "cpu.cfs_period_us", std::to_string(spec.cpu_period_us_)));
          BOOST_OUTCOME_TRYV(write(dir, "cpu.cfs_quota_us", std::to_string(spec.cpu_quota_us_)));
        }
        if (spec.cpu_weight_) {
          // The inverse of the shares -> weight conversion runc and the kernel docs use.
          std::uint64_t shares = 2 + ((*spec.cpu_weight_ - 1) * 262142) / 9999;
          BOOST_OUTCOME_TRYV(write(dir, "cpu.shares", std::to_string(shares)));
        }
      }
      if (h.has("cpuset")) {
        // A new v1 cpuset starts empty and takes no task until both lists are set.
        std::string parent_cpus = detail::read_text(h.own_dir() + "/cpuset.cpus");
        std::string parent_mems = detail::read_text(h.own_dir() + "/cpuset.mems");
        BOOST_OUTCOME_TRYV(write(dir, "cpuset.cpus",
                                 spec.cpuset_cpus_.empty()
                                     ? parent_cpus.substr(0, parent_cpus.find('\n'))
                                     : spec.cpuset_cpus_));
        BOOST_OUTCOME_TRYV(write(dir, "cpuset.mems",
                                 spec.cpuset_mems_.empty()
                                     ? parent_mems.substr(0, parent_mems.find('\n'))
                                     : spec.cpuset_mems_));
      }
      if (h.has("pids") && spec.pids_max_) {
        BOOST_OUTCOME_TRYV(write(dir, "pids.max", std::to_string(*spec.pids_max_)));
      }
      if (h.has("blkio")) {
        if (spec.io_weight_) {
          std::uint64_t weight = 10 + (*spec.io_weight_ - 1) * 990 / 9999;
          BOOST_OUTCOME_TRYV(write(dir, "blkio.weight", std::to_string(weight)));
        }
        for (const auto& io : spec.io_max_) {
          const std::string dev = device_numbers(io.device);
          const std::pair<const char*, std::uint64_t> limits[] = {
              {"blkio.throttle.read_bps_device", io.read_bps},
              {"blkio.throttle.write_bps_device", io.write_bps},
              {"blkio.throttle.read_iops_device", io.read_iops},
              {"blkio.throttle.write_iops_device", io.write_iops}};
          for (auto [file, value] : limits) {
            if (value) {
              BOOST_OUTCOME_TRYV(write(dir, file, fmt::format("{} {}", dev, value)));
            }
          }
        }
      }
    }
    return success();
  }

  CGroupLayout layout_;
  std::vector<std::string> dirs_;
  std::vector<std::string> controllers_;  // ",memory," etc., parallel to dirs_
  bool named_ = false;
};

}  // namespace hutch

template <>
struct fmt::formatter<hutch::CGroupLayout> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(hutch::CGroupLayout layout, Context& ctx) const {
    std::string_view name = layout == hutch::CGroupLayout::unified  ? "unified (v2)"
                            : layout == hutch::CGroupLayout::hybrid ? "hybrid (v1 + empty v2)"
                                                                    : "legacy (v1)";
    return fmt::formatter<std::string_view>::format(name, ctx);
  }
};
