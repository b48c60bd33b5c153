// hutch — the mount plan: a RootFs turned into the MountSteps the child runs, checked on
// the host before clone. Plain data in, plain data out: tests/unit/ checks it without
// spawning anything.
#pragma once

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <deque>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../namespaces.hpp"
#include "../rootfs.hpp"
#include "cgroup_layout.hpp"
#include "plan.hpp"

namespace hutch::detail {

/// Turns a RootFs into MountSteps for the child. Everything that can be checked on the host
/// is checked here, before clone, so bad input fails with nothing created.
struct RootFsPlanner {
  const RootFsSpec& fs;
  /// The host's cgroup layout, for the container's /sys/fs/cgroup; nullptr: none to show.
  const Layout* cgroup_layout;
  Namespaces namespaces;
  std::deque<std::string>& strings;
  std::vector<MountStep>& steps;

  const char* keep(std::string s) {
    strings.push_back(std::move(s));
    return strings.back().c_str();
  }

  static result<void> check_inside(const std::string& path) {
    if (path.empty() || path[0] != '/') {
      return invalid(path, "paths inside the container must be absolute");
    }
    for (std::string_view rest = path; !rest.empty();) {
      auto slash = rest.find('/');
      std::string_view part = rest.substr(0, slash);
      if (part == "..") return invalid(path, "a path inside the container may not contain '..'");
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
    if (path.find('\0') != std::string::npos) return invalid(path, "the path has a NUL byte");
    return success();
  }

  static result<void> check_overlay_path(const std::string& path) {
    if (path.find_first_of(",:\\") != std::string::npos) {
      return invalid(path, "overlayfs cannot take a layer path with ',', ':' or '\\'");
    }
    return success();
  }

  /// Validates and returns the absolute host path of every layer.
  result<std::vector<std::string>> check_layers() {
    if (fs.layers.empty()) return invalid("rootfs", "no layer given");
    std::vector<std::string> absolute;
    for (const auto& layer : fs.layers) {
      struct stat st {};
      if (::stat(layer.c_str(), &st) != 0) {
        return last_error(Step::prepare_rootfs, layer, "the root filesystem");
      }
      if (!S_ISDIR(st.st_mode)) {
        return make_error(Step::prepare_rootfs, ENOTDIR, layer, "the root filesystem");
      }
      std::error_code ec;
      auto path = std::filesystem::canonical(layer, ec);
      if (ec) return make_error(Step::prepare_rootfs, ec.value(), layer);
      absolute.push_back(path.string());
      if (fs.overlay) {
        HUTCH_TRYV(check_overlay_path(absolute.back()));
      }
    }
    return absolute;
  }

  void add(MountStep step) { steps.push_back(step); }

  void add_in_root(MountStep step) {
    step.in_root = true;
    steps.push_back(step);
  }

  /// Whether a mount the user asked for lands on `dir` or below it: then what is there is
  /// no longer only the kernel's, and steps in it resolve inside the root.
  bool user_mount_under(std::string_view dir) const {
    for (const auto& m : fs.mounts) {
      std::string_view t = m.target;
      while (t.size() > 1 && t.back() == '/') t.remove_suffix(1);
      if (t == "/" || (t.starts_with(dir) && (t.size() == dir.size() || t[dir.size()] == '/'))) {
        return true;
      }
    }
    return false;
  }

  /// The user's mounts, checked before anything is planned.
  result<void> check_mounts() const {
    for (const auto& m : fs.mounts) {
      HUTCH_TRYV(check_inside(m.target));
      if (m.kind == UserMount::Kind::tmpfs && m.size == 0) {
        return invalid(m.target, "a tmpfs needs a size above zero");
      }
      if (m.kind == UserMount::Kind::tmpfs && m.mode > 07777) {
        return invalid(m.target, "tmpfs mode is an octal permission up to 07777");
      }
    }
    return success();
  }

  /// Plans the steps. `scratch` is the overlay scratch directory (empty without overlay).
  /// Returns the host path of the new root, for Plan::new_root.
  result<const char*> plan(const std::string& scratch) {
    using Kind = MountStep::Kind;
    if (!namespaces.contains(Namespace::mount)) {
      return invalid("rootfs", "a root filesystem needs Namespace::mount");
    }
    HUTCH_TRY(const std::vector<std::string> layers, check_layers());
    HUTCH_TRYV(check_mounts());
    add({.kind = Kind::make_private});
    const char* root = fs.overlay ? plan_overlay(layers, scratch) : plan_in_place(layers.front());
    if (fs.has(Standard::proc)) plan_proc();
    if (fs.has(Standard::dev)) plan_dev();
    if (fs.has(Standard::sys)) plan_sys();
    std::vector<const Mount*> cgroup_mounts;
    HUTCH_TRYV(plan_user_mounts(cgroup_mounts));
    if (fs.has(Standard::devices)) plan_default_devices();
    HUTCH_TRYV(plan_devices());
    plan_masks();
    if (fs.read_only) {
      add_in_root({.kind = Kind::remount, .target = "/", .flags = MS_RDONLY});
    }
    // Everything above runs while the host may still be moving us into our cgroup (v1);
    // the container's /sys/fs/cgroup shows the cgroup namespace entered here.
    add({.kind = Kind::enter_cgroup});
    if (fs.has(Standard::cgroup) && fs.has(Standard::sys) &&
        namespaces.contains(Namespace::cgroup)) {
      plan_cgroup("/sys/fs/cgroup", MS_RDONLY);
    }
    for (const Mount* m : cgroup_mounts) plan_cgroup(keep(m->target), m->flags & MS_RDONLY);
    add_in_root({.kind = fs.chroot ? Kind::chroot : Kind::pivot_root, .target = "/"});
    if (fs.root_propagation) {
      add({.kind = Kind::propagate, .target = "/", .flags = fs.root_propagation});
    }
    return root;
  }

  /// The snapshot used in place: a bind of it onto itself, so it is a mount to pivot into.
  const char* plan_in_place(const std::string& layer) {
    const char* root = keep(layer);
    add({.kind = MountStep::Kind::bind, .source = root, .target = root, .flags = MS_REC});
    return root;
  }

  /// The layers under a writable overlay. A tmpfs on the scratch directory, in our mount
  /// namespace only, holds the upper and work directories; the merged root is mounted below.
  const char* plan_overlay(const std::vector<std::string>& layers, const std::string& scratch) {
    using Kind = MountStep::Kind;
    if (fs.scratch_parent.empty()) {
      add({.kind = Kind::mount,
           .source = "tmpfs",
           .target = keep(scratch),
           .fstype = "tmpfs",
           .data = "mode=0755",
           .flags = MS_NOSUID | MS_NODEV});
    }
    const char* upper = keep(scratch + "/upper");
    const char* work = keep(scratch + "/work");
    const char* root = keep(scratch + "/root");
    for (const char* dir : {upper, work, root}) add({.kind = Kind::mkdir, .target = dir});
    std::string lower;
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
      lower += (lower.empty() ? "" : ":") + *it;  // overlayfs wants the top layer first
    }
    add({.kind = Kind::mount,
         .source = "overlay",
         .target = root,
         .fstype = "overlay",
         // Inside a user namespace overlayfs can only read user.* xattrs: an image's
         // opaque directories (hutch/image.hpp) are marked with user.overlay.opaque too.
         .data = keep(fmt::format(
             "lowerdir={},upperdir={},workdir={}{}", lower, upper, work,
             layers.size() > 1 && namespaces.contains(Namespace::user) ? ",userxattr" : ""))});
    return root;
  }

