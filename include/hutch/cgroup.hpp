// hutch — CGroup: resource limits (the spec) and LiveCGroup (a container's cgroup while it
// lives): cgroup v2 (unified) and v1 (legacy and hybrid layouts) behind one interface.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "detail/cgroup_fs.hpp"
#include "detail/cgroup_layout.hpp"
#include "detail/cgroup_limits.hpp"
#include "detail/cgroup_write.hpp"
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

/// The cgroup a container gets: a name and its limits. A new directory `<caller's cgroup>/
/// <name>` is created in each hierarchy needed (cgroup v2: one; v1: one per controller), the
/// child is placed in it before its command runs, and it is removed with the Child.
///
/// Values are checked before anything is created. The name must not exist yet: hutch never
/// adopts a cgroup it did not create. An empty name picks a unique one.
class CGroup {
 public:
  CGroup() = default;
  explicit CGroup(std::string name) { limits_.name = std::move(name); }

  /// memory.max (v1 memory.limit_in_bytes): above it the kernel reclaims, then OOM-kills.
  CGroup& memory_max(std::uint64_t bytes) { return set(limits_.memory_max, bytes); }
  /// memory.low (v1: memory.soft_limit_in_bytes): memory kept from reclaim while others have
  /// some to give (an OCI config's memory.reservation).
  CGroup& memory_low(std::uint64_t bytes) { return set(limits_.memory_low, bytes); }
  /// memory.high (v1: memory.soft_limit_in_bytes, a weaker hint): throttles and reclaims.
  CGroup& memory_high(std::uint64_t bytes) { return set(limits_.memory_high, bytes); }
  /// memory.swap.max (v1: memory.memsw.limit_in_bytes = memory_max + this).
  CGroup& memory_swap_max(std::uint64_t bytes) { return set(limits_.memory_swap_max, bytes); }
  /// cpu.max as a fraction of one CPU (0.5: half a CPU), over a 100 ms period.
  CGroup& cpu_max(double cpus) {
    limits_.cpu_fraction = cpus;
    limits_.cpu_quota_us =
        cpus > 0 && cpus < 1e6 ? static_cast<std::uint64_t>(std::llround(cpus * 100000)) : 0;
    limits_.cpu_period_us = 100000;
    return *this;
  }
  /// cpu.max as quota and period in microseconds (v1 cpu.cfs_quota_us / cfs_period_us).
  CGroup& cpu_max(std::uint64_t quota_us, std::uint64_t period_us) {
    limits_.cpu_fraction = 1;
    limits_.cpu_quota_us = quota_us;
    limits_.cpu_period_us = period_us;
    return *this;
  }
  /// cpu.weight, 1..10000, default 100 (v1 cpu.shares, converted).
  CGroup& cpu_weight(std::uint64_t weight) { return set(limits_.cpu_weight, weight); }
  /// cpu.shares as v1 counts them, 2..262144 (v2 cpu.weight, converted as runc does).
  CGroup& cpu_shares(std::uint64_t shares) { return set(limits_.cpu_shares, shares); }
  /// cpu.idle (v2, Linux 5.15): the cgroup's tasks run only when the CPU has nothing else.
  CGroup& cpu_idle(bool yes) {
    limits_.cpu_idle = yes;
    return *this;
  }
  /// memory.swappiness (v1 only), 0..100.
  CGroup& memory_swappiness(std::uint64_t value) { return set(limits_.memory_swappiness, value); }
  /// memory.oom_control's oom_kill_disable (v1 only): processes over the limit wait rather
  /// than die.
  CGroup& oom_kill_disable(bool yes) {
    limits_.oom_kill_disable = yes;
    return *this;
  }
  /// The devices its processes may use: every device denied, then `rules` in order (v1
  /// devices.allow/deny; v2 an eBPF program attached to the cgroup).
  CGroup& devices(std::vector<DeviceRule> rules) {
    limits_.devices = std::move(rules);
    return *this;
  }
  /// A cgroup v2 interface file written as it is (an OCI config's linux.resources.unified).
  CGroup& unified(std::string file, std::string value) {
    limits_.unified[std::move(file)] = std::move(value);
    return *this;
  }
  /// Places the cgroup at `path` from each hierarchy's root (e.g. "/libpod_parent/libpod-x",
  /// as an OCI config's cgroupsPath gives it) instead of below the caller's own cgroup:
  /// missing parents are made and an existing empty leaf is adopted. For OCI runtimes, which
  /// are told where; a library caller should leave cgroups below its own.
  CGroup& at(std::string path) {
    limits_.path = std::move(path);
    return *this;
  }
  /// cpuset.cpus, e.g. "0-1,3"; must be a subset of the caller's.
  CGroup& cpuset_cpus(std::string cpus) {
    limits_.cpuset_cpus = std::move(cpus);
    return *this;
  }
  CGroup& cpuset_mems(std::string mems) {
    limits_.cpuset_mems = std::move(mems);
    return *this;
  }
  /// pids.max: fork and clone fail with EAGAIN inside beyond it.
  CGroup& pids_max(std::uint64_t count) { return set(limits_.pids_max, count); }
  /// io.weight, 1..10000, default 100 (v1 blkio.weight or blkio.bfq.weight, 10..1000,
  /// converted). Weights share a disk's time only under the BFQ scheduler (v1 and v2) or the
  /// io.cost model (v2); elsewhere the kernel keeps the value and does nothing with it.
  CGroup& io_weight(std::uint64_t weight) { return set(limits_.io_weight, weight); }
  /// The same weight on docker's and v1's scale, 10..1000 (--blkio-weight); it reaches a v1
  /// host's blkio file unchanged.
  CGroup& blkio_weight(std::uint64_t weight) {
    return set(limits_.io_weight, detail::io_weight_of_blkio(weight));
  }
  /// Throttles for one block device (see IoMax; an entry for the same name adds to it).
  CGroup& io_max(IoMax limit) {
    limits_.io_max.push_back(std::move(limit));
    return *this;
  }
  /// Docker's --device-read-bps and kin: the rate of reads or writes, in bytes or IOs per
  /// second, of the container's processes on `device` (a node such as "/dev/vda", "254:0",
  /// or a file or directory: the disk under its filesystem). v1 blkio throttles only I/O the
  /// container's own processes submit: direct I/O and what its fsync()s write back, not the
  /// kernel's background writeback of its buffered writes; v2 (io.max) throttles that too.
  CGroup& device_read_bps(std::string device, std::uint64_t bytes_per_second) {
    device_limit(std::move(device)).read_bps = bytes_per_second;
    return *this;
  }
  CGroup& device_write_bps(std::string device, std::uint64_t bytes_per_second) {
    device_limit(std::move(device)).write_bps = bytes_per_second;
    return *this;
  }
  CGroup& device_read_iops(std::string device, std::uint64_t ios_per_second) {
    device_limit(std::move(device)).read_iops = ios_per_second;
    return *this;
  }
  CGroup& device_write_iops(std::string device, std::uint64_t ios_per_second) {
    device_limit(std::move(device)).write_iops = ios_per_second;
    return *this;
  }

