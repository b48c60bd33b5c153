// hutch — the limits a CGroup holds, as plain data (cgroup.hpp builds them; the cgroupfs
// writer in cgroup_write.hpp reads them).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hutch {

/// Limits for a block device (io.max on v2, blkio.throttle.* on v1); 0 means no limit. The
/// device is a block device node ("/dev/vda") or its numbers ("8:0").
struct IoMax {
  std::string device;
  std::uint64_t read_bps = 0, write_bps = 0, read_iops = 0, write_iops = 0;
};

/// One device cgroup rule (devices.allow/deny on v1, an eBPF program on v2): type 'a'
/// (every device), 'c' or 'b'; -1 for any major or minor; access a subset of "rwm".
struct DeviceRule {
  bool allow = false;
  char type = 'a';
  long major = -1, minor = -1;
  std::string access = "rwm";
  friend bool operator==(const DeviceRule&, const DeviceRule&) = default;
};

namespace detail {

struct CGroupLimits {
  std::string name;  // empty: a unique one
  /// A path from the hierarchy's root instead of a name below the caller's own cgroup (an
  /// OCI config's cgroupsPath); made with its missing parents, an existing empty one adopted.
  std::string path;
  std::optional<std::uint64_t> memory_max, memory_high, memory_low, memory_swap_max, cpu_weight,
      cpu_shares, pids_max, io_weight, memory_swappiness;
  std::optional<bool> oom_kill_disable;
  std::optional<double> cpu_fraction;
  std::uint64_t cpu_quota_us = 0, cpu_period_us = 0;
  std::optional<bool> cpu_idle;
  std::string cpuset_cpus, cpuset_mems;
  std::vector<IoMax> io_max;
  std::optional<std::vector<DeviceRule>> devices;  // set: the rules, after denying all
  std::map<std::string, std::string> unified;      // v2 files to write as they are
};

}  // namespace detail
}  // namespace hutch