  /// A procfs of its own with a pid namespace; the host's, bound, without one.
  void plan_proc() {
    if (namespaces.contains(Namespace::pid)) {
      add_in_root({.kind = MountStep::Kind::mount,
                   .create = true,
                   .source = "proc",
                   .target = "/proc",
                   .fstype = "proc",
                   .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
    } else {
      add_in_root({.kind = MountStep::Kind::bind,
                   .create = true,
                   .source = "/proc",
                   .target = "/proc",
                   .flags = MS_REC});
    }
  }

  /// A sysfs of its own where we may mount one (with our own network namespace, or as root
  /// without a user namespace), as runc does: none of the host's submounts (tracefs,
  /// cgroupfs, ...) come along. Otherwise the host's /sys, bound with its submounts and all
  /// of them made read-only.
  void plan_sys() {
    if (namespaces.contains(Namespace::net) || !namespaces.contains(Namespace::user)) {
      add_in_root({.kind = MountStep::Kind::mount,
                   .create = true,
                   .source = "sysfs",
                   .target = "/sys",
                   .fstype = "sysfs",
                   .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                   .network_sysfs = true});
    } else {
      add_in_root({.kind = MountStep::Kind::bind,
                   .create = true,
                   .source = "/sys",
                   .target = "/sys",
                   .flags = MS_REC | MS_RDONLY});
    }
  }

  /// RootFs::bind, tmpfs, mount, mask and readonly, in the order given; cgroup mounts are
  /// left in `cgroups` for after the cgroup namespace is entered.
  result<void> plan_user_mounts(std::vector<const Mount*>& cgroups) {
    for (const auto& m : fs.mounts) {
      if (m.kind == UserMount::Kind::mount) {
        if (m.mount.type == "cgroup" || m.mount.type == "cgroup2") {
          cgroups.push_back(&m.mount);
        } else {
          HUTCH_TRYV(plan_mount(m.mount));
        }
      } else if (m.kind == UserMount::Kind::mask || m.kind == UserMount::Kind::readonly) {
        add_in_root({.kind = m.kind == UserMount::Kind::mask ? MountStep::Kind::mask
                                                             : MountStep::Kind::readonly,
                     .optional = true,
                     .target = keep(m.target)});
      } else if (m.kind == UserMount::Kind::bind) {
        struct stat st {};
        if (::stat(m.source.c_str(), &st) != 0) {
          return last_error(Step::prepare_rootfs, m.source, "bind source");
        }
        const unsigned long read_only_flag =
            m.access == read_only ? static_cast<unsigned long>(MS_RDONLY) : 0ul;
        add_in_root({.kind = MountStep::Kind::bind,
                     .create = true,
                     .create_file = !S_ISDIR(st.st_mode),
                     .source = keep(m.source),
                     .target = keep(m.target),
                     .flags = MS_REC | read_only_flag});
      } else {
        add_in_root({.kind = MountStep::Kind::mount,
                     .create = true,
                     .source = "tmpfs",
                     .target = keep(m.target),
                     .fstype = "tmpfs",
                     .data = keep(fmt::format("size={},mode={:o}", m.size, m.mode)),
                     .flags = MS_NOSUID | MS_NODEV});
      }
    }
    return success();
  }

  /// A mount in full (RootFs::mount): a bind, with its attributes set by mount_setattr; or a
  /// filesystem; then its propagation. A sysfs that a user namespace without a network
  /// namespace cannot have is the host's, bound read-only, as runc does rootless.
  result<void> plan_mount(const Mount& m) {
    const bool bind = m.type == "bind" || (m.flags & MS_BIND);
    const bool host_sys = m.type == "sysfs" && namespaces.contains(Namespace::user) &&
                          !namespaces.contains(Namespace::net);
    const char* target = keep(m.target);
    constexpr unsigned long rec = MS_REC, ro = MS_RDONLY;
    if (bind || host_sys) {
      const std::string source = host_sys ? "/sys" : m.source;
      struct stat st {};
      if (::stat(source.c_str(), &st) != 0) {
        return last_error(Step::prepare_rootfs, source, "bind source");
      }
      add_in_root({.kind = MountStep::Kind::bind,
                   .create = true,
                   .create_file = !S_ISDIR(st.st_mode),
                   .source = keep(source),
                   .target = target,
                   .flags = (m.flags & MS_REC) | (host_sys ? rec : 0ul)});
      const unsigned long attributes = mount_attributes(m.flags | (host_sys ? ro : 0ul));
      if (attributes) {
        add_in_root({.kind = MountStep::Kind::attributes,
                     .target = target,
                     .flags = attributes,
                     .recursive = m.recursive_attributes || host_sys});
      }
    } else {
      add_in_root({.kind = MountStep::Kind::mount,
                   .create = true,
                   .source = keep(m.source.empty() ? m.type : m.source),
                   .target = target,
                   .fstype = keep(m.type),
                   .data = m.data.empty() ? nullptr : keep(m.data),
                   .flags = m.flags & ~static_cast<unsigned long>(MS_REC | MS_BIND),
                   .network_sysfs = m.type == "sysfs"});
    }
    if (m.propagation) {
      add_in_root({.kind = MountStep::Kind::propagate, .target = target, .flags = m.propagation});
    }
    return success();
  }

  /// mount(2)'s per-mount flags as mount_setattr(2)'s MOUNT_ATTR_* bits.
  static unsigned long mount_attributes(unsigned long flags) {
    unsigned long out = 0;
    if (flags & MS_RDONLY) out |= 0x1;  // MOUNT_ATTR_RDONLY
    if (flags & MS_NOSUID) out |= 0x2;  // MOUNT_ATTR_NOSUID
    if (flags & MS_NODEV) out |= 0x4;   // MOUNT_ATTR_NODEV
    if (flags & MS_NOEXEC) out |= 0x8;  // MOUNT_ATTR_NOEXEC
    return out;
  }

  /// The default devices of an OCI runtime in the mounts' /dev: the host's nodes bound (as
  /// with Standard::dev), and the /dev links.
  void plan_default_devices() {
    for (const char* name : {"null", "zero", "full", "random", "urandom", "tty"}) {
      add_in_root({.kind = MountStep::Kind::bind,
                   .create = true,
                   .create_file = true,
                   .source = keep(fmt::format("/dev/{}", name)),
                   .target = keep(fmt::format("/dev/{}", name))});
    }
    for (auto [link, to] : {std::pair{"/dev/ptmx", "pts/ptmx"},
                            {"/dev/fd", "/proc/self/fd"},
                            {"/dev/stdin", "/proc/self/fd/0"},
                            {"/dev/stdout", "/proc/self/fd/1"},
                            {"/dev/stderr", "/proc/self/fd/2"}}) {
      add_in_root(
          {.kind = MountStep::Kind::symlink, .optional = true, .source = to, .target = link});
    }
  }

  /// RootFs::device: the host's node of the same type and number bound where there is one,
  /// else a node made (mknod).
  result<void> plan_devices() {
    for (const Device& d : fs.devices) {
      HUTCH_TRYV(check_inside(d.path));
      const mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
      if (d.type != 'b' && d.type != 'c' && d.type != 'p') {
        return invalid(d.path, "a device is of type c, b or p");
      }
      const dev_t number = type == S_IFIFO ? 0 : makedev(d.major, d.minor);
      struct stat st {};
      if (type != S_IFIFO && ::stat(d.path.c_str(), &st) == 0 && (st.st_mode & S_IFMT) == type &&
          st.st_rdev == number) {
        add_in_root({.kind = MountStep::Kind::bind,
                     .create = true,
                     .create_file = true,
                     .source = keep(d.path),
                     .target = keep(d.path)});
        continue;
      }
      add_in_root({.kind = MountStep::Kind::node,
                   .target = keep(d.path),
                   .mode = static_cast<unsigned>(type | (d.mode & 07777)),
                   .device = number});
    }
    return success();
  }

  /// The OCI default masked and read-only paths. Under a /proc or /sys that we mounted and
  /// no user mount covers, they are `here` steps.
  void plan_masks() {
    using Kind = MountStep::Kind;
    std::vector<std::pair<Kind, const char*>> proc, sys;
    if (fs.has(Standard::masked_paths)) {
      for (const char* name : {"acpi", "asound", "kcore", "keys", "latency_stats", "timer_list",
                               "timer_stats", "sched_debug", "scsi"}) {
        proc.emplace_back(Kind::mask, name);
      }
      for (const char* name : {"firmware", "devices/virtual/powercap"}) {
        sys.emplace_back(Kind::mask, name);
      }
    }
    if (fs.has(Standard::readonly_paths)) {
      for (const char* name : {"bus", "fs", "irq", "sys", "sysrq-trigger"}) {
        proc.emplace_back(Kind::readonly, name);
      }
    }
    plan_in("/proc", proc, fs.has(Standard::proc) && !user_mount_under("/proc"));
    plan_in("/sys", sys, fs.has(Standard::sys) && !user_mount_under("/sys"));
  }

  /// Optional steps on entries of `dir`: `here` steps if `fresh`, else resolved in the root.
  void plan_in(const char* dir, const std::vector<std::pair<MountStep::Kind, const char*>>& list,
               bool fresh) {
    if (list.empty()) return;
    if (fresh) add_in_root({.kind = MountStep::Kind::enter, .target = dir});
    for (auto [kind, name] : list) {
      if (fresh) {
        add({.kind = kind, .optional = true, .here = true, .target = name});
      } else {
        add_in_root(
            {.kind = kind, .optional = true, .target = keep(fmt::format("{}/{}", dir, name))});
      }
    }
  }

  /// /sys/fs/cgroup (or `target`) as the container sees it: inside its cgroup namespace a new
  /// cgroupfs shows its own cgroup as the root, with its limits, read-only unless `read_only`
  /// is 0.
  void plan_cgroup(const char* target, unsigned long read_only) {
    using Kind = MountStep::Kind;
    if (!cgroup_layout) return;  // no cgroupfs on the host: nothing to show
    const Layout* layout = cgroup_layout;
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | read_only;
    if (layout->kind == CGroupLayout::unified) {
      add_in_root({.kind = Kind::mount,
                   .create = true,
                   .source = "cgroup2",
                   .target = target,
                   .fstype = "cgroup2",
                   .flags = flags});
      return;
    }
    add_in_root({.kind = Kind::mount,
                 .create = true,
                 .source = "tmpfs",
                 .target = target,
                 .fstype = "tmpfs",
                 .data = "mode=755,size=64k",
                 .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
    add_in_root({.kind = Kind::enter, .target = target});
    for (const auto& h : layout->hierarchies) {
      std::string controllers;
      for (const auto& c : h.controllers) controllers += (controllers.empty() ? "" : ",") + c;
      const char* name = keep(controllers);
      add({.kind = Kind::mount,
           .create = true,
           .here = true,
           .source = "cgroup",
           .target = name,
           .fstype = "cgroup",
           .data = name,
           .flags = flags});
    }
    if (read_only) add({.kind = Kind::remount, .here = true, .target = ".", .flags = MS_RDONLY});
  }

  void plan_dev() {
    using Kind = MountStep::Kind;
    add_in_root({.kind = Kind::mount,
                 .create = true,
                 .source = "tmpfs",
                 .target = "/dev",
                 .fstype = "tmpfs",
                 .data = "mode=755,size=65536k",
                 .flags = MS_NOSUID | MS_STRICTATIME});
    // Bind the host's device nodes rather than mknod: it works the same with and without a
    // user namespace (where mknod is not allowed), as runc does rootless.
    add_in_root({.kind = Kind::enter, .target = "/dev"});
    for (auto [name, host] : {std::pair{"null", "/dev/null"},
                              {"zero", "/dev/zero"},
                              {"full", "/dev/full"},
                              {"random", "/dev/random"},
                              {"urandom", "/dev/urandom"},
                              {"tty", "/dev/tty"}}) {
      add({.kind = Kind::bind,
           .create = true,
           .create_file = true,
           .here = true,
           .source = host,
           .target = name});
    }
    auto mount_here = [&](const char* source, const char* target, const char* fstype,
                          const char* data, unsigned long flags) {
      add({.kind = Kind::mount,
           .create = true,
           .here = true,
           .source = source,
           .target = target,
           .fstype = fstype,
           .data = data,
           .flags = flags});
    };
    mount_here("devpts", "pts", "devpts", "newinstance,ptmxmode=0666,mode=0620",
               MS_NOSUID | MS_NOEXEC);
    mount_here("shm", "shm", "tmpfs", "mode=1777,size=65536k", MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (namespaces.contains(Namespace::ipc)) {
      // The container's own POSIX message queues (without an ipc namespace they would be
      // the host's: left out then).
      mount_here("mqueue", "mqueue", "mqueue", nullptr, MS_NOSUID | MS_NODEV | MS_NOEXEC);
    }
    for (auto [link, to] : {std::pair{"ptmx", "pts/ptmx"},
                            {"fd", "/proc/self/fd"},
                            {"stdin", "/proc/self/fd/0"},
                            {"stdout", "/proc/self/fd/1"},
                            {"stderr", "/proc/self/fd/2"}}) {
      add({.kind = Kind::symlink, .here = true, .source = to, .target = link});
    }
  }
};

}  // namespace hutch::detail