  const std::string& name() const noexcept { return limits_.name; }
  /// The limits as plain data, for hutch's cgroupfs writer and for tools.
  const detail::CGroupLimits& limits() const noexcept { return limits_; }

 private:
  IoMax& device_limit(std::string device) {
    for (auto& limit : limits_.io_max) {
      if (limit.device == device) return limit;
    }
    return limits_.io_max.emplace_back(IoMax{.device = std::move(device)});
  }
  CGroup& set(std::optional<std::uint64_t>& field, std::uint64_t value) {
    field = value;
    return *this;
  }
  detail::CGroupLimits limits_;
};

/// What a container's cgroup has used so far. Fields the kernel does not report are 0.
struct CGroupStats {
  std::uint64_t memory_current = 0;  // bytes
  std::uint64_t memory_peak = 0;     // bytes (v2 memory.peak needs Linux 5.19)
  std::uint64_t cpu_user_us = 0;
  std::uint64_t cpu_system_us = 0;
  std::uint64_t pids_current = 0;
  std::uint64_t pids_limit_hits = 0;  // forks refused by pids_max (pids.events "max")
  std::uint64_t io_read_bytes = 0;    // on every block device
  std::uint64_t io_write_bytes = 0;
  std::uint64_t io_read_ios = 0;
  std::uint64_t io_write_ios = 0;
  std::uint64_t cpu_periods = 0;  // enforcement periods elapsed under cpu_max
  std::uint64_t cpu_throttled_periods = 0;
  std::uint64_t cpu_throttled_us = 0;
  /// Per block device (v1: what passed the throttle layer; both count what the container's
  /// processes submitted, and v2 also the writeback of their buffered writes).
  std::vector<DeviceIoStats> io_devices;
  /// The entry of one disk, or nullptr if the container has not used it.
  const DeviceIoStats* io_of(const BlockDevice& disk) const {
    for (const auto& d : io_devices) {
      if (d.major == disk.major && d.minor == disk.minor) return &d;
    }
    return nullptr;
  }
};

