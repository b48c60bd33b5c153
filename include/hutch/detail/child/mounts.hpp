// hutch — the child side of spawn(), between clone and exec: the filesystem steps (the mount
// plan of detail/mount_plan.hpp), run in order in the child's mount namespace.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#include "../plan.hpp"
#include "../syscall.hpp"
#include "paths.hpp"
#include "report.hpp"
#include "sync.hpp"

namespace hutch::detail::child {

/// The mount flags that a remount must keep: in a user namespace, flags inherited from a
/// more privileged mount are locked and dropping them fails with EPERM.
HUTCH_CHILD_CODE inline unsigned long locked_flags(const char* path) noexcept {
  struct statfs info {};
  if (raw::sys(SYS_statfs, path, &info) < 0) return 0;
  const unsigned long flags = static_cast<unsigned long>(info.f_flags);
  unsigned long out = 0;
  if (flags & ST_NOSUID) out |= MS_NOSUID;
  if (flags & ST_NODEV) out |= MS_NODEV;
  if (flags & ST_NOEXEC) out |= MS_NOEXEC;
  if (flags & ST_NOATIME) out |= MS_NOATIME;
  if (flags & ST_NODIRATIME) out |= MS_NODIRATIME;
  if (flags & ST_RELATIME) out |= MS_RELATIME;
  return out;
}

/// Remounts the mount at `target` as a bind with `flags`, keeping its locked flags.
HUTCH_CHILD_CODE inline long remount(const char* target, unsigned long flags) noexcept {
  return raw::sys(SYS_mount, nullptr, target, nullptr,
                  MS_REMOUNT | MS_BIND | flags | locked_flags(target), nullptr);
}

/// Makes the mount at `target` and every mount below it read-only: a recursive bind brings
/// the source's submounts along (/sys has tracefs, cgroupfs, ...), and a remount would leave
/// them writable. mount_setattr(2), Linux 5.12; older kernels get ENOSYS, and the spawn fails
/// rather than leave a writable mount behind a read-only one.
HUTCH_CHILD_CODE inline long make_read_only(const char* target) noexcept {
  struct {
    std::uint64_t attr_set, attr_clr, propagation, userns_fd;
  } attr{0x1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
  return raw::sys(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr);
}

/// Hides `target`: /dev/null over a file, an empty read-only tmpfs over a directory. With
/// `shared` (an O_PATH descriptor of such a tmpfs, or -1) the directory gets a bind of that
/// one: cheaper than a new filesystem, to make and to tear down.
HUTCH_CHILD_CODE inline long mask(const char* target, bool directory, int shared) noexcept {
  if (!directory) return raw::sys(SYS_mount, "/dev/null", target, nullptr, MS_BIND, nullptr);
  if (shared >= 0) {
    char source[32];
    return raw::sys(SYS_mount, fd_path(source, shared), target, nullptr, MS_BIND, nullptr);
  }
  return raw::sys(SYS_mount, "tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                  "mode=0555");
}

/// What the mount steps keep between them.
struct MountState {
  int root = -1;   // the new root, opened once the steps that build it have run
  int mask = -1;   // the first empty read-only tmpfs that masks a directory: bound for the others
  int sysfs = -1;  // Plan::sysfs_fd until a network_sysfs step has used it
};

/// Moves the detached sysfs `fd` (made read-only, nosuid, nodev and noexec with its network
/// namespace) onto `target`, then clears what the step's `flags` do not ask for.
HUTCH_CHILD_CODE inline long attach_sysfs(int fd, const char* target,
                                          unsigned long flags) noexcept {
  // The target is a resolved /proc/self/fd/N: its magic link is followed (T_SYMLINKS).
  long r = raw::sys(SYS_move_mount, fd, "", AT_FDCWD, target,
                    0x4 | 0x10 /* MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS */);
  std::uint64_t clear = 0;
  if (!(flags & MS_RDONLY)) clear |= 0x1;  // MOUNT_ATTR_RDONLY
  if (!(flags & MS_NOSUID)) clear |= 0x2;  // MOUNT_ATTR_NOSUID
  if (!(flags & MS_NODEV)) clear |= 0x4;   // MOUNT_ATTR_NODEV
  if (!(flags & MS_NOEXEC)) clear |= 0x8;  // MOUNT_ATTR_NOEXEC
  if (r < 0 || clear == 0) return r;
  struct {
    std::uint64_t attr_set, attr_clr, propagation, userns_fd;
  } attr{0, clear, 0, 0};
  return raw::sys(SYS_mount_setattr, AT_FDCWD, target, 0, &attr, sizeof attr);
}

/// Creates the missing target of a `here` step in the working directory.
HUTCH_CHILD_CODE inline long create_here(const MountStep& step) noexcept {
  long r = step.create_file ? raw::sys(SYS_mknodat, AT_FDCWD, step.target, S_IFREG | 0644, 0)
                            : raw::sys(SYS_mkdirat, AT_FDCWD, step.target, step.mode);
  return r == -EEXIST ? 0 : r;
}

/// A step's target as a path mount(2) can take: for `in_root` steps the target looked up
/// inside the new root and named through /proc/self/fd (its O_PATH descriptor in `fd`); for
/// `here` steps the path relative to the working directory (a kernel filesystem this child
/// has just mounted, see MountStep::here); else the host path. nullptr with `error` set, or
/// with `error` 0 when an optional target is missing.
HUTCH_CHILD_CODE inline const char* target_of(const MountStep& step, const MountState& state,
                                              long& fd, char (&buffer)[32], long& error) noexcept {
  error = 0;
  if (step.here) {
    if (step.create) error = create_here(step);
    return error < 0 ? nullptr : step.target;
  }
  if (!step.in_root) return step.target;
  fd = resolve_target(state.root, step);
  if (fd < 0) {
    error = fd == -ENOENT && step.optional ? 0 : fd;
    fd = -1;
    return nullptr;
  }
  return fd_path(buffer, fd);
}

/// An in-root symlink: made in its resolved parent directory.
HUTCH_CHILD_CODE inline long symlink_in_root(const MountStep& step, int root) noexcept {
  const char* path = step.target;
  while (*path == '/') ++path;
  const char* name = nullptr;
  long parent = open_parent_in_root(root, path, name);
  if (parent < 0) return parent;
  long r = raw::sys(SYS_symlinkat, step.source, parent, name);
  raw::sys(SYS_close, parent);
  return r == -EEXIST && step.optional ? 0 : r;
}

/// A device node made in its resolved parent directory, then given its mode (mknod obeys the
/// umask).
HUTCH_CHILD_CODE inline long node_in_root(const MountStep& step, int root) noexcept {
  const char* path = step.target;
  while (*path == '/') ++path;
  const char* name = nullptr;
  long parent = open_parent_in_root(root, path, name);
  if (parent < 0) return parent;
  long r = raw::sys(SYS_mknodat, parent, name, step.mode, step.device);
  if (r == -EEXIST) r = 0;
  if (r == 0) r = raw::sys(SYS_fchmodat, parent, name, step.mode & 07777, 0);
  raw::sys(SYS_close, parent);
  return r;
}

/// mount_setattr(2): the attributes of the mount at `target` (and below it, if recursive).
HUTCH_CHILD_CODE inline long set_attributes(const char* target, unsigned long attributes,
                                            bool recursive) noexcept {
  struct {
    std::uint64_t attr_set, attr_clr, propagation, userns_fd;
  } attr{attributes, 0, 0, 0};
  return raw::sys(SYS_mount_setattr, AT_FDCWD, target, recursive ? AT_RECURSIVE : 0, &attr,
                  sizeof attr);
}

/// A bind (recursive), made read-only with its submounts when asked.
HUTCH_CHILD_CODE inline long bind(const MountStep& step, const MountState& state,
                                  const char* target, long& fd, char (&buffer)[32]) noexcept {
  using Kind = MountStep::Kind;
  const char* source = step.kind == Kind::bind ? step.source : target;
  long r = raw::sys(SYS_mount, source, target, nullptr, MS_BIND | MS_REC, nullptr);
  if (r == -ENOENT && step.optional && step.here) return 0;
  if (r != 0 || (step.kind != Kind::readonly && !(step.flags & MS_RDONLY))) return r;
  if (!step.here) {
    // The descriptor still names the mount underneath; look the target up again to reach
    // the new bind, then make that read-only.
    raw::sys(SYS_close, fd);
    fd = resolve_target(state.root, step);
    if (fd < 0) return fd;
    target = fd_path(buffer, fd);
  }
  return make_read_only(target);
}

/// Masks a file or directory; the first masking tmpfs is kept open and bound for the others.
HUTCH_CHILD_CODE inline long mask_step(const MountStep& step, MountState& state, const char* target,
                                       long fd) noexcept {
  struct stat info {};
  long r = step.here ? raw::sys(SYS_newfstatat, AT_FDCWD, target, &info, AT_SYMLINK_NOFOLLOW)
                     : raw::sys(SYS_fstat, fd, &info);
  if (r == -ENOENT && step.optional) return 0;
  if (r < 0) return r;
  const bool directory = S_ISDIR(info.st_mode);
  r = mask(target, directory, state.mask);
  if (r == 0 && directory && state.mask < 0 && step.here) {
    long tmpfs =
        raw::sys(SYS_openat, AT_FDCWD, target, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (tmpfs >= 0) state.mask = static_cast<int>(tmpfs);
  }
  return r;
}

/// pivot_root(".", ".") stacks the old root on top of the new one; detaching it then leaves
/// no path to the host's filesystem (the trick from pivot_root(2)'s notes).
HUTCH_CHILD_CODE inline long enter_root(long fd, bool use_chroot) noexcept {
  long r = raw::sys(SYS_fchdir, fd);
  if (use_chroot) {
    if (r == 0) r = raw::sys(SYS_chroot, ".");
  } else {
    if (r == 0) r = raw::sys(SYS_pivot_root, ".", ".");
    if (r == 0) r = raw::sys(SYS_umount2, ".", MNT_DETACH);
  }
  if (r == 0) r = raw::sys(SYS_chdir, "/");
  return r;
}

/// Runs one step. 0 or -errno.
HUTCH_CHILD_CODE inline long run_step(const MountStep& step, MountState& state) noexcept {
  using Kind = MountStep::Kind;
  if (step.kind == Kind::make_private) {
    return raw::sys(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  }
  if (step.kind == Kind::symlink && step.in_root) return symlink_in_root(step, state.root);
  if (step.kind == Kind::node) return node_in_root(step, state.root);
  if (step.kind == Kind::mkdir && !step.in_root && !step.here) {
    long r = raw::sys(SYS_mkdirat, AT_FDCWD, step.target, step.mode);
    return r == -EEXIST ? 0 : r;
  }
  long fd = -1;
  char buffer[32];
  long r = 0;
  const char* target = target_of(step, state, fd, buffer, r);
  if (!target) return r;
  switch (step.kind) {
    case Kind::mount:
      if (step.network_sysfs && state.sysfs >= 0) {
        r = attach_sysfs(state.sysfs, target, step.flags);
        state.sysfs = -1;
      } else {
        r = raw::sys(SYS_mount, step.source, target, step.fstype, step.flags, step.data);
      }
      break;
    case Kind::bind:
    case Kind::readonly:
      r = bind(step, state, target, fd, buffer);
      break;
    case Kind::remount:
      r = remount(target, step.flags);
      break;
    case Kind::mask:
      r = mask_step(step, state, target, fd);
      break;
    case Kind::symlink:  // here (in_root links are made above)
      r = raw::sys(SYS_symlinkat, step.source, AT_FDCWD, target);
      if (r == -EEXIST && step.optional) r = 0;
      break;
    case Kind::pivot_root:
    case Kind::chroot:
      r = enter_root(fd, step.kind == Kind::chroot);
      break;
    case Kind::enter:
      r = raw::sys(SYS_fchdir, fd);
      break;
    case Kind::propagate:
      r = raw::sys(SYS_mount, nullptr, target, nullptr, step.flags, nullptr);
      break;
    case Kind::attributes:
      r = set_attributes(target, step.flags, step.recursive);
      break;
    case Kind::node:   // made above
    case Kind::mkdir:  // in_root: resolve_target created it
    case Kind::make_private:
    case Kind::enter_cgroup:
      break;
  }
  if (fd >= 0) raw::sys(SYS_close, fd);
  return r;
}

/// Once the host has placed us in our cgroup (at clone on v2; on v1 it says so at the
/// cgroup_joined sync point, see Plan::late_cgroup), a new cgroup namespace makes that cgroup
/// our "/".
HUTCH_CHILD_CODE inline void enter_cgroup(const Plan& plan) noexcept {
  if (plan.late_cgroup) {
    await(plan, SyncPoint::cgroup_joined);
    if (!plan.wait_for_start && !plan.await_network) {
      raw::sys(SYS_close, plan.sync_fd);  // the last point it needs
    }
  }
  if (plan.unshare_cgroup) {
    long r = raw::sys(SYS_unshare, CLONE_NEWCGROUP);
    if (r < 0) fail(plan, Step::unshare_cgroup, r);
  }
}

/// The step an error in a MountStep is reported as.
constexpr Step step_of(const MountStep& step) noexcept {
  switch (step.kind) {
    case MountStep::Kind::make_private:
      return Step::make_mounts_private;
    case MountStep::Kind::mkdir:
      return Step::make_directory;
    case MountStep::Kind::remount:
    case MountStep::Kind::readonly:
      return Step::remount_read_only;
    case MountStep::Kind::mask:
      return Step::mask_path;
    case MountStep::Kind::symlink:
      return Step::make_symlink;
    case MountStep::Kind::pivot_root:
      return Step::pivot_root;
    case MountStep::Kind::chroot:
      return Step::chroot;
    case MountStep::Kind::enter_cgroup:
      return Step::unshare_cgroup;
    case MountStep::Kind::node:
      return Step::make_device;
    case MountStep::Kind::attributes:
      return Step::remount_read_only;
    case MountStep::Kind::enter:
    case MountStep::Kind::mount:
    case MountStep::Kind::bind:
    case MountStep::Kind::propagate:
      return Step::mount;
  }
  return Step::mount;
}

/// Runs the filesystem steps in order (they need a mount namespace).
HUTCH_CHILD_CODE inline void run_mount_steps(const Plan& plan) noexcept {
  MountState state;
  state.sysfs = plan.sysfs_fd;
  for (std::size_t i = 0; i < plan.mount_count; ++i) {
    const MountStep& step = plan.mounts[i];
    if (step.kind == MountStep::Kind::enter_cgroup) {
      enter_cgroup(plan);
      continue;
    }
    if (step.in_root && state.root < 0) {
      long fd = raw::sys(SYS_openat, AT_FDCWD, plan.new_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) fail(plan, Step::prepare_rootfs, fd, static_cast<int>(i));
      state.root = static_cast<int>(fd);
    }
    long r = run_step(step, state);
    if (r < 0) fail(plan, step_of(step), r, static_cast<int>(i));
  }
  if (state.root >= 0) raw::sys(SYS_close, state.root);
  if (state.mask >= 0) raw::sys(SYS_close, state.mask);
}

}  // namespace hutch::detail::child
