// hutch — cgroupfs: checking limits against the host's hierarchies, creating a cgroup's
// directories (below the caller's own, or at a path an OCI config names) and writing its
// limits into them (v2 and v1), and reclaiming what dead hosts left.
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
#include "cgroup_io.hpp"
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

/// A cgroup path from a hierarchy's root: absolute, no "." or "..", no empty component.
inline bool clean_cgroup_path(std::string_view path) {
  if (path.size() < 2 || path[0] != '/' || path.back() == '/' || path.size() > 4096) return false;
  bool ok = true;
  split(path.substr(1), '/', [&](std::string_view part) {
    ok &= !part.empty() && part != "." && part != ".." && part.find('\0') == std::string::npos;
  });
  return ok;
}

inline result<void> check_cpusets(const CGroupLimits& spec, const Layout& layout) {
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

/// Checks limits before anything is created: names, ranges, devices, cpusets.
inline result<void> validate_limits(const CGroupLimits& spec, const Layout& layout) {
  const std::string& name = spec.name;
  if (!name.empty() && (name == "." || name == ".." || name.find('/') != std::string::npos ||
                        name.find('\0') != std::string::npos || name.size() > 200)) {
    return invalid(name, "a cgroup name is one path component: no '/', not '.' or '..'");
  }
  if (!spec.path.empty() && !clean_cgroup_path(spec.path)) {
    return invalid(spec.path, "a cgroup path is absolute, without '.', '..' or empty parts");
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
  if (spec.cpu_shares && (*spec.cpu_shares < 2 || *spec.cpu_shares > 262144)) {
    return invalid(std::to_string(*spec.cpu_shares), "cpu_shares is 2..262144");
  }
  if (spec.io_weight && (*spec.io_weight < 1 || *spec.io_weight > 10000)) {
    return invalid(std::to_string(*spec.io_weight), "io_weight is 1..10000");
  }
  if (spec.memory_swappiness && *spec.memory_swappiness > 100) {
    return invalid(std::to_string(*spec.memory_swappiness), "swappiness is 0..100");
  }
  if (spec.pids_max && *spec.pids_max == 0) return invalid("pids_max", "must be > 0");
  for (const auto& io : spec.io_max) {
    if (!io.read_bps && !io.write_bps && !io.read_iops && !io.write_iops) {
      return invalid(io.device, "an I/O limit needs a rate above 0 (bytes or IOs per second)");
    }
    HUTCH_TRYV(resolve_block_device(io.device));
  }
  for (const auto& [file, value] : spec.unified) {
    if (layout.kind != CGroupLayout::unified) {
      return invalid(file, "unified (cgroup v2) settings need a cgroup v2 host");
    }
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == ".." ||
        file.starts_with("cgroup.")) {
      return invalid(file, "not a cgroup v2 interface file");
    }
  }
  if (layout.kind == CGroupLayout::unified && (spec.memory_swappiness || spec.oom_kill_disable)) {
    return invalid(spec.memory_swappiness ? "memory_swappiness" : "oom_kill_disable",
                   "cgroup v2 has no such setting");
  }
  return check_cpusets(spec, layout);
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

  /// Creates `dir` and records it (so a later failure removes it). With `adopt`, an existing
  /// directory without processes is taken as it is (an OCI cgroupsPath's).
  result<void> make_dir(const std::string& dir, const std::string& names, bool adopt = false) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      if (errno == EEXIST && adopt &&
          read_text(dir + "/cgroup.procs").find_first_not_of(" \n") == std::string::npos) {
        dirs.push_back(dir);
        controllers.push_back("," + names + ",");
        return success();
      }
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

/// The v2 controllers a spec needs.
inline std::vector<std::string> v2_controllers(const CGroupLimits& spec) {
  std::vector<std::string> needed = {"pids", "memory"};
  if (spec.cpu_fraction || spec.cpu_weight || spec.cpu_shares || spec.cpu_idle) {
    needed.push_back("cpu");
  }
  if (!spec.cpuset_cpus.empty() || !spec.cpuset_mems.empty()) needed.push_back("cpuset");
  if (spec.io_weight || !spec.io_max.empty()) needed.push_back("io");
  return needed;
}

/// Controllers must be enabled in a parent's subtree_control; a cgroup that holds processes
/// (our own, unless it is the root) cannot enable them, and we never move the caller, so the
/// delegation must already be there.
inline result<void> enable_v2_controllers(const CGroupLimits& spec, const Hierarchy& h,
                                          const std::string& parent) {
  std::string enabled = " " + read_text(parent + "/cgroup.subtree_control") + " ";
  for (const auto& c : v2_controllers(spec)) {
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

/// The missing parents of a cgroupsPath in hierarchy `h`, made (on v2 with the controllers
/// enabled on the way; a v1 cpuset given its parent's cpus and mems, without which it takes
/// no task). Returns the leaf's path.
inline result<std::string> make_parents(const CGroupLimits& spec, const Hierarchy& h) {
  std::string dir = h.mount;
  if (h.v2) HUTCH_TRYV(enable_v2_controllers(spec, h, dir));
  std::vector<std::string_view> parts;
  split(std::string_view(spec.path).substr(1), '/',
        [&](std::string_view p) { parts.push_back(p); });
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string parent = dir;
    dir.append("/").append(parts[i]);
    const bool made = ::mkdir(dir.c_str(), 0755) == 0;
    if (!made && errno != EEXIST) {
      return last_error(Step::cgroup_create, dir, "a parent of the cgroup path");
    }
    if (made && h.has("cpuset") && !h.v2) {
      for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
        const std::string value = read_text(parent + "/" + file);
        write_text(dir + "/" + file, value.substr(0, value.find('\n')));
      }
    }
    if (h.v2) HUTCH_TRYV(enable_v2_controllers(spec, h, dir));
  }
  return dir + "/" + std::string(parts.back());
}

/// The leaf directory for hierarchy `h`: `name` below the caller's own cgroup, or the
/// cgroupsPath.
inline result<void> make_leaf(CGroupDirs& out, const CGroupLimits& spec, const Hierarchy& h,
                              const std::string& name) {
  std::string names;
  for (auto& c : h.controllers) names += (names.empty() ? "" : ",") + c;
  if (h.v2) names = "pids,memory,cpu,cpuset,io,freezer";
  if (spec.path.empty()) {
    if (h.v2) HUTCH_TRYV(enable_v2_controllers(spec, h, h.own_dir()));
    return out.make_dir(h.own_dir() + "/" + name, names);
  }
  HUTCH_TRY(const std::string leaf, make_parents(spec, h));
  return out.make_dir(leaf, names, /*adopt=*/true);
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
