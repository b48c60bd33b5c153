// hutch — the child side of spawn(), between clone and exec: file descriptors.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "../plan.hpp"
#include "../syscall.hpp"
#include "report.hpp"

namespace hutch::detail::child {

/// Closes, first thing, every descriptor the plan does not name. The fd table is a copy of the
/// host's at clone time, so it holds the report pipes of other containers being spawned at the
/// same moment; keeping them until our exec would delay their EOF — and their host threads'
/// "exec'd" — on our setup (for a rootless host, which waits for all setups to end before it
/// writes id maps, forever). Kernels without close_range (before 5.9) keep them a little longer;
/// false then.
HUTCH_CHILD_CODE inline bool close_unneeded_fds(const Plan& plan) noexcept {
  int keep[84];
  std::size_t n = 0;
  auto add = [&](int fd) {
    if (fd >= 0 && n < 84) keep[n++] = fd;
  };
  add(0), add(1), add(2), add(plan.error_fd), add(plan.sync_fd), add(plan.test_pause_fd);
  add(plan.join_pidfd), add(plan.join_cgroup_fd), add(plan.init_fd), add(plan.exec_fd);
  add(plan.start_fifo_fd), add(plan.sysfs_fd);
  for (std::size_t i = 0; i < plan.join_count && i < 8; ++i) add(plan.joins[i].fd);
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

/// Kernels before 5.11 have no CLOSE_RANGE_CLOEXEC: mark each open descriptor from `floor`
/// up, listed from /proc/self/fd.
HUTCH_CHILD_CODE inline void mark_cloexec_from(const Plan& plan, int floor) noexcept {
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

/// The descriptors the child still needs after its stdio is in place (the report pipe, the
/// sync socket of a created child, an init's memfd, a file to execveat, the start FIFO):
/// setup_fds lifts them out of the way and says where they went.
struct Carried {
  int error_fd, sync_fd, init_fd, exec_fd, start_fifo_fd;
};

/// Puts every FdMove source onto its target and leaves nothing else open across exec; the
/// carried descriptors may move (`carried` says where to).
HUTCH_CHILD_CODE inline void setup_fds(const Plan& plan, Carried& carried) noexcept {
  const int floor = plan.max_target + 1;
  // Lift the report pipe, the sync socket and every source above all targets, so no dup3
  // below overwrites a descriptor that another move still needs. A failure names `report`
  // (the descriptor, or for a move its target).
  auto lift = [&](int& fd, int report) {
    if (fd < 0 || fd >= floor) return;
    long moved = raw::sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor);
    if (moved < 0) fail(plan, Step::setup_fds, moved, report);
    fd = static_cast<int>(moved);
  };
  for (int* fd : {&carried.error_fd, &carried.sync_fd, &carried.init_fd, &carried.exec_fd,
                  &carried.start_fifo_fd}) {
    lift(*fd, *fd);
  }
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
  if (raw::sys(SYS_close_range, floor, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    mark_cloexec_from(plan, floor);
  }
}

}  // namespace hutch::detail::child
