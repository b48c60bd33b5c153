// hutch — cgroupfs: checking limits against the host's hierarchies and creating a cgroup's
// directories with its limits written (v2 and v1).
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "cgroup_layout.hpp"
#include "cgroup_limits.hpp"
#include "scratch.hpp"

namespace hutch::detail {

inline std::atomic<unsigned> cgroup_counter{0};

/// The least memory limit a container may have (Docker's floor too). Below it the container's
/// own setup runs out: its mounts, namespaces and page tables are charged to its cgroup while
/// it still shares the host's memory (CLONE_VM) — and the OOM killer ends every process that
/// shares the victim's memory, the host included.
inline constexpr std::uint64_t min_memory_limit = std::uint64_t{6} << 20;

/// Checks limits before anything is created: names, ranges, devices, cpusets.
inline result<void> validate_limits(const CGroupLimits& spec, const Layout& layout) {
  const std::string& name = spec.name;
  if (!name.empty() && (name == "." || name == ".." || name.find('/') != std::string::npos ||
                        name.find('\0') != std::string::npos || name.size() > 200)) {
    return invalid(name, "a cgroup name is one path component: no '/', not '.' or '..'");
  }
  for (auto [limit, what] :
       {std::pair{spec.memory_max, "memory_max"}, std::pair{spec.memory_high, "memory_high"}}) {
    if (limit && *limit < min_memory_limit) {
      return invalid(fmt::format("{} {}", what, *limit),
                     "a container needs at least 6 MiB: a smaller limit would end its setup "
                     "(and, sharing the host's memory then, the host) in the OOM killer");
    }
  }
  if (spec.cpu_fraction) {
    if (!(*spec.cpu_fraction > 0) || spec.cpu_quota_us < 1000 || spec.cpu_period_us < 1000 ||
        spec.cpu_period_us > 1000000) {
      return invalid("cpu_max",
                     "needs a quota of at least 1000 us and a period of 1000-1000000 us");
    }
  }
  if (spec.cpu_weight && (*spec.cpu_weight < 1 || *spec.cpu_weight > 10000)) {
    return invalid(std::to_string(*spec.cpu_weight), "cpu_weight is 1..10000");
  }
  if (spec.io_weight && (*spec.io_weight < 1 || *spec.io_weight > 10000)) {
    return invalid(std::to_string(*spec.io_weight), "io_weight is 1..10000");
  }
  if (spec.pids_max && *spec.pids_max == 0) return invalid("pids_max", "must be > 0");
  for (const auto& io : spec.io_max) {
    struct stat st {};
    if (::stat(io.device.c_str(), &st) != 0) {
      return last_error(Step::validate, io.device, "io_max device");
    }
    if (!S_ISBLK(st.st_mode)) {
      return make_error(Step::validate, ENOTBLK, io.device, "io_max needs a block device");
    }
  }
  for (auto [list, file, what] : {std::tuple{&spec.cpuset_cpus, "cpuset.cpus", "cpuset_cpus"},
                                  std::tuple{&spec.cpuset_mems, "cpuset.mems", "cpuset_mems"}}) {
    if (list->empty()) continue;
    std::vector<unsigned> wanted, allowed;
    if (!parse_list(*list, wanted) || wanted.empty()) {
      return invalid(*list, fmt::format("{} is a list like \"0-2,4\"", what));
    }
    const Hierarchy* h = nullptr;
    for (const auto& candidate : layout.hierarchies) {
      if (candidate.has("cpuset")) h = &candidate;
    }
    if (!h) return make_error(Step::validate, ENOTSUP, what, "no cpuset controller");
    std::string parent = read_text(h->own_dir() + "/" + file + (h->v2 ? ".effective" : ""));
    parse_list(parent, allowed);
    for (unsigned n : wanted) {
      if (std::find(allowed.begin(), allowed.end(), n) == allowed.end()) {
        return invalid(*list, fmt::format("{} must be a subset of the caller's ({})", what,
                                          parent.substr(0, parent.find('\n'))));
      }
    }
  }
  return success();
}

inline std::string device_numbers(const std::string& device) {
  struct stat st {};
  ::stat(device.c_str(), &st);
  return fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
}

/// The directories of one cgroup, one per hierarchy (v2: one), with the controllers each
/// holds. Plain data; LiveCGroup owns one and removes them.
struct CGroupDirs {
  CGroupLayout layout = CGroupLayout::unified;
  std::vector<std::string> dirs;
  std::vector<std::string> controllers;  // ",memory," etc., parallel to dirs

  std::optional<std::string> dir_of(std::string_view controller) const {
    std::string needle;  // ",name,": built in steps, as gcc 12 -O3 misreads "," + string
    needle.append(1, ',').append(controller).append(1, ',');
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      if (controllers.size() > i && controllers[i].find(needle) != std::string::npos) {
        return dirs[i];
      }
    }
    return std::nullopt;
  }

