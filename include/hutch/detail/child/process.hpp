// hutch — the child side of spawn(), between clone and exec: the process's own namespaces'
// settings (time offsets, hostname, loopback) and its session.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "../plan.hpp"
#include "../syscall.hpp"
#include "report.hpp"

namespace hutch::detail::child {

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

/// A new time namespace with its offsets written before anyone is inside; the command enters
/// it at exec (the host checks that it did).
HUTCH_CHILD_CODE inline void enter_time_namespace(const Plan& plan) noexcept {
  long r = raw::sys(SYS_unshare, CLONE_NEWTIME);
  if (r < 0) fail(plan, Step::unshare_time, r);
  if (plan.timens_offsets_length == 0) return;
  long fd = raw::sys(SYS_openat, AT_FDCWD, "/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail(plan, Step::write_timens_offsets, fd);
  r = raw::sys_retry(SYS_write, fd, plan.timens_offsets, plan.timens_offsets_length);
  raw::sys(SYS_close, fd);
  if (r < 0) fail(plan, Step::write_timens_offsets, r);
}

/// Hostname and loopback, in the container's own uts and net namespaces.
HUTCH_CHILD_CODE inline void set_up_host_identity(const Plan& plan) noexcept {
  if (plan.hostname) {
    long r = raw::sys(SYS_sethostname, plan.hostname, plan.hostname_length);
    if (r < 0) fail(plan, Step::set_hostname, r);
  }
  if (plan.domainname) {
    long r = raw::sys(SYS_setdomainname, plan.domainname, plan.domainname_length);
    if (r < 0) fail(plan, Step::set_hostname, r, -2);
  }
  if (plan.loopback_up) {
    long r = bring_loopback_up();
    if (r < 0) fail(plan, Step::set_loopback_up, r);
  }
}

/// Enters the namespaces joined instead of made (setns(2)), in the plan's order.
HUTCH_CHILD_CODE inline void join_namespaces(const Plan& plan) noexcept {
  for (std::size_t i = 0; i < plan.join_count; ++i) {
    long r = raw::sys(SYS_setns, plan.joins[i].fd, plan.joins[i].type);
    if (r < 0) fail(plan, Step::join_namespaces, r, static_cast<int>(i));
  }
}

/// The kernel parameters, through the container's own /proc/sys.
HUTCH_CHILD_CODE inline void write_sysctls(const Plan& plan) noexcept {
  for (std::size_t i = 0; i < plan.sysctl_count; ++i) {
    const SysctlStep& step = plan.sysctls[i];
    long fd = raw::sys(SYS_openat, AT_FDCWD, step.path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    long r = fd < 0 ? fd : raw::sys_retry(SYS_write, fd, step.value, step.length);
    if (fd >= 0) raw::sys(SYS_close, fd);
    if (r < 0) fail(plan, Step::set_sysctl, r, static_cast<int>(i));
  }
}

/// A session of its own: with a terminal, as a login has, the terminal as its controlling
/// tty; without, no controlling terminal at all, so a terminal inherited as stdin is not the
/// container's and TIOCSTI cannot type into the host's shell.
HUTCH_CHILD_CODE inline void start_session(const Plan& plan) noexcept {
  if (plan.tty) {
    long r = raw::sys(SYS_setsid);
    if (r >= 0) r = raw::sys(SYS_ioctl, 0, TIOCSCTTY, 0);
    if (r < 0) fail(plan, Step::set_controlling_tty, r);
  } else if (plan.new_session) {
    long r = raw::sys(SYS_setsid);
    if (r < 0) fail(plan, Step::new_session, r);
  }
}

}  // namespace hutch::detail::child