/// Resolves a name for an I/O limit to the disk the kernel throttles: "8:0", a block device
/// node, or a file or directory, which stands for the whole disk under its filesystem (a
/// loop device, a virtio disk, the disk holding a partition). Errors name why a device
/// cannot be limited: not a block device, a partition named directly (the kernel limits
/// disks), or a filesystem no block device backs (tmpfs, overlay, proc, network ones).
inline result<BlockDevice> block_device(const std::string& name) {
  return detail::resolve_block_device(name);
}

/// A container's cgroup while it exists: created by spawn(), owned by the Child, removed when
/// the Child is gone (emptied first, rmdir retried while the kernel finishes).
class LiveCGroup {
 public:
  LiveCGroup(const LiveCGroup&) = delete;
  LiveCGroup& operator=(const LiveCGroup&) = delete;
  LiveCGroup(LiveCGroup&& other) noexcept
      : dirs_(std::exchange(other.dirs_, {})), named_(other.named_) {}
  LiveCGroup& operator=(LiveCGroup&&) = delete;
  ~LiveCGroup() { (void)remove(); }

  /// Checks `spec` and creates its cgroup directories with the limits written. On any failure
  /// what was created is removed again.
  static result<LiveCGroup> create(const CGroup& spec) {
    HUTCH_TRYV(check(spec));
    const auto& layout = *detail::host_layout();
    const detail::CGroupLimits& limits = spec.limits();
    std::string name = limits.name;
    if (name.empty()) {
      name = detail::owner_prefix() + std::to_string(detail::cgroup_counter.fetch_add(1));
    }
    LiveCGroup live;
    live.dirs_.layout = layout.kind;
    live.named_ = !limits.name.empty() || !limits.path.empty();
    for (const auto& h : layout.hierarchies) {
      if (h.v2 || detail::v1_wanted(h, limits)) {
        HUTCH_TRYV(detail::make_leaf(live.dirs_, limits, h, name));
      }
    }
    HUTCH_TRYV(detail::write_limits(live.dirs_, limits));
    return live;
  }

  /// Checks `spec` against the host's hierarchies without creating anything; returns the
  /// host's layout. (Cheap: spawn() checks before it clones and create() again after.)
  static result<CGroupLayout> check(const CGroup& spec) {
    const auto& layout = detail::host_layout();
    if (!layout) return layout.error();
    HUTCH_TRYV(detail::validate_limits(spec.limits(), *layout));
    return layout->kind;
  }

