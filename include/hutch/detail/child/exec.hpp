// hutch — the child side of spawn(), between clone and exec: execve along the command's
// candidate paths.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

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
[[noreturn]] HUTCH_CHILD_CODE inline void exec(const Plan& plan) noexcept {
  unblock_signals();
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
