// hutch — the child side of spawn(), between clone and exec: the whole setup, in order.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "../plan.hpp"
#include "../sync.hpp"
#include "../syscall.hpp"
#include "credentials.hpp"
#include "exec.hpp"
#include "fds.hpp"
#include "mounts.hpp"
#include "process.hpp"
#include "report.hpp"
#include "signals.hpp"
#include "sync.hpp"

namespace hutch::detail::child {

/// Set up and created: a command that is not there fails now, not at start; then says so
/// and waits for start() (end of file: the Created handle is gone) or, started by path, for
/// a reader of the start FIFO.
HUTCH_CHILD_CODE inline void wait_for_start(const Plan& plan, int sync_fd) noexcept {
  if (plan.init_fd < 0 && plan.exec_fd < 0) check_executable(plan);
  announce(sync_fd, SyncPoint::ready);
  if (plan.start_fifo_fd < 0) {
    await(sync_fd, SyncPoint::start);
    raw::sys(SYS_close, sync_fd);
    return;
  }
  raw::sys(SYS_close, sync_fd);
  char path[32];
  long fifo =
      raw::sys_retry(SYS_openat, AT_FDCWD, fd_path(path, plan.start_fifo_fd), O_WRONLY | O_CLOEXEC);
  if (fifo < 0) fail(plan, Step::wait_for_start, fifo);
  const char byte = 0;
  long r = raw::sys_retry(SYS_write, fifo, &byte, 1);
  raw::sys(SYS_close, fifo);
  raw::sys(SYS_close, plan.start_fifo_fd);
  if (r != 1) raw::exit(127);  // the reader went away: nothing started it
}

/// The child's entry point (clone3's function): the sync points are those of
/// detail/sync.hpp. Never returns.
HUTCH_CHILD_CODE inline int main(void* argument) noexcept {
  const Plan& plan = *static_cast<const Plan*>(argument);
  const bool closed = close_unneeded_fds(plan);
  if (plan.die_with_parent) {
    long r = raw::sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (r < 0) fail(plan, Step::set_parent_death_signal, r);
  }
  if (!closed) raw::sys(SYS_close, plan.host_sync_fd);
  await(plan, SyncPoint::ids_mapped);
  if (!plan.late_cgroup && !plan.wait_for_start && !plan.await_network) {
    raw::sys(SYS_close, plan.sync_fd);
  }
  join_namespaces(plan);
  // Through the host's /proc, before the container's own is mounted (read-only in part):
  // /proc/sys/net and the ipc parameters show the writer's own namespaces.
  write_sysctls(plan);

  reset_signal_handlers(plan);
  if (plan.mount_count == 0) enter_cgroup(plan);  // else at its mount step
  if (plan.unshare_time) enter_time_namespace(plan);
  // Non-dumpable until execve gives the command its own memory: nothing may ptrace us or read
  // our memory (the host's: CLONE_VM) through /proc during setup (set after
  // timens_offsets: a non-dumpable process's /proc files belong to the host's root). The flag is
  // the shared mm's, so the host restores its own once we have exec'd (see DumpableWindow).
  raw::sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  set_up_host_identity(plan);
  run_mount_steps(plan);
  if (plan.sysfs_fd >= 0) raw::sys(SYS_close, plan.sysfs_fd);  // moved into place, or unused
  if (plan.await_network) {
    await(plan, SyncPoint::network_ready);
    if (!plan.wait_for_start) raw::sys(SYS_close, plan.sync_fd);  // the last point it needs
  }

  int sync_fd = plan.wait_for_start ? plan.sync_fd : -1;
  const Plan patched = become_the_process(plan, sync_fd);
  if (patched.test_pause_fd >= 0) {
    char go = 0;
    raw::sys_retry(SYS_read, patched.test_pause_fd, &go, 1);
  }
  if (patched.wait_for_start) wait_for_start(patched, sync_fd);
  seccomp_last(patched);
  exec(patched);
}

}  // namespace hutch::detail::child
