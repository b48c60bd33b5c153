// hutch — the child side of exec into a running container: the intermediate that enters the
// container's namespaces, and the process it starts there.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "../clone.hpp"
#include "../plan.hpp"
#include "../sync.hpp"
#include "../syscall.hpp"
#include "credentials.hpp"
#include "exec.hpp"
#include "fds.hpp"
#include "process.hpp"
#include "report.hpp"
#include "signals.hpp"
#include "sync.hpp"

namespace hutch::detail::child {

/// The process inside the container: a child of the host (CLONE_PARENT), already in every
/// namespace of the container (its pid namespace too: it was cloned after the setns). It
/// waits until the host has placed it in the container's cgroup (v1), then sets itself up as
/// a spawned process does, without mounts, and execs.
HUTCH_CHILD_CODE inline int joined_main(void* argument) noexcept {
  const Plan& plan = *static_cast<const Plan*>(argument);
  if (plan.die_with_parent) raw::sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  await(plan, SyncPoint::ids_mapped);
  raw::sys(SYS_close, plan.sync_fd);
  reset_signal_handlers(plan);
  raw::sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);  // as in main(): our memory is the host's
  int no_sync = -1;
  const Plan patched = become_the_process(plan, no_sync);
  seccomp_last(patched);
  exec(patched);
}

/// The intermediate: enters the container's namespaces (setns on its pidfd, Linux 5.8), then
/// starts joined_main() there and leaves; the host learns the pid from plan.join_result.
HUTCH_CHILD_CODE inline int join_main(void* argument) noexcept {
  const Plan& plan = *static_cast<const Plan*>(argument);
  close_unneeded_fds(plan);
  long r = raw::sys(SYS_setns, plan.join_pidfd, plan.join_flags);
  if (r < 0) fail(plan, Step::join_namespaces, r);
  CloneArgs args{};
  args.flags = CLONE_VM | CLONE_PARENT | CLONE_CLEAR_SIGHAND |
               (plan.join_cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  args.stack = reinterpret_cast<std::uint64_t>(plan.join_stack);
  args.stack_size = Stack::size;
  args.cgroup = plan.join_cgroup_fd >= 0 ? static_cast<std::uint64_t>(plan.join_cgroup_fd) : 0;
  // exit_signal stays 0: with CLONE_PARENT the kernel gives the child our own (SIGCHLD).
  long pid = clone3_call(&args, joined_main, const_cast<Plan*>(&plan));
  if (pid < 0) fail(plan, Step::clone_joined, pid);
  plan.join_result->pid = pid;
  raw::exit(0);
}

}  // namespace hutch::detail::child
