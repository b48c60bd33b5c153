// hutch — the child side of spawn(): runs between clone and exec.
//
// ============================================================================================
//  WARNING: everything in this file runs in a child that shares the host's memory (CLONE_VM)
//  while other host threads keep running. It must be async-signal-safe: no allocation, no
//  locks, no exceptions, no fmt, no libc call that may write errno or take a lock. Use only
//  `raw::` system calls and plain memory reads of the Plan the host prepared.
// ============================================================================================
#pragma once

#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include <cstdint>

#include "plan.hpp"
#include "syscall.hpp"

namespace hutch::detail {

#if defined(__SANITIZE_ADDRESS__)
#define HUTCH_CHILD_CODE __attribute__((no_sanitize("address", "undefined"), noinline))
#else
#define HUTCH_CHILD_CODE __attribute__((noinline))
#endif

namespace child {

/// Report `error` for `step` to the host and end the child. Never returns.
[[noreturn]] HUTCH_CHILD_CODE inline void fail(const Plan& plan, Step step, long error,
                                               int index = -1) noexcept {
  ChildReport report{static_cast<std::int32_t>(step), static_cast<std::int32_t>(-error), index};
  raw::sys_retry(SYS_write, plan.error_fd, &report, sizeof report);
  raw::exit(127);
}

/// The signals this process ignores, from the "SigIgn:" line of /proc/self/status: bit
/// sig - 1 of `mask` set for each. False if it cannot be read.
HUTCH_CHILD_CODE inline bool ignored_signals(std::uint64_t& mask) noexcept {
  long fd = raw::sys(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char text[4096];
  long n = raw::sys_retry(SYS_read, fd, text, sizeof text);
  raw::sys(SYS_close, fd);
  const char key[] = "\nSigIgn:\t";
  const long key_length = sizeof key - 1;
  for (long i = 0; i + key_length + 16 <= n; ++i) {
    long k = 0;
    while (k < key_length && text[i + k] == key[k]) ++k;
    if (k < key_length) continue;
    mask = 0;
    for (const char* c = text + i + k; c < text + i + k + 16; ++c) {
      const int digit = *c >= '0' && *c <= '9'   ? *c - '0'
                        : *c >= 'a' && *c <= 'f' ? *c - 'a' + 10
                                                 : -1;
      if (digit < 0) return false;
      mask = mask << 4 | static_cast<unsigned>(digit);
    }
    return true;
  }
  return false;
}

/// The command must start with every signal at its default, as a fresh process would: no
/// host handler may ever run on the child's stack, and a signal the host ignores must not
/// stay ignored across execve (a host that ignores SIGPIPE must not make `yes | head` in
/// the container run forever). With CLONE_CLEAR_SIGHAND the kernel has reset the handled
/// ones already and only the ignored ones are left to reset; otherwise all of them.
HUTCH_CHILD_CODE inline void reset_signal_handlers(const Plan& plan) noexcept {
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    std::uint64_t mask;
  } action{};  // SIG_DFL is a null handler
  std::uint64_t reset = ~std::uint64_t{0};
  std::uint64_t ignored = 0;
  if (plan.handlers_cleared && ignored_signals(ignored)) reset = ignored;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || !(reset >> (sig - 1) & 1)) continue;
    raw::sys(SYS_rt_sigaction, sig, &action, nullptr, sizeof action.mask);
  }
}

HUTCH_CHILD_CODE inline long bring_loopback_up() noexcept {
  long sock = raw::sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return sock;
  struct ifreq request {};
  request.ifr_name[0] = 'l';
  request.ifr_name[1] = 'o';
  long r = raw::sys(SYS_ioctl, sock, SIOCGIFFLAGS, &request);
  if (r >= 0) {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
    r = raw::sys(SYS_ioctl, sock, SIOCSIFFLAGS, &request);
  }
  raw::sys(SYS_close, sock);
  return r;
}