  /// Writes `spec`'s limits into this cgroup's directories (`runc update`); its name and path
  /// are not looked at.
  result<void> update(const CGroup& spec) const {
    const auto& layout = detail::host_layout();
    if (!layout) return layout.error();
    detail::CGroupLimits limits = spec.limits();
    limits.name.clear();
    limits.path.clear();
    if (limits.devices) {
      return make_error(Step::cgroup_configure, ENOTSUP, "devices",
                        "a cgroup's device rules are set when it is made");
    }
    HUTCH_TRYV(detail::validate_limits(limits, *layout));
    return detail::write_limits(dirs_, limits);
  }

  /// The cgroup whose directories are `paths` (as paths() gave them, e.g. kept in an OCI
  /// runtime's state): to stat, freeze, kill or remove from another process. Removing it is
  /// up to the caller (release() keeps it).
  static result<LiveCGroup> open(const std::vector<std::string>& paths) {
    const auto& layout = detail::host_layout();
    if (!layout) return layout.error();
    LiveCGroup live;
    live.dirs_.layout = layout->kind;
    live.named_ = true;
    for (const auto& path : paths) {
      std::string names;
      for (const auto& h : layout->hierarchies) {
        if (path == h.mount || path.starts_with(h.mount + "/")) {
          for (const auto& c : h.controllers) names += (names.empty() ? "" : ",") + c;
          if (h.v2) names = "pids,memory,cpu,cpuset,io,freezer";
        }
      }
      if (names.empty()) return make_error(Step::cgroup_read, ENOENT, path, "not a cgroup");
      live.dirs_.dirs.push_back(path);
      live.dirs_.controllers.push_back("," + names + ",");
    }
    return live;
  }

  CGroupLayout layout() const noexcept { return dirs_.layout; }
  /// Whether the caller chose the name (CGroup{"name"}); otherwise it is unique to this one.
  bool named() const noexcept { return named_; }
  /// The directories created, one per hierarchy (v2: one).
  const std::vector<std::string>& paths() const noexcept { return dirs_.dirs; }

