// hutch — the child side of spawn(), between clone and exec: what the command may do —
// rlimits, capabilities, user and group ids, no_new_privs and the seccomp filter.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <linux/filter.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#include "../plan.hpp"
#include "../syscall.hpp"
#include "fds.hpp"
#include "process.hpp"
#include "report.hpp"

namespace hutch::detail::child {

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
    if (plan.bounding & (std::uint64_t{1} << cap)) continue;
    long r = raw::sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (r < 0 && r != -EINVAL) fail(plan, Step::set_capabilities, r, cap);
  }
}

/// The permitted, effective and inheritable sets, then the ambient set: emptied, then raised
/// cap by cap (each must be permitted and inheritable).
HUTCH_CHILD_CODE inline void set_capabilities(const Plan& plan) noexcept {
  struct {
    std::uint32_t version;
    int pid;
  } header{0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct {
    std::uint32_t effective, permitted, inheritable;
  } data[2] = {};
  for (int half = 0; half < 2; ++half) {
    data[half].effective = static_cast<std::uint32_t>(plan.effective >> (32 * half));
    data[half].permitted = static_cast<std::uint32_t>(plan.permitted >> (32 * half));
    data[half].inheritable = static_cast<std::uint32_t>(plan.inheritable >> (32 * half));
  }
  long r = raw::sys(SYS_capset, &header, data);
  if (r < 0) fail(plan, Step::set_capabilities, r);
  raw::sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int cap = 0; cap <= plan.cap_last && cap < 64; ++cap) {
    if (!(plan.ambient & (std::uint64_t{1} << cap))) continue;
    r = raw::sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    if (r < 0) fail(plan, Step::set_capabilities, r, cap);
  }
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

/// From here on every system call, execve included, passes the filter. Without no_new_privs
/// the kernel asks for CAP_SYS_ADMIN (seccomp(2)).
HUTCH_CHILD_CODE inline void install_seccomp(const Plan& plan) noexcept {
  struct {
    unsigned short length;
    const sock_filter* filter;
  } program{static_cast<unsigned short>(plan.seccomp_length), plan.seccomp};
  long r = raw::sys(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &program);
  if (r < 0) fail(plan, Step::install_seccomp, r);
}

/// umask, rlimits, capabilities and ids, in the order the kernel needs: the bounding set
/// while still root (then the seccomp filter, without no_new_privs), the permitted set kept
/// across the change of uid (KEEPCAPS) and then set, no_new_privs last.
HUTCH_CHILD_CODE inline void apply_credentials(const Plan& plan) noexcept {
  raw::sys(SYS_umask, plan.umask);
  set_rlimits(plan);
  if (plan.set_capabilities) drop_bounding_set(plan);
  // Without no_new_privs the kernel takes a filter only from a process holding CAP_SYS_ADMIN:
  // it goes in now, before the ids and capabilities change (as runc does), and what follows
  // (setresuid, capset, the wait for start, execve) passes it. With no_new_privs it is the
  // last step before execve (seccomp_last()).
  if (!plan.no_new_privs && plan.seccomp_length > 0) install_seccomp(plan);
  if (plan.set_ids && plan.set_capabilities) raw::sys(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0);
  if (plan.set_ids) set_identity(plan);
  if (plan.set_capabilities) set_capabilities(plan);
  if (plan.no_new_privs) {
    long r = raw::sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (r < 0) fail(plan, Step::set_no_new_privs, r);
  }
}

/// From the descriptors on: stdio and passed fds in place (the report pipe, the sync socket
/// and an init's memfd carried along: `sync_fd` says where the socket went), a session,
/// credentials, the working directory. Returns the plan with the moved descriptors.
HUTCH_CHILD_CODE inline Plan become_the_process(const Plan& plan, int& sync_fd) noexcept {
  Carried carried{plan.error_fd, sync_fd, plan.init_fd, plan.exec_fd, plan.start_fifo_fd};
  setup_fds(plan, carried);
  sync_fd = carried.sync_fd;
  Plan patched = plan;
  patched.error_fd = carried.error_fd;
  patched.init_fd = carried.init_fd;
  patched.exec_fd = carried.exec_fd;
  patched.start_fifo_fd = carried.start_fifo_fd;
  start_session(patched);
  apply_credentials(patched);
  if (patched.cwd) {
    long r = raw::sys(SYS_chdir, patched.cwd);
    if (r < 0) fail(patched, Step::chdir, r);
  }
  return patched;
}

/// The filter as the last step before execve, unless apply_credentials() put it in already.
HUTCH_CHILD_CODE inline void seccomp_last(const Plan& plan) noexcept {
  if (plan.no_new_privs && plan.seccomp_length > 0) install_seccomp(plan);
}

}  // namespace hutch::detail::child