/// Closes, first thing, every descriptor the plan does not name. The fd table is a copy of the
/// host's at clone time, so it holds the report pipes of other containers being spawned at the
/// same moment; keeping them until our exec would delay their EOF — and their host threads'
/// "exec'd" — on our setup (for a rootless host, which waits for all setups to end before it
/// writes id maps, forever). Kernels without close_range (before 5.9) keep them a little longer;
/// false then.
HUTCH_CHILD_CODE inline bool close_unneeded_fds(const Plan& plan) noexcept {
  int keep[72];
  std::size_t n = 0;
  auto add = [&](int fd) {
    if (fd >= 0 && n < 72) keep[n++] = fd;
  };
  add(0), add(1), add(2), add(plan.error_fd), add(plan.sync_read_fd), add(plan.test_pause_fd);
  for (std::size_t i = 0; i < plan.fd_move_count && i < 64; ++i) add(plan.fd_moves[i].source);
  for (std::size_t i = 1; i < n; ++i) {  // insertion sort: a handful of numbers
    for (std::size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  }
  unsigned next = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto fd = static_cast<unsigned>(keep[i]);
    if (fd > next) {
      if (raw::sys(SYS_close_range, next, fd - 1, 0) == -ENOSYS) return false;
    }
    next = fd + 1;
  }
  return raw::sys(SYS_close_range, next, ~0U, 0) == 0;
}

/// Puts every FdMove source onto its target and leaves nothing else open across exec.
HUTCH_CHILD_CODE inline void setup_fds(const Plan& plan, int& error_fd, int& sync_fd) noexcept {
  const int floor = plan.max_target + 1;
  // Lift the report pipe (and the start socket, still open for create()) and every source
  // above all targets, so no dup3 below overwrites a descriptor that another move still needs.
  // A failure names `report` (the descriptor, or for a move its target).
  auto lift = [&](int& fd, int report) {
    if (fd < 0 || fd >= floor) return;
    long moved = raw::sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor);
    if (moved < 0) fail(plan, Step::setup_fds, moved, report);
    fd = static_cast<int>(moved);
  };
  lift(error_fd, error_fd);
  lift(sync_fd, sync_fd);
  int sources[64];
  const std::size_t count = plan.fd_move_count < 64 ? plan.fd_move_count : 64;
  for (std::size_t i = 0; i < count; ++i) {
    sources[i] = plan.fd_moves[i].source;
    lift(sources[i], plan.fd_moves[i].target);
  }
  for (std::size_t i = 0; i < count; ++i) {
    long r = raw::sys(SYS_dup3, sources[i], plan.fd_moves[i].target, 0);
    if (r < 0) fail(plan, Step::setup_fds, r, plan.fd_moves[i].target);
  }
  // Close the gaps between targets (stdio 0-2 stay, even when inherited).
  for (int fd = 3; fd < floor; ++fd) {
    bool is_target = false;
    for (std::size_t i = 0; i < count; ++i) is_target |= plan.fd_moves[i].target == fd;
    if (!is_target) raw::sys(SYS_close, fd);
  }
  // Everything above: close-on-exec, so the report pipe still works until exec succeeds.
  long r = raw::sys(SYS_close_range, floor, ~0U, CLOSE_RANGE_CLOEXEC);
  if (r < 0) {
    // Kernels before 5.11: mark each open descriptor, listed from /proc/self/fd.
    long dir = raw::sys(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) fail(plan, Step::setup_fds, dir);
    alignas(8) char buffer[4096];
    for (;;) {
      long n = raw::sys(SYS_getdents64, dir, buffer, sizeof buffer);
      if (n <= 0) break;
      for (long offset = 0; offset < n;) {
        struct Entry {
          std::uint64_t ino;
          std::int64_t off;
          unsigned short reclen;
          unsigned char type;
          char name[1];
        };
        auto* entry = reinterpret_cast<Entry*>(buffer + offset);
        int fd = 0;
        bool number = entry->name[0] != '\0';
        for (const char* c = entry->name; *c; ++c) {
          if (*c < '0' || *c > '9') number = false;
          fd = fd * 10 + (*c - '0');
        }
        if (number && fd >= floor && fd != dir) raw::sys(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
        offset += entry->reclen;
      }
    }
    raw::sys(SYS_close, dir);
  }
}

#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif

struct OpenHow {
  std::uint64_t flags;
  std::uint64_t mode;
  std::uint64_t resolve;
};

