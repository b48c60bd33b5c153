// hutch — the janitor: drops the host's hold on finished containers' mount namespaces on a
// background thread, so that the kernel tears them down beside the caller, not in its way.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "../fd.hpp"

namespace hutch::detail {

/// When a container's last process exits, the kernel unmounts everything in its mount
/// namespace (the overlay, /proc, /dev, ..., with an RCU grace period or two) before the
/// host can reap it: a fifth of a short container's life. The host holds the namespace
/// (an fd of /proc/<pid>/ns/mnt, opened at spawn) so that the exit is quick, and hands the fd
/// here once it has reaped the process; this thread closes it and the teardown runs beside
/// the caller. Nothing of it is visible from the host: those mounts only ever existed in the
/// container's namespace.
///
/// At most `limit` wait at a time (the caller closes its own beyond that), so a host that
/// starts containers faster than one thread tears them down slows down rather than piling
/// them up. The thread blocks every signal; a forked copy of the host closes synchronously
/// (it has no janitor thread). Pending ones are closed by the kernel if the process exits.
class Janitor {
 public:
  static constexpr std::size_t limit = 16;

  /// Closes `fd` on the janitor's thread (or now, when that is not possible).
  static void close_later(Fd fd) noexcept {
    if (!fd) return;
    State& s = state();
    const pid_t owner = s.owner.load(std::memory_order_acquire);
    if (owner != 0 && owner != ::getpid()) return;  // a fork: fd closes here, now
    std::unique_lock lock(s.mutex);
    if (s.pending.size() >= limit || !start(s)) return;
    s.pending.push_back(fd.release());
    s.work.notify_one();
  }

  /// Waits until every fd handed over so far is closed.
  static void settle() noexcept {
    State& s = state();
    const pid_t owner = s.owner.load(std::memory_order_acquire);
    if (owner == 0 || owner != ::getpid()) return;
    std::unique_lock lock(s.mutex);
    s.idle.wait(lock, [&] { return s.pending.empty() && !s.busy; });
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable work, idle;
    std::vector<int> pending;
    bool busy = false;
    std::atomic<pid_t> owner{0};  // the process whose thread runs; 0: none yet
  };

  // Never destroyed: containers may finish during static destruction, after a static
  // janitor would be gone.
  static State& state() {
    static State* s = new State;
    return *s;
  }

  /// Starts the thread once (with s.mutex held); false if it cannot run.
  static bool start(State& s) noexcept {
    if (s.owner.load(std::memory_order_relaxed) == ::getpid()) return true;
    // The thread inherits this mask: no host signal handler ever runs on it.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    bool started = true;
    try {
      std::thread([&s] { run(s); }).detach();
    } catch (const std::system_error&) {
      started = false;
    }
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (started) s.owner.store(::getpid(), std::memory_order_release);
    return started;
  }

  static void run(State& s) {
    std::unique_lock lock(s.mutex);
    for (;;) {
      s.work.wait(lock, [&] { return !s.pending.empty(); });
      std::vector<int> batch;
      batch.swap(s.pending);
      s.busy = true;
      lock.unlock();
      for (int fd : batch) ::close(fd);
      lock.lock();
      s.busy = false;
      s.idle.notify_all();
    }
  }
};

/// The host's hold on the mount namespace of child `pid` (see Janitor); empty if /proc is
/// not there to give it, which only costs the quick exit.
inline Fd hold_mount_namespace(long pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/mnt";
  return Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

}  // namespace hutch::detail
