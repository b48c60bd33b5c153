// hutch — starting the child: clone3(2) on a separate stack, sharing the host's memory.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "syscall.hpp"

namespace hutch::detail {

/// struct clone_args of clone3(2), as of Linux 5.7 (with `cgroup`).
struct CloneArgs {
  std::uint64_t flags;
  std::uint64_t pidfd;
  std::uint64_t child_tid;
  std::uint64_t parent_tid;
  std::uint64_t exit_signal;
  std::uint64_t stack;
  std::uint64_t stack_size;
  std::uint64_t tls;
  std::uint64_t set_tid;
  std::uint64_t set_tid_size;
  std::uint64_t cgroup;
};

/// Tests set this to exercise the clone(2) fallback that old kernels take.
inline bool force_clone_fallback = false;
/// Tests only: a descriptor the child reads one byte from just before exec, so a test can
/// look at a container paused at the end of its setup. -1: off.
inline int test_pause_fd = -1;

/// The child's stack: an anonymous mapping with a guard page below it. The child uses it
/// until it execs; the host gives it back only after that (or after the child is gone).
///
/// Stacks are reused: mapping a fresh one, faulting in the pages the child touches and
/// unmapping it (a TLB shootdown on every CPU the child ran on) costs more than all the rest
/// of the host's side of a spawn. A few free ones wait in a lock-free pool (no lock that a
/// fork(2) could copy held); beyond that they are unmapped.
class Stack {
 public:
  static constexpr std::size_t size = 128 * 1024;

  Stack() = default;
  Stack(Stack&& other) noexcept : base_(std::exchange(other.base_, nullptr)) {}
  Stack& operator=(Stack&&) = delete;
  ~Stack() {
    if (base_ && !give_back(base_)) ::munmap(base_, size + guard());
  }
  /// Takes a stack from the pool or maps one; false with errno set on failure.
  bool allocate() noexcept {
    if ((base_ = take())) return true;
    void* p = ::mmap(nullptr, size + guard(), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    if (::mprotect(p, guard(), PROT_NONE) != 0) {
      const int error = errno;
      ::munmap(p, size + guard());
      errno = error;
      return false;
    }
    base_ = p;
    return true;
  }
  char* low() const noexcept { return static_cast<char*>(base_) + guard(); }
  char* top() const noexcept { return low() + size; }

 private:
  static constexpr std::size_t pool_size = 8;
  static std::atomic<void*>* pool() noexcept {
    static std::atomic<void*> slots[pool_size] = {};
    return slots;
  }
  static void* take() noexcept {
    for (std::size_t i = 0; i < pool_size; ++i) {
      if (void* p = pool()[i].exchange(nullptr, std::memory_order_acquire)) return p;
    }
    return nullptr;
  }
  static bool give_back(void* p) noexcept {
    for (std::size_t i = 0; i < pool_size; ++i) {
      void* empty = nullptr;
      if (pool()[i].compare_exchange_strong(empty, p, std::memory_order_release)) return true;
    }
    return false;
  }
  static std::size_t guard() noexcept { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }
  void* base_ = nullptr;
};

using ChildMain = int (*)(void*);

#if defined(__x86_64__)
/// clone3 that runs `fn(arg)` on the new stack in the child and exits with its result. libc
/// exports no clone3 with a callback, and after the syscall the child runs on a stack with no
/// caller frame, so this part must be assembly: it may not touch the parent's stack frame.
inline long clone3_call(CloneArgs* args, ChildMain fn, void* arg) noexcept {
  long ret;
  register ChildMain r12 __asm__("r12") = fn;
  register void* r13 __asm__("r13") = arg;
  __asm__ volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xorl %%ebp, %%ebp\n\t"
      "movq %%r13, %%rdi\n\t"
      "callq *%%r12\n\t"
      "movl %%eax, %%edi\n\t"
      "movl $231, %%eax\n\t"  // exit_group
      "syscall\n\t"
      "hlt\n"
      "1:\n\t"
      : "=a"(ret)
      : "a"(static_cast<long>(SYS_clone3)), "D"(args), "S"(sizeof(CloneArgs)), "r"(r12), "r"(r13)
      : "rcx", "r11", "memory", "cc");
  return ret;
}
#endif

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

/// Starts `fn(arg)` in a new process that shares this process's memory (CLONE_VM, like
/// posix_spawn: no page-table copy, so the cost does not grow with the host's size) and runs
/// on `stack`. `flags` adds namespace flags. Returns the pid, or -errno. On success `pidfd`
/// holds a pidfd for the child. With `cgroup_fd` >= 0, clone3 places the child into that
/// cgroup v2 directory atomically (CLONE_INTO_CGROUP) and `placed` says so; the clone(2)
/// fallback for kernels without clone3 cannot, and leaves `placed` false.
///
/// `handlers_cleared` (read by the child: it lives in the plan) is set before the child
/// starts: true when the kernel reset every handled signal to its default in the child
/// (CLONE_CLEAR_SIGHAND, Linux 5.5), so no host handler can ever run there; false on older
/// kernels, where the child resets them itself.
///
/// With `share_memory` false (Container::create()) the child gets a copy of the host's memory
/// instead, as fork(2) gives: dearer to start, but it may wait there as long as it likes.
inline long start_child(ChildMain fn, void* arg, std::uint64_t flags, const Stack& stack,
                        int& pidfd, int cgroup_fd, bool& placed, bool& handlers_cleared,
                        bool share_memory = true) noexcept {
  pidfd = -1;
  placed = false;
  handlers_cleared = false;
  flags |= (share_memory ? CLONE_VM : 0) | CLONE_PIDFD;
#if defined(__x86_64__)
  if (!force_clone_fallback) {
    CloneArgs args{};
    args.flags = flags | CLONE_CLEAR_SIGHAND | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<std::uint64_t>(stack.low());
    args.stack_size = Stack::size;
    args.cgroup = cgroup_fd >= 0 ? static_cast<std::uint64_t>(cgroup_fd) : 0;
    // Before 5.5 the kernel refuses CLONE_CLEAR_SIGHAND (EINVAL): learnt once, then left out.
    static std::atomic<bool> no_clear_sighand{false};
    long r = -EINVAL;
    if (!no_clear_sighand.load(std::memory_order_relaxed)) {
      handlers_cleared = true;
      r = clone3_call(&args, fn, arg);
    }
    if (r == -EINVAL) {
      args.flags &= ~static_cast<std::uint64_t>(CLONE_CLEAR_SIGHAND);
      handlers_cleared = false;
      r = clone3_call(&args, fn, arg);
      if (r > 0) no_clear_sighand.store(true, std::memory_order_relaxed);
    }
    if (r != -ENOSYS) {
      placed = r > 0 && cgroup_fd >= 0;
      return r;
    }
    handlers_cleared = false;
  }
#endif
  int r = ::clone(fn, stack.top(), static_cast<int>(flags) | SIGCHLD, arg, &pidfd);
  return r < 0 ? -errno : r;
}

/// Blocks every signal in the calling thread for its lifetime: the child starts with all
/// signals blocked, so no host handler can run on the child's stack before it resets them.
class BlockAllSignals {
 public:
  BlockAllSignals() noexcept {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~BlockAllSignals() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  BlockAllSignals(const BlockAllSignals&) = delete;
  BlockAllSignals& operator=(const BlockAllSignals&) = delete;

 private:
  sigset_t saved_;
};

}  // namespace hutch::detail