/// openat2(2) of `path` (relative) under `root` as if `root` were "/": `..` and absolute
/// symlinks stay inside it, and /proc magic links are refused.
HUTCH_CHILD_CODE inline long open_in_root(int root, const char* path,
                                          std::uint64_t flags) noexcept {
  OpenHow how{flags | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  return raw::sys(SYS_openat2, root, *path ? path : ".", &how, sizeof how);
}

/// Opens the directory holding `path` (relative, inside the root) and points `name` at the
/// path's last component. Returns the directory's fd or -errno.
HUTCH_CHILD_CODE inline long open_parent_in_root(int root, const char* path,
                                                 const char*& name) noexcept {
  name = path;
  for (const char* c = path; *c; ++c) {
    if (*c == '/') name = c + 1;
  }
  char parent_path[4096];
  const auto n = static_cast<std::size_t>(name - path);
  if (n >= sizeof parent_path) return -ENAMETOOLONG;
  for (std::size_t i = 0; i < n; ++i) parent_path[i] = path[i];
  parent_path[n] = '\0';
  return open_in_root(root, parent_path, O_PATH | O_DIRECTORY);
}

/// The common case of a missing target: its parent exists, so create the last component
/// there and open it as the walk below would. -EAGAIN when the parent is missing too or the
/// name exists after all (a dangling link): the caller walks the path by hand.
HUTCH_CHILD_CODE inline long create_last(int root, const MountStep& step,
                                         const char* target) noexcept {
  const char* name = nullptr;
  long parent = open_parent_in_root(root, target, name);
  if (parent < 0) return parent == -ENOENT ? -EAGAIN : parent;
  if (*name == '\0' || (name[0] == '.' && (name[1] == '\0' || name[1] == '.'))) {
    raw::sys(SYS_close, parent);
    return -EAGAIN;
  }
  long r;
  if (step.create_file) {
    r = raw::sys(SYS_openat, parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                 0644);
    if (r >= 0) raw::sys(SYS_close, r);
  } else {
    r = raw::sys(SYS_mkdirat, parent, name, step.mode);
  }
  raw::sys(SYS_close, parent);
  if (r == -EEXIST) return -EAGAIN;
  return r < 0 ? r : open_in_root(root, target, O_PATH);
}

/// Opens `target` (absolute inside the root) as an O_PATH descriptor, creating what is
/// missing on the way and, if asked, the last component as a directory or an empty file.
/// Symlinks met on the way are followed by hand, inside the root: a link to "/etc" or to
/// "../../x" leads to the root's /etc or /x, and missing directories are created there,
/// never on the host.
HUTCH_CHILD_CODE inline long resolve_target(int root, const MountStep& step) noexcept {
  const char* target = step.target;
  while (*target == '/') ++target;
  long fd = open_in_root(root, target, O_PATH);
  if (fd != -ENOENT || !step.create) return fd;
  fd = create_last(root, step, target);
  if (fd != -EAGAIN) return fd;

  char path[4096];  // the path being walked: done part, then the rest
  char link[4096];
  std::size_t length = raw::length(target);
  if (length >= sizeof path) return -ENAMETOOLONG;
  for (std::size_t i = 0; i <= length; ++i) path[i] = target[i];
  std::size_t done = 0;  // path[0, done) is resolved: real directories inside the root
  int links = 0;
  while (path[done] != '\0') {
    std::size_t end = done;
    while (path[end] != '\0' && path[end] != '/') ++end;
    const bool last = path[end] == '\0';
    const char saved = path[end];
    path[end] = '\0';
    const char* name = path + done;
    if (*name != '\0' &&
        !(name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))) {
      long entry = open_in_root(root, path, O_PATH | O_NOFOLLOW);
      if (entry == -ENOENT) {
        char* slash = done > 0 ? path + done - 1 : nullptr;
        if (slash) *slash = '\0';
        long parent = open_in_root(root, slash ? path : "", O_PATH | O_DIRECTORY);
        if (slash) *slash = '/';
        if (parent < 0) return parent;
        long r;
        if (last && step.create_file) {
          r = raw::sys(SYS_openat, parent, name,
                       O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
          if (r >= 0) raw::sys(SYS_close, r);
        } else {
          r = raw::sys(SYS_mkdirat, parent, name, last ? step.mode : 0755);
        }
        raw::sys(SYS_close, parent);
        if (r < 0 && r != -EEXIST) return r;
      } else if (entry < 0) {
        return entry;
      } else {
        struct stat info {};
        long r = raw::sys(SYS_fstat, entry, &info);
        long n =
            S_ISLNK(info.st_mode) ? raw::sys(SYS_readlinkat, entry, "", link, sizeof link - 1) : 0;
        raw::sys(SYS_close, entry);
        if (r < 0) return r;
        if (n < 0) return n;
        if (S_ISLNK(info.st_mode)) {
          // Splice the link in: <done part or nothing if absolute>/<link>/<rest>.
          if (++links > 40) return -ELOOP;
          std::size_t rest = last ? end : end + 1;
          std::size_t rest_length = last ? 0 : raw::length(path + end + 1);
          std::size_t base = link[0] == '/' ? 0 : done;
          if (base + static_cast<std::size_t>(n) + 1 + rest_length >= sizeof path) {
            return -ENAMETOOLONG;
          }
          char tail[4096];
          for (std::size_t i = 0; i <= rest_length; ++i) tail[i] = path[rest + i];
          std::size_t at = base;
          for (long i = 0; i < n; ++i) path[at++] = link[i];
          path[at++] = '/';
          for (std::size_t i = 0; i <= rest_length; ++i) path[at + i] = tail[i];
          done = 0;  // walk again from the root: the link may lead anywhere inside it
          while (path[done] == '/') ++done;
          continue;
        }
      }
    }
    path[end] = saved;
    done = last ? end : end + 1;
  }
  return open_in_root(root, path, O_PATH);
}

/// "/proc/self/fd/<fd>": mount(2) follows this magic link to exactly the resolved file.
HUTCH_CHILD_CODE inline const char* fd_path(char (&buffer)[32], long fd) noexcept {
  const char prefix[] = "/proc/self/fd/";
  std::size_t n = 0;
  for (; prefix[n]; ++n) buffer[n] = prefix[n];
  char digits[16];
  std::size_t count = 0;
  do digits[count++] = static_cast<char>('0' + fd % 10);
  while ((fd /= 10) > 0);
  while (count > 0) buffer[n++] = digits[--count];
  buffer[n] = '\0';
  return buffer;
}

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
    case MountStep::Kind::enter:
    case MountStep::Kind::mount:
    case MountStep::Kind::bind:
      return Step::mount;
  }
  return Step::mount;
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
  int root = -1;  // the new root, opened once the steps that build it have run
  int mask = -1;  // the first empty read-only tmpfs that masks a directory: bound for the others
};

