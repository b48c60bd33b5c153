// hutch — system call wrappers.
//
// Two families:
//  * `sys::*` for the host side: ordinary calls that retry on EINTR and report errno.
//  * `raw::*` for the child between clone and exec: the child shares the host's memory
//    (CLONE_VM), including the calling thread's `errno`, so it must not go through libc
//    wrappers that write errno or take locks. `raw::call` returns -errno on failure.
#pragma once

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "../fd.hpp"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace hutch::detail {

namespace raw {

/// A system call that never touches errno: returns the result, or -errno on failure.
inline long call(long number, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                 long a6 = 0) noexcept {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = number;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  register long x5 __asm__("x5") = a6;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
#else
#error "hutch: raw system calls are implemented for x86_64 and aarch64"
#endif
}

template <class... Args>
inline long sys(long number, Args... args) noexcept {
  return call(number, (long)args...);
}

/// Retries a raw call while it fails with EINTR.
template <class... Args>
inline long sys_retry(long number, Args... args) noexcept {
  long r;
  do r = call(number, (long)args...);
  while (r == -EINTR);
  return r;
}

[[noreturn]] inline void exit(int code) noexcept {
  for (;;) call(SYS_exit_group, code);
}

inline std::size_t length(const char* s) noexcept {
  std::size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

}  // namespace raw

namespace sys {

/// Calls `f` until it does not fail with EINTR; returns its last result.
template <class F>
inline auto retry(F&& f) noexcept(noexcept(f())) {
  decltype(f()) r;
  do r = f();
  while (r == -1 && errno == EINTR);
  return r;
}

inline int pidfd_send_signal(int pidfd, int signal) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

inline int pidfd_open(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

/// Writes all of `data` to `fd` (write(2), or send(2) with MSG_NOSIGNAL for a socket whose
/// reader may have gone); false on the first error, errno set.
inline bool write_all(int fd, const char* data, std::size_t size, bool socket = false) noexcept {
  while (size > 0) {
    const ssize_t n = retry(
        [&] { return socket ? ::send(fd, data, size, MSG_NOSIGNAL) : ::write(fd, data, size); });
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

/// Writes a whole small file in one write(2), as /proc and cgroupfs want.
inline bool write_file(const char* path, const char* data, std::size_t size) noexcept {
  Fd fd(retry([&] { return ::open(path, O_WRONLY | O_CLOEXEC); }));
  if (!fd) return false;
  ssize_t n = retry([&] { return ::write(fd.get(), data, size); });
  return n == static_cast<ssize_t>(size);
}

}  // namespace sys

}  // namespace hutch::detail