  /// A directory fd for clone3(CLONE_INTO_CGROUP) on v2; -1 on v1.
  Fd open_for_clone() const {
    if (dirs_.layout != CGroupLayout::unified || dirs_.dirs.empty()) return Fd();
    return Fd(::open(dirs_.dirs.front().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }

  /// Moves `pid` into every directory (v1, or v2 without CLONE_INTO_CGROUP).
  result<void> attach(pid_t pid) const {
    const std::string text = std::to_string(pid);
    for (const auto& dir : dirs_.dirs) {
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
    if (dirs_.layout == CGroupLayout::unified) {
      const std::string& d = dirs_.dirs.front();
      s.memory_current = number(read_text(d + "/memory.current"));
      s.memory_peak = number(read_text(d + "/memory.peak"));
      std::string cpu = read_text(d + "/cpu.stat");
      s.cpu_user_us = keyed(cpu, "user_usec");
      s.cpu_system_us = keyed(cpu, "system_usec");
      s.cpu_periods = keyed(cpu, "nr_periods");
      s.cpu_throttled_periods = keyed(cpu, "nr_throttled");
      s.cpu_throttled_us = keyed(cpu, "throttled_usec");
      s.pids_current = number(read_text(d + "/pids.current"));
      s.pids_limit_hits = keyed(read_text(d + "/pids.events"), "max");
      s.io_devices = detail::parse_io_stat(read_text(d + "/io.stat"));
      add_io_totals(s);
      return s;
    }
    if (auto d = dirs_.dir_of("memory")) {
      s.memory_current = number(read_text(*d + "/memory.usage_in_bytes"));
      s.memory_peak = number(read_text(*d + "/memory.max_usage_in_bytes"));
    }
    if (auto d = dirs_.dir_of("cpuacct")) {
      s.cpu_user_us = number(read_text(*d + "/cpuacct.usage_user")) / 1000;
      s.cpu_system_us = number(read_text(*d + "/cpuacct.usage_sys")) / 1000;
    }
    if (auto d = dirs_.dir_of("cpu")) {
      std::string cpu = read_text(*d + "/cpu.stat");
      s.cpu_periods = keyed(cpu, "nr_periods");
      s.cpu_throttled_periods = keyed(cpu, "nr_throttled");
      s.cpu_throttled_us = keyed(cpu, "throttled_time") / 1000;
    }
    if (auto d = dirs_.dir_of("pids")) {
      s.pids_current = number(read_text(*d + "/pids.current"));
      s.pids_limit_hits = keyed(read_text(*d + "/pids.events"), "max");
    }
    if (auto d = dirs_.dir_of("blkio")) {
      s.io_devices = detail::parse_blkio_stats(read_text(*d + "/blkio.throttle.io_service_bytes"),
                                               read_text(*d + "/blkio.throttle.io_serviced"));
      add_io_totals(s);
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
    if (dirs_.layout == CGroupLayout::unified &&
        detail::write_text(dirs_.dirs.front() + "/cgroup.kill", "1")) {
      return success();
    }
    const bool can_freeze = dirs_.layout == CGroupLayout::unified || dirs_.dir_of("freezer");
    if (can_freeze) {
      HUTCH_TRYV(freeze());
    }
    for (const auto& dir : dirs_.dirs) {
      std::istringstream procs(detail::read_text(dir + "/cgroup.procs"));
      for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
    }
    if (can_freeze) {
      HUTCH_TRYV(thaw());
    }
    return success();
  }

  /// Whether the kernel's OOM killer has killed a process of this cgroup.
  bool oom_killed() const {
    if (dirs_.layout == CGroupLayout::unified) {
      return detail::keyed(detail::read_text(dirs_.dirs.front() + "/memory.events"), "oom_kill") >
             0;
    }
    if (auto d = dirs_.dir_of("memory")) {
      return detail::keyed(detail::read_text(*d + "/memory.oom_control"), "oom_kill") > 0;
    }
    return false;
  }

  /// Forgets the directories without removing them (for Child::detach()).
  void release() noexcept {
    dirs_.dirs.clear();
    dirs_.controllers.clear();
  }

  /// Empties the cgroup and removes its directories, retrying rmdir while the kernel
  /// finishes tearing the last processes down.
  result<void> remove() {
    if (dirs_.dirs.empty()) return success();
    std::optional<Error> first;
    bool killed = false;
    for (auto it = dirs_.dirs.rbegin(); it != dirs_.dirs.rend(); ++it) {
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
    dirs_.dirs.clear();
    if (first) return *first;
    return success();
  }

 private:
  static void add_io_totals(CGroupStats& s) {
    for (const auto& d : s.io_devices) {
      s.io_read_bytes += d.read_bytes;
      s.io_write_bytes += d.write_bytes;
      s.io_read_ios += d.read_ios;
      s.io_write_ios += d.write_ios;
    }
  }

  LiveCGroup() = default;

  bool has_processes() const {
    for (const auto& dir : dirs_.dirs) {
      std::string procs = detail::read_text(dir + "/cgroup.procs");
      if (procs.find_first_not_of(" \n") != std::string::npos) return true;
    }
    return false;
  }

  result<void> set_frozen(bool frozen) const {
    std::string file, want;
    if (dirs_.layout == CGroupLayout::unified) {
      if (!detail::write_text(dirs_.dirs.front() + "/cgroup.freeze", frozen ? "1" : "0")) {
        return last_error(Step::cgroup_freeze, dirs_.dirs.front() + "/cgroup.freeze");
      }
      file = dirs_.dirs.front() + "/cgroup.events";
      want = frozen ? "frozen 1" : "frozen 0";
    } else {
      auto d = dirs_.dir_of("freezer");
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

  detail::CGroupDirs dirs_;
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