  /// Creates `dir` and records it (so a later failure removes it).
  result<void> make_dir(const std::string& dir, const std::string& names) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      std::string note;
      if (errno == EEXIST) note = "hutch only uses cgroups it creates; pick another name";
      if (errno == EACCES || errno == EPERM || errno == EROFS) {
        note = layout == CGroupLayout::unified
                   ? "the caller's cgroup is not delegated to this user: run under a "
                     "delegated unit, e.g. systemd-run --user --scope -p Delegate=yes"
                   : "cgroup v1 hierarchies are writable only by root";
      }
      return last_error(Step::cgroup_create, dir, std::move(note));
    }
    dirs.push_back(dir);
    controllers.push_back("," + names + ",");
    return success();
  }
};

inline result<void> write_limit(const std::string& dir, const std::string& file,
                                const std::string& value) {
  if (!write_text(dir + "/" + file, value)) {
    return last_error(Step::cgroup_configure, dir + "/" + file, value);
  }
  return success();
}

/// Controllers must be enabled in the parent's subtree_control; a cgroup that holds processes
/// (our own, unless it is the root) cannot enable them, and we never move the caller, so the
/// delegation must already be there.
inline result<void> enable_v2_controllers(const CGroupLimits& spec, const Hierarchy& h) {
  std::vector<std::string> needed = {"pids", "memory"};
  if (spec.cpu_fraction || spec.cpu_weight) needed.push_back("cpu");
  if (!spec.cpuset_cpus.empty() || !spec.cpuset_mems.empty()) needed.push_back("cpuset");
  if (spec.io_weight || !spec.io_max.empty()) needed.push_back("io");
  const std::string parent = h.own_dir();
  std::string enabled = " " + read_text(parent + "/cgroup.subtree_control") + " ";
  for (const auto& c : needed) {
    if (enabled.find(" " + c + " ") != std::string::npos ||
        enabled.find(" " + c + "\n") != std::string::npos) {
      continue;
    }
    if (!h.has(c)) {
      return make_error(Step::cgroup_create, ENOTSUP, c,
                        fmt::format("controller not available in {}", h.mount));
    }
    if (!write_text(parent + "/cgroup.subtree_control", "+" + c)) {
      return last_error(Step::cgroup_create, parent + "/cgroup.subtree_control",
                        fmt::format("controller {} is not delegated to the caller's cgroup; "
                                    "delegate it with systemd (Delegate=yes, or "
                                    "systemd-run --scope -p Delegate={})",
                                    c, c));
    }
  }
  return success();
}

inline result<void> create_v2(CGroupDirs& out, const CGroupLimits& spec, const Hierarchy& h,
                              const std::string& name) {
  HUTCH_TRYV(enable_v2_controllers(spec, h));
  const std::string dir = h.own_dir() + "/" + name;
  HUTCH_TRYV(out.make_dir(dir, "pids,memory,cpu,cpuset,io,freezer"));
  auto number = [](std::uint64_t v) { return std::to_string(v); };
  const std::pair<const char*, std::optional<std::uint64_t>> plain[] = {
      {"memory.max", spec.memory_max},
      {"memory.high", spec.memory_high},
      {"memory.swap.max", spec.memory_swap_max},
      {"cpu.weight", spec.cpu_weight},
      {"pids.max", spec.pids_max}};
  for (const auto& [file, value] : plain) {
    if (value) HUTCH_TRYV(write_limit(dir, file, number(*value)));
  }
  if (spec.cpu_fraction) {
    HUTCH_TRYV(
        write_limit(dir, "cpu.max", fmt::format("{} {}", spec.cpu_quota_us, spec.cpu_period_us)));
  }
  if (!spec.cpuset_cpus.empty()) HUTCH_TRYV(write_limit(dir, "cpuset.cpus", spec.cpuset_cpus));
  if (!spec.cpuset_mems.empty()) HUTCH_TRYV(write_limit(dir, "cpuset.mems", spec.cpuset_mems));
  if (spec.io_weight) {
    HUTCH_TRYV(write_limit(dir, "io.weight", fmt::format("default {}", *spec.io_weight)));
  }
  for (const auto& io : spec.io_max) {
    auto limit = [](std::uint64_t v) { return v ? std::to_string(v) : std::string("max"); };
    HUTCH_TRYV(
        write_limit(dir, "io.max",
                    fmt::format("{} rbps={} wbps={} riops={} wiops={}", device_numbers(io.device),
                                limit(io.read_bps), limit(io.write_bps), limit(io.read_iops),
                                limit(io.write_iops))));
  }
  return success();
}

