// hutch — the limits a CGroup holds, as plain data (cgroup.hpp builds them; the cgroupfs
// writer in cgroup_fs.hpp reads them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hutch {

/// Limits for a block device (io.max on v2, blkio.throttle.* on v1); 0 means no limit.
struct IoMax {
  std::string device;  // a block device node, e.g. "/dev/vda"
  std::uint64_t read_bps = 0, write_bps = 0, read_iops = 0, write_iops = 0;
};

namespace detail {

struct CGroupLimits {
  std::string name;  // empty: a unique one
  std::optional<std::uint64_t> memory_max, memory_high, memory_swap_max, cpu_weight, pids_max,
      io_weight;
  std::optional<double> cpu_fraction;
  std::uint64_t cpu_quota_us = 0, cpu_period_us = 0;
  std::string cpuset_cpus, cpuset_mems;
  std::vector<IoMax> io_max;
};

}  // namespace detail
}  // namespace hutch
