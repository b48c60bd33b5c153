// hutch — the child side of spawn(), between clone and exec: the sync points (the sequence
// is described in detail/sync.hpp).
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <sys/socket.h>
#include <sys/syscall.h>

#include "../plan.hpp"
#include "../sync.hpp"
#include "../syscall.hpp"
#include "report.hpp"

namespace hutch::detail::child {

/// Waits for the host to release `point` on `fd`. End of file (the host died or gave up:
/// the parent-death signal may have come too late to fire) or another point: leave.
HUTCH_CHILD_CODE inline void await(int fd, SyncPoint point) noexcept {
  char byte = 0;
  if (raw::sys_retry(SYS_read, fd, &byte, 1) != 1 || byte != static_cast<char>(point)) {
    raw::exit(127);
  }
}

HUTCH_CHILD_CODE inline void await(const Plan& plan, SyncPoint point) noexcept {
  await(plan.sync_fd, point);
}

/// Tells the host the child has reached `point`.
HUTCH_CHILD_CODE inline void announce(int fd, SyncPoint point) noexcept {
  const char byte = static_cast<char>(point);
  if (raw::sys(SYS_sendto, fd, &byte, 1, MSG_NOSIGNAL, nullptr, 0) != 1) raw::exit(127);
}

}  // namespace hutch::detail::child