/// One v1 hierarchy's directory and the limits its controllers take.
inline result<void> create_v1_in(CGroupDirs& out, const CGroupLimits& spec, const Hierarchy& h,
                                 const std::string& name) {
  std::string names;
  for (auto& c : h.controllers) names += (names.empty() ? "" : ",") + c;
  const std::string dir = h.own_dir() + "/" + name;
  HUTCH_TRYV(out.make_dir(dir, names));
  if (h.has("memory")) {
    if (spec.memory_max) {
      HUTCH_TRYV(write_limit(dir, "memory.limit_in_bytes", std::to_string(*spec.memory_max)));
    }
    if (spec.memory_high) {
      HUTCH_TRYV(write_limit(dir, "memory.soft_limit_in_bytes", std::to_string(*spec.memory_high)));
    }
    if (spec.memory_swap_max) {
      std::uint64_t memory = spec.memory_max.value_or(*spec.memory_swap_max);
      HUTCH_TRYV(write_limit(dir, "memory.memsw.limit_in_bytes",
                             std::to_string(memory + *spec.memory_swap_max)));
    }
  }
  if (h.has("cpu")) {
    if (spec.cpu_fraction) {
      HUTCH_TRYV(write_limit(dir, "cpu.cfs_period_us", std::to_string(spec.cpu_period_us)));
      HUTCH_TRYV(write_limit(dir, "cpu.cfs_quota_us", std::to_string(spec.cpu_quota_us)));
    }
    if (spec.cpu_weight) {
      // The inverse of the shares -> weight conversion runc and the kernel docs use.
      std::uint64_t shares = 2 + ((*spec.cpu_weight - 1) * 262142) / 9999;
      HUTCH_TRYV(write_limit(dir, "cpu.shares", std::to_string(shares)));
    }
  }
  if (h.has("cpuset")) {
    // A new v1 cpuset starts empty and takes no task until both lists are set.
    auto first_line = [](std::string s) { return s.substr(0, s.find('\n')); };
    const std::string parent_cpus = first_line(read_text(h.own_dir() + "/cpuset.cpus"));
    const std::string parent_mems = first_line(read_text(h.own_dir() + "/cpuset.mems"));
    HUTCH_TRYV(
        write_limit(dir, "cpuset.cpus", spec.cpuset_cpus.empty() ? parent_cpus : spec.cpuset_cpus));
    HUTCH_TRYV(
        write_limit(dir, "cpuset.mems", spec.cpuset_mems.empty() ? parent_mems : spec.cpuset_mems));
  }
  if (h.has("pids") && spec.pids_max) {
    HUTCH_TRYV(write_limit(dir, "pids.max", std::to_string(*spec.pids_max)));
  }
  if (h.has("blkio")) {
    if (spec.io_weight) {
      std::uint64_t weight = 10 + (*spec.io_weight - 1) * 990 / 9999;
      HUTCH_TRYV(write_limit(dir, "blkio.weight", std::to_string(weight)));
    }
    for (const auto& io : spec.io_max) {
      const std::string dev = device_numbers(io.device);
      const std::pair<const char*, std::uint64_t> limits[] = {
          {"blkio.throttle.read_bps_device", io.read_bps},
          {"blkio.throttle.write_bps_device", io.write_bps},
          {"blkio.throttle.read_iops_device", io.read_iops},
          {"blkio.throttle.write_iops_device", io.write_iops}};
      for (auto [file, value] : limits) {
        if (value) HUTCH_TRYV(write_limit(dir, file, fmt::format("{} {}", dev, value)));
      }
    }
  }
  return success();
}

inline result<void> create_v1(CGroupDirs& out, const CGroupLimits& spec, const Layout& layout,
                              const std::string& name) {
  const bool cpu = spec.cpu_fraction || spec.cpu_weight;
  const bool cpuset = !spec.cpuset_cpus.empty() || !spec.cpuset_mems.empty();
  const bool io = spec.io_weight || !spec.io_max.empty();
  for (const auto& h : layout.hierarchies) {
    // Always: memory (limits, stats, OOM), pids, cpuacct (CPU time), freezer (freeze and
    // kill_all). The rest only when a limit needs them.
    bool wanted = h.has("memory") || h.has("pids") || h.has("cpuacct") || h.has("freezer") ||
                  (cpu && h.has("cpu")) || (cpuset && h.has("cpuset")) || (io && h.has("blkio"));
    if (wanted) HUTCH_TRYV(create_v1_in(out, spec, h, name));
  }
  return success();
}

/// Removes the empty cgroups that hosts now gone left below the caller's own cgroup (a host
/// killed with SIGKILL never removes its containers' cgroups): only names of the form
/// "hutch-<pid>-<start>-<n>" whose process no longer exists, older than a minute, and only
/// with rmdir, which the kernel refuses for a cgroup that still has processes (a container
/// that outlived its host keeps its own).
inline void reclaim_cgroups(const Layout& layout) {
  for (const auto& h : layout.hierarchies) {
    const std::string parent = h.own_dir();
    DIR* d = ::opendir(parent.c_str());
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (!name.starts_with("hutch-") || !owner_is_gone(name)) continue;
      struct stat st {};
      const std::string dir = parent + "/" + std::string(name);
      if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && older_than(st, 60)) {
        ::rmdir(dir.c_str());
      }
    }
    ::closedir(d);
  }
}

}  // namespace hutch::detail
