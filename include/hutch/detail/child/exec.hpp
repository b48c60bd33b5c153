// hutch — the child side of spawn(), between clone and exec: execve along the command's
// candidate paths.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>

#include <cstddef>

#include "../plan.hpp"
#include "../syscall.hpp"
#include "report.hpp"
#include "signals.hpp"

namespace hutch::detail::child {

/// execvpe(3) rules over the host-computed candidates: ENOENT/ENOTDIR move on to the next
/// PATH entry; EACCES is remembered and reported if nothing else runs; any other error stops
/// the search. Success never returns; a failure is reported with the candidate's index.
/// The init instead of the command (Container::init): execveat of its sealed memfd, with the
/// report pipe left open across it (its number written into its argv), so the init reports
/// the command's own exec failure as this would.
[[noreturn]] HUTCH_CHILD_CODE inline void exec_init(const Plan& plan) noexcept {
  char* out = plan.init_report_arg;
  char digits[16];
  int count = 0;
  for (long fd = plan.error_fd; count == 0 || fd > 0; fd /= 10)
    digits[count++] = char('0' + fd % 10);
  for (int i = 0; i < count; ++i) out[i] = digits[count - 1 - i];
  out[count] = '\0';
  raw::sys(SYS_fcntl, plan.error_fd, F_SETFD, 0);
  long r = raw::sys(SYS_execveat, plan.init_fd, "", plan.init_argv, plan.envp, AT_EMPTY_PATH);
  raw::sys(SYS_fcntl, plan.error_fd, F_SETFD, FD_CLOEXEC);
  fail(plan, Step::exec, r, init_index);
}

/// Whether the command can be found: the candidates' first that exists as something
/// executable (faccessat X_OK), or the failure exec would give.
HUTCH_CHILD_CODE inline void check_executable(const Plan& plan) noexcept {
  long saved = -ENOENT;
  int saved_index = 0;
  for (std::size_t i = 0; i < plan.exec_path_count; ++i) {
    long r = raw::sys(SYS_faccessat, AT_FDCWD, plan.exec_paths[i], X_OK);
    if (r == 0) return;
    if (r == -ENOENT || r == -ENOTDIR) continue;
    if (saved != -EACCES) saved_index = static_cast<int>(i);
    saved = r;
  }
  fail(plan, Step::exec, saved, saved_index);
}

[[noreturn]] HUTCH_CHILD_CODE inline void exec(const Plan& plan) noexcept {
  unblock_signals();
  if (plan.init_fd >= 0) exec_init(plan);
  if (plan.exec_fd >= 0) {
    long r = raw::sys(SYS_execveat, plan.exec_fd, "", plan.argv, plan.envp, AT_EMPTY_PATH);
    fail(plan, Step::exec, r, exec_fd_index);
  }
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

}  // namespace hutch::detail::child
