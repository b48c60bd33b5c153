// hutch — the child side of spawn(), between clone and exec: reporting a failure.
//
// ============================================================================================
//  WARNING: everything in detail/child/ runs in a child that shares the host's memory
//  (CLONE_VM) while other host threads keep running. It must be async-signal-safe: no
//  allocation, no locks, no exceptions, no fmt, no libc call that may write errno or take a
//  lock. Use only `raw::` system calls and plain memory reads of the Plan the host prepared.
// ============================================================================================
#pragma once

#include <sys/syscall.h>

#include <cstdint>

#include "../plan.hpp"
#include "../syscall.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define HUTCH_CHILD_CODE __attribute__((no_sanitize("address", "undefined"), noinline))
#else
#define HUTCH_CHILD_CODE __attribute__((noinline))
#endif

namespace hutch::detail::child {

/// Report `error` for `step` to the host and end the child: one fixed-size record in one
/// write(2) on the close-on-exec report pipe (detail/child_report.hpp reads it). Never
/// returns.
[[noreturn]] HUTCH_CHILD_CODE inline void fail(const Plan& plan, Step step, long error,
                                               int index = -1) noexcept {
  ChildReport report{static_cast<std::int32_t>(step), static_cast<std::int32_t>(-error), index};
  raw::sys_retry(SYS_write, plan.error_fd, &report, sizeof report);
  raw::exit(127);
}

}  // namespace hutch::detail::child
