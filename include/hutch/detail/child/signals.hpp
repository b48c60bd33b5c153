// hutch — the child side of spawn(), between clone and exec: signal dispositions.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cstdint>

#include "../plan.hpp"
#include "../syscall.hpp"
#include "report.hpp"

namespace hutch::detail::child {

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

/// Unblocks everything the host blocked around clone: the command starts with an empty mask.
HUTCH_CHILD_CODE inline void unblock_signals() noexcept {
  std::uint64_t empty_mask = 0;
  raw::sys(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, sizeof empty_mask);
}

}  // namespace hutch::detail::child
