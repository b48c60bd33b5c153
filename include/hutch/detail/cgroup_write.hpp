// hutch — a cgroup's limits written into its directories: the v2 interface files, or each
// v1 controller's own (with the conversions runc and the kernel documentation use), and the
// v1 devices controller's rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "cgroup_fs.hpp"
#include "cgroup_layout.hpp"
#include "cgroup_limits.hpp"
#include "device_filter.hpp"

namespace hutch::detail {

inline result<void> write_limit(const std::string& dir, const std::string& file,
                                const std::string& value) {
  if (!write_text(dir + "/" + file, value)) {
    return last_error(Step::cgroup_configure, dir + "/" + file, value);
  }
  return success();
}

/// The proportional weight: v2 io.weight (the cost model's) or io.bfq.weight, v1
/// blkio.weight (CFQ, gone since Linux 5.0) or blkio.bfq.weight — whichever this kernel has.
/// Either takes effect only on disks whose scheduler (BFQ) or cost model (v2 io.cost) uses
/// weights.
inline result<void> write_io_weight(const std::string& dir, std::uint64_t weight, bool v2) {
  const std::string blkio = std::to_string(blkio_of_io_weight(weight));
  const std::pair<std::string, std::string> choices[] = {
      {v2 ? "io.weight" : "blkio.weight", v2 ? fmt::format("default {}", weight) : blkio},
      {v2 ? "io.bfq.weight" : "blkio.bfq.weight", v2 ? fmt::format("default {}", blkio) : blkio}};
  for (const auto& [file, value] : choices) {
    if (::access((dir + "/" + file).c_str(), F_OK) == 0) return write_limit(dir, file, value);
  }
  return make_error(Step::cgroup_configure, ENOTSUP, dir + "/" + choices[0].first,
                    fmt::format("this kernel has no I/O weights ({} and {} are missing: no BFQ "
                                "scheduler{})",
                                choices[0].first, choices[1].first, v2 ? " or io.cost" : ""));
}

/// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), and back.
constexpr std::uint64_t weight_of_shares(std::uint64_t shares) {
  return 1 + ((shares - 2) * 9999) / 262142;
}
constexpr std::uint64_t shares_of_weight(std::uint64_t weight) {
  return 2 + ((weight - 1) * 262142) / 9999;
}

inline result<void> write_v2_limits(const std::string& dir, const CGroupLimits& spec) {
  auto number = [](std::uint64_t v) { return std::to_string(v); };
  std::optional<std::uint64_t> weight = spec.cpu_weight;
  if (!weight && spec.cpu_shares) weight = weight_of_shares(*spec.cpu_shares);
  const std::pair<const char*, std::optional<std::uint64_t>> plain[] = {
      {"memory.max", spec.memory_max}, {"memory.high", spec.memory_high},
      {"memory.low", spec.memory_low}, {"memory.swap.max", spec.memory_swap_max},
      {"cpu.weight", weight},          {"pids.max", spec.pids_max}};
  for (const auto& [file, value] : plain) {
    if (value) HUTCH_TRYV(write_limit(dir, file, number(*value)));
  }
  if (spec.cpu_fraction) {
    HUTCH_TRYV(
        write_limit(dir, "cpu.max", fmt::format("{} {}", spec.cpu_quota_us, spec.cpu_period_us)));
  }
  if (spec.cpu_idle) HUTCH_TRYV(write_limit(dir, "cpu.idle", *spec.cpu_idle ? "1" : "0"));
  if (!spec.cpuset_cpus.empty()) HUTCH_TRYV(write_limit(dir, "cpuset.cpus", spec.cpuset_cpus));
  if (!spec.cpuset_mems.empty()) HUTCH_TRYV(write_limit(dir, "cpuset.mems", spec.cpuset_mems));
  if (spec.io_weight) HUTCH_TRYV(write_io_weight(dir, *spec.io_weight, /*v2=*/true));
  for (const auto& io : spec.io_max) {
    // Only the rates given: io.max keeps the others, so two entries for one disk add up.
    HUTCH_TRY(const BlockDevice disk, resolve_block_device(io.device));
    std::string line = disk.numbers();
    const std::pair<const char*, std::uint64_t> rates[] = {{"rbps", io.read_bps},
                                                           {"wbps", io.write_bps},
                                                           {"riops", io.read_iops},
                                                           {"wiops", io.write_iops}};
    for (auto [key, value] : rates) {
      if (value) line += fmt::format(" {}={}", key, value);
    }
    HUTCH_TRYV(write_limit(dir, "io.max", line));
  }
  for (const auto& [file, value] : spec.unified) HUTCH_TRYV(write_limit(dir, file, value));
  // Device rules are an eBPF program on v2, which takes privilege to load; a rootless
  // container, in a user namespace, can neither make device nodes nor reach the host's but
  // those bound in, so it goes without one (as crun does).
  if (spec.devices && ::geteuid() == 0) HUTCH_TRYV(attach_device_filter(dir, *spec.devices));
  return success();
}

inline result<void> write_v1_memory(const std::string& dir, const CGroupLimits& spec) {
  if (spec.memory_max) {
    HUTCH_TRYV(write_limit(dir, "memory.limit_in_bytes", std::to_string(*spec.memory_max)));
  }
  if (auto soft = spec.memory_low ? spec.memory_low : spec.memory_high) {
    HUTCH_TRYV(write_limit(dir, "memory.soft_limit_in_bytes", std::to_string(*soft)));
  }
  if (spec.memory_swap_max) {
    std::uint64_t memory = spec.memory_max.value_or(*spec.memory_swap_max);
    HUTCH_TRYV(write_limit(dir, "memory.memsw.limit_in_bytes",
                           std::to_string(memory + *spec.memory_swap_max)));
  }
  if (spec.memory_swappiness) {
    HUTCH_TRYV(write_limit(dir, "memory.swappiness", std::to_string(*spec.memory_swappiness)));
  }
  if (spec.oom_kill_disable) {
    HUTCH_TRYV(write_limit(dir, "memory.oom_control", *spec.oom_kill_disable ? "1" : "0"));
  }
  return success();
}

inline result<void> write_v1_cpu(const std::string& dir, const CGroupLimits& spec) {
  if (spec.cpu_fraction) {
    HUTCH_TRYV(write_limit(dir, "cpu.cfs_period_us", std::to_string(spec.cpu_period_us)));
    HUTCH_TRYV(write_limit(dir, "cpu.cfs_quota_us", std::to_string(spec.cpu_quota_us)));
  }
  std::optional<std::uint64_t> shares = spec.cpu_shares;
  if (!shares && spec.cpu_weight) shares = shares_of_weight(*spec.cpu_weight);
  if (shares) HUTCH_TRYV(write_limit(dir, "cpu.shares", std::to_string(*shares)));
  return success();
}

/// A new v1 cpuset starts empty and takes no task until both lists are set: its parent's,
/// unless the spec gives its own.
inline result<void> write_v1_cpuset(const std::string& dir, const CGroupLimits& spec) {
  const std::string parent = dir.substr(0, dir.rfind('/'));
  auto first_line = [](std::string s) { return s.substr(0, s.find('\n')); };
  const std::string cpus = first_line(read_text(parent + "/cpuset.cpus"));
  const std::string mems = first_line(read_text(parent + "/cpuset.mems"));
  HUTCH_TRYV(write_limit(dir, "cpuset.cpus", spec.cpuset_cpus.empty() ? cpus : spec.cpuset_cpus));
  return write_limit(dir, "cpuset.mems", spec.cpuset_mems.empty() ? mems : spec.cpuset_mems);
}

inline result<void> write_v1_blkio(const std::string& dir, const CGroupLimits& spec) {
  if (spec.io_weight) HUTCH_TRYV(write_io_weight(dir, *spec.io_weight, /*v2=*/false));
  for (const auto& io : spec.io_max) {
    HUTCH_TRY(const BlockDevice disk, resolve_block_device(io.device));
    const std::string dev = disk.numbers();
    const std::pair<const char*, std::uint64_t> limits[] = {
        {"blkio.throttle.read_bps_device", io.read_bps},
        {"blkio.throttle.write_bps_device", io.write_bps},
        {"blkio.throttle.read_iops_device", io.read_iops},
        {"blkio.throttle.write_iops_device", io.write_iops}};
    for (auto [file, value] : limits) {
      if (value) HUTCH_TRYV(write_limit(dir, file, fmt::format("{} {}", dev, value)));
    }
  }
  return success();
}

/// The devices controller: everything denied, then the rules in order.
inline result<void> write_v1_devices(const std::string& dir, const std::vector<DeviceRule>& rules) {
  HUTCH_TRYV(write_limit(dir, "devices.deny", "a"));
  for (const DeviceRule& r : rules) {
    auto number = [](long n) { return n < 0 ? std::string("*") : std::to_string(n); };
    const std::string rule =
        r.type == 'a' ? "a"
                      : fmt::format("{} {}:{} {}", r.type, number(r.major), number(r.minor),
                                    r.access.empty() ? "rwm" : r.access);
    HUTCH_TRYV(write_limit(dir, r.allow ? "devices.allow" : "devices.deny", rule));
  }
  return success();
}

/// The limits of one v1 hierarchy's directory (`controllers`: ",memory," etc.).
inline result<void> write_v1_limits(const std::string& dir, const std::string& controllers,
                                    const CGroupLimits& spec) {
  auto has = [&](std::string_view c) {
    return controllers.find(fmt::format(",{},", c)) != std::string::npos;
  };
  if (has("memory")) HUTCH_TRYV(write_v1_memory(dir, spec));
  if (has("cpu")) HUTCH_TRYV(write_v1_cpu(dir, spec));
  if (has("cpuset")) HUTCH_TRYV(write_v1_cpuset(dir, spec));
  if (has("pids") && spec.pids_max) {
    HUTCH_TRYV(write_limit(dir, "pids.max", std::to_string(*spec.pids_max)));
  }
  if (has("blkio")) HUTCH_TRYV(write_v1_blkio(dir, spec));
  if (has("devices") && spec.devices) HUTCH_TRYV(write_v1_devices(dir, *spec.devices));
  return success();
}

/// The hierarchies a v1 cgroup goes in: always memory (limits, stats, OOM), pids, cpuacct
/// (CPU time) and freezer (freeze and kill_all); the rest only when a limit needs them.
inline bool v1_wanted(const Hierarchy& h, const CGroupLimits& spec) {
  const bool cpu = spec.cpu_fraction || spec.cpu_weight || spec.cpu_shares;
  const bool cpuset = !spec.cpuset_cpus.empty() || !spec.cpuset_mems.empty();
  const bool io = spec.io_weight || !spec.io_max.empty();
  return h.has("memory") || h.has("pids") || h.has("cpuacct") || h.has("freezer") ||
         (cpu && h.has("cpu")) || (cpuset && h.has("cpuset")) || (io && h.has("blkio")) ||
         (spec.devices && h.has("devices"));
}

/// Every directory's limits.
inline result<void> write_limits(const CGroupDirs& dirs, const CGroupLimits& spec) {
  for (std::size_t i = 0; i < dirs.dirs.size(); ++i) {
    if (dirs.layout == CGroupLayout::unified) {
      HUTCH_TRYV(write_v2_limits(dirs.dirs[i], spec));
    } else {
      HUTCH_TRYV(write_v1_limits(dirs.dirs[i], dirs.controllers[i], spec));
    }
  }
  return success();
}

}  // namespace hutch::detail
