// hutch — the limits a CGroup holds, as plain data (cgroup.hpp builds them; the cgroupfs
// writer in cgroup_write.hpp reads them), and the block devices they and the stats name.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hutch {

/// Limits for a block device (io.max on v2, blkio.throttle.* on v1) in bytes or IOs per
/// second; 0 means no limit on that one, and at least one must be set. The device is a block
/// device node ("/dev/vda"), its numbers ("8:0"), or a file or directory, which stands for
/// the disk under its filesystem (see hutch::block_device()).
struct IoMax {
  std::string device;
  std::uint64_t read_bps = 0, write_bps = 0, read_iops = 0, write_iops = 0;
};

/// A block device that I/O limits apply to: a whole disk (loop, virtio, NVMe, device-mapper,
/// ...), never a partition. `hutch::block_device()` resolves a name to one.
struct BlockDevice {
  unsigned major = 0, minor = 0;
  std::string name;  // as /sys/block lists it: "vda", "loop3", "dm-0"
  std::string numbers() const { return std::to_string(major) + ":" + std::to_string(minor); }
  friend bool operator==(const BlockDevice&, const BlockDevice&) = default;
};

/// What a cgroup's processes moved to or from one block device (v2 io.stat, v1
/// blkio.throttle.io_service_bytes and io_serviced).
struct DeviceIoStats {
  unsigned major = 0, minor = 0;
  std::uint64_t read_bytes = 0, write_bytes = 0, read_ios = 0, write_ios = 0;
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