/// Creates the missing target of a `here` step in the working directory.
HUTCH_CHILD_CODE inline long create_here(const MountStep& step) noexcept {
  long r = step.create_file ? raw::sys(SYS_mknodat, AT_FDCWD, step.target, S_IFREG | 0644, 0)
                            : raw::sys(SYS_mkdirat, AT_FDCWD, step.target, step.mode);
  return r == -EEXIST ? 0 : r;
}

/// Runs one step. Its target is a host path; or, for `in_root` steps, a path inside the new
/// root, looked up with openat2 and named through /proc/self/fd; or, for `here` steps, a
/// path relative to the working directory (a kernel filesystem this child has just mounted,
/// see MountStep::here), used as it is.
HUTCH_CHILD_CODE inline long run_step(const MountStep& step, MountState& state) noexcept {
  using Kind = MountStep::Kind;
  const int root = state.root;
  if (step.kind == Kind::make_private) {
    return raw::sys(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  }
  long fd = -1;
  char fd_buffer[32];
  const char* target = step.target;
  if (step.here) {
    if (step.create) {
      if (long r = create_here(step); r < 0) return r;
    }
  } else if (step.in_root) {
    if (step.kind == Kind::symlink) {
      // Create the link in its resolved parent directory.
      const char* path = step.target;
      while (*path == '/') ++path;
      const char* name = nullptr;
      long parent = open_parent_in_root(root, path, name);
      if (parent < 0) return parent;
      long r = raw::sys(SYS_symlinkat, step.source, parent, name);
      raw::sys(SYS_close, parent);
      return r == -EEXIST && step.optional ? 0 : r;
    }
    fd = resolve_target(root, step);
    if (fd == -ENOENT && step.optional) return 0;
    if (fd < 0) return fd;
    target = fd_path(fd_buffer, fd);
  } else if (step.kind == Kind::mkdir) {
    long r = raw::sys(SYS_mkdirat, AT_FDCWD, step.target, step.mode);
    return r == -EEXIST ? 0 : r;
  }

  long r = 0;
  switch (step.kind) {
    case Kind::mkdir:  // in_root: resolve_target created it
      break;
    case Kind::mount:
      r = raw::sys(SYS_mount, step.source, target, step.fstype, step.flags, step.data);
      break;
    case Kind::bind:
    case Kind::readonly:
      r = raw::sys(SYS_mount, step.kind == Kind::bind ? step.source : target, target, nullptr,
                   MS_BIND | MS_REC, nullptr);
      if (r == -ENOENT && step.optional && step.here) return 0;
      if (r == 0 && (step.kind == Kind::readonly || (step.flags & MS_RDONLY))) {
        if (!step.here) {
          // The descriptor still names the mount underneath; look the target up again to
          // reach the new bind, then make that read-only.
          raw::sys(SYS_close, fd);
          fd = resolve_target(root, step);
          if (fd < 0) return fd;
          target = fd_path(fd_buffer, fd);
        }
        r = make_read_only(target);
      }
      break;
    case Kind::remount:
      r = remount(target, step.flags);
      break;
    case Kind::mask: {
      struct stat info {};
      r = step.here ? raw::sys(SYS_newfstatat, AT_FDCWD, target, &info, AT_SYMLINK_NOFOLLOW)
                    : raw::sys(SYS_fstat, fd, &info);
      if (r == -ENOENT && step.optional) return 0;
      if (r < 0) break;
      const bool directory = S_ISDIR(info.st_mode);
      r = mask(target, directory, state.mask);
      if (r == 0 && directory && state.mask < 0 && step.here) {
        // The first masking tmpfs: kept open, bound for the other directories.
        long tmpfs =
            raw::sys(SYS_openat, AT_FDCWD, target, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tmpfs >= 0) state.mask = static_cast<int>(tmpfs);
      }
      break;
    }
    case Kind::symlink:  // here (in_root links are made above)
      r = raw::sys(SYS_symlinkat, step.source, AT_FDCWD, target);
      if (r == -EEXIST && step.optional) r = 0;
      break;
    case Kind::pivot_root:
      // pivot_root(".", ".") stacks the old root on top of the new one; detaching it then
      // leaves no path to the host's filesystem (the trick from pivot_root(2)'s notes).
      r = raw::sys(SYS_fchdir, fd);
      if (r == 0) r = raw::sys(SYS_pivot_root, ".", ".");
      if (r == 0) r = raw::sys(SYS_umount2, ".", MNT_DETACH);
      if (r == 0) r = raw::sys(SYS_chdir, "/");
      break;
    case Kind::chroot:
      r = raw::sys(SYS_fchdir, fd);
      if (r == 0) r = raw::sys(SYS_chroot, ".");
      if (r == 0) r = raw::sys(SYS_chdir, "/");
      break;
    case Kind::enter:
      r = raw::sys(SYS_fchdir, fd);
      break;
    case Kind::make_private:
    case Kind::enter_cgroup:
      break;
  }
  if (fd >= 0) raw::sys(SYS_close, fd);
  return r;
}

/// Once the host has placed us in our cgroup (at clone on v2; on v1 it says so with a second
/// byte, see Plan::late_cgroup), a new cgroup namespace makes that cgroup our "/".
HUTCH_CHILD_CODE inline void enter_cgroup(const Plan& plan) noexcept {
  if (plan.late_cgroup) {
    char go = 0;
    if (raw::sys_retry(SYS_read, plan.sync_read_fd, &go, 1) != 1) raw::exit(127);
    if (!plan.wait_for_start) raw::sys(SYS_close, plan.sync_read_fd);
  }
  if (plan.unshare_cgroup) {
    long r = raw::sys(SYS_unshare, CLONE_NEWCGROUP);
    if (r < 0) fail(plan, Step::unshare_cgroup, r);
  }
}

/// Runs the filesystem steps in order (they need a mount namespace).
HUTCH_CHILD_CODE inline void run_mount_steps(const Plan& plan) noexcept {
  MountState state;
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

HUTCH_CHILD_CODE inline void set_rlimits(const Plan& plan) noexcept {
  for (std::size_t i = 0; i < plan.rlimit_count; ++i) {
    const RlimitStep& limit = plan.rlimits[i];
    std::uint64_t values[2] = {limit.soft, limit.hard};
    long r = raw::sys(SYS_prlimit64, 0, limit.resource, values, nullptr);
    if (r < 0) fail(plan, Step::set_rlimit, r, static_cast<int>(i));
  }
}

/// The bounding set: dropping from it needs CAP_SETPCAP in the effective set, so this runs
/// while the child is still root, before any change of user.
HUTCH_CHILD_CODE inline void drop_bounding_set(const Plan& plan) noexcept {
  for (int cap = 0; cap <= plan.cap_last && cap < 64; ++cap) {
    if (plan.capabilities & (std::uint64_t{1} << cap)) continue;
    long r = raw::sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (r < 0 && r != -EINVAL) fail(plan, Step::set_capabilities, r, cap);
  }
}

/// The permitted, effective and (empty) inheritable sets, then the ambient set emptied.
HUTCH_CHILD_CODE inline void set_capabilities(const Plan& plan) noexcept {
  struct {
    std::uint32_t version;
    int pid;
  } header{0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct {
    std::uint32_t effective, permitted, inheritable;
  } data[2] = {};
  for (int half = 0; half < 2; ++half) {
    auto bits = static_cast<std::uint32_t>(plan.capabilities >> (32 * half));
    data[half].effective = data[half].permitted = bits;
  }
  long r = raw::sys(SYS_capset, &header, data);
  if (r < 0) fail(plan, Step::set_capabilities, r);
  raw::sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

HUTCH_CHILD_CODE inline void set_identity(const Plan& plan) noexcept {
  if (plan.set_groups) {
    long r = raw::sys(SYS_setgroups, plan.group_count, plan.groups);
    if (r < 0) fail(plan, Step::set_groups, r);
  }
  long r = raw::sys(SYS_setresgid, plan.gid, plan.gid, plan.gid);
  if (r < 0) fail(plan, Step::set_gid, r);
  r = raw::sys(SYS_setresuid, plan.uid, plan.uid, plan.uid);
  if (r < 0) fail(plan, Step::set_uid, r);
  // A change of credentials clears the parent-death signal (prctl(2)); set it again.
  if (plan.die_with_parent) raw::sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

/// The last step before execve: from here on every system call, execve included, passes the
/// filter. Without no_new_privs the kernel asks for CAP_SYS_ADMIN (seccomp(2)).
HUTCH_CHILD_CODE inline void install_seccomp(const Plan& plan) noexcept {
  struct {
    unsigned short length;
    const sock_filter* filter;
  } program{static_cast<unsigned short>(plan.seccomp_length), plan.seccomp};
  long r = raw::sys(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &program);
  if (r < 0) fail(plan, Step::install_seccomp, r);
}

HUTCH_CHILD_CODE [[noreturn]] inline void exec(const Plan& plan) noexcept {
  // Unblock everything the host blocked around clone: the command starts with an empty mask.
  std::uint64_t empty_mask = 0;
  raw::sys(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, sizeof empty_mask);
  // execvpe(3) rules: ENOENT/ENOTDIR move on to the next PATH entry; EACCES is remembered
  // and reported if nothing else runs; any other error stops the search.
  long saved = -ENOENT;
  int saved_index = 0;
  for (std::size_t i = 0; i < plan.exec_path_count; ++i) {
    long r = raw::sys(SYS_execve, plan.exec_paths[i], plan.argv, plan.envp);
    if (r == -ENOENT || r == -ENOTDIR) continue;
    if (r == -EACCES) {
      if (saved != -EACCES) saved_index = static_cast<int>(i);
      saved = r;
      continue;
    }
    fail(plan, Step::exec, r, static_cast<int>(i));
  }
  fail(plan, Step::exec, saved, saved_index);
}

/// The child's entry point: the whole setup, in order. Never returns.
HUTCH_CHILD_CODE inline int main(void* argument) noexcept {
  const Plan& plan = *static_cast<const Plan*>(argument);
  const bool closed = close_unneeded_fds(plan);
  if (plan.die_with_parent) {
    long r = raw::sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (r < 0) fail(plan, Step::set_parent_death_signal, r);
  }
  // Wait for the host to write our id maps. EOF means the host died (or gave up) before
  // releasing us: the parent-death signal above may have come too late to fire, so leave.
  if (!closed) raw::sys(SYS_close, plan.sync_write_fd);
  char go = 0;
  if (raw::sys_retry(SYS_read, plan.sync_read_fd, &go, 1) != 1) raw::exit(127);
  if (!plan.late_cgroup && !plan.wait_for_start) raw::sys(SYS_close, plan.sync_read_fd);

  reset_signal_handlers(plan);
  if (plan.mount_count == 0) enter_cgroup(plan);  // else at its mount step

  if (plan.unshare_time) {
    long r = raw::sys(SYS_unshare, CLONE_NEWTIME);
    if (r < 0) fail(plan, Step::unshare_time, r);
    if (plan.timens_offsets_length > 0) {
      long fd = raw::sys(SYS_openat, AT_FDCWD, "/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
      if (fd < 0) fail(plan, Step::write_timens_offsets, fd);
      r = raw::sys_retry(SYS_write, fd, plan.timens_offsets, plan.timens_offsets_length);
      raw::sys(SYS_close, fd);
      if (r < 0) fail(plan, Step::write_timens_offsets, r);
    }
  }
  // Non-dumpable until execve gives the command its own memory: nothing may ptrace us or read
  // our memory (the host's: CLONE_VM) through /proc during setup (set after
  // timens_offsets: a non-dumpable process's /proc files belong to the host's root). The flag is
  // the shared mm's, so the host restores its own once we have exec'd (see DumpableWindow).
  raw::sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (plan.hostname) {
    long r = raw::sys(SYS_sethostname, plan.hostname, plan.hostname_length);
    if (r < 0) fail(plan, Step::set_hostname, r);
  }
  if (plan.loopback_up) {
    long r = bring_loopback_up();
    if (r < 0) fail(plan, Step::set_loopback_up, r);
  }

  run_mount_steps(plan);

  int error_fd = plan.error_fd;
  int sync_fd = plan.wait_for_start ? plan.sync_read_fd : -1;
  setup_fds(plan, error_fd, sync_fd);
  Plan patched = plan;  // the report pipe may have moved (the start socket: sync_fd)
  patched.error_fd = error_fd;

  if (patched.tty) {
    // A session of its own with the terminal as its controlling tty, as a login has.
    long r = raw::sys(SYS_setsid);
    if (r >= 0) r = raw::sys(SYS_ioctl, 0, TIOCSCTTY, 0);
    if (r < 0) fail(patched, Step::set_controlling_tty, r);
  } else if (patched.new_session) {
    // A session of its own without a controlling terminal: a terminal inherited as stdin is
    // then not the container's controlling tty, so TIOCSTI cannot type into the host's shell.
    long r = raw::sys(SYS_setsid);
    if (r < 0) fail(patched, Step::new_session, r);
  }
  raw::sys(SYS_umask, patched.umask);
  set_rlimits(patched);
  if (patched.set_capabilities) drop_bounding_set(patched);
  // Keep the permitted capabilities across the change of uid; they are set just after.
  if (patched.set_ids && patched.set_capabilities) {
    raw::sys(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0);
  }
  if (patched.set_ids) set_identity(patched);
  if (patched.set_capabilities) set_capabilities(patched);
  if (patched.no_new_privs) {
    long r = raw::sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (r < 0) fail(patched, Step::set_no_new_privs, r);
  }
  if (patched.cwd) {
    long r = raw::sys(SYS_chdir, patched.cwd);
    if (r < 0) fail(patched, Step::chdir, r);
  }
  if (patched.test_pause_fd >= 0) raw::sys_retry(SYS_read, patched.test_pause_fd, &go, 1);
  if (patched.wait_for_start) {
    // Set up: say so, then wait for start(). End of file: the Created handle is gone.
    go = 1;
    if (raw::sys(SYS_sendto, sync_fd, &go, 1, MSG_NOSIGNAL, nullptr, 0) != 1) raw::exit(127);
    if (raw::sys_retry(SYS_read, sync_fd, &go, 1) != 1) raw::exit(127);
    raw::sys(SYS_close, sync_fd);
  }
  if (patched.seccomp_length > 0) install_seccomp(patched);
  exec(patched);
}

}  // namespace child
}  // namespace hutch::detail
