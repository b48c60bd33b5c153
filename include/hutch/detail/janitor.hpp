// hutch — the janitor: tears finished containers down on a background thread (drops the
// host's hold on their mount namespaces, removes their cgroups), beside the caller, not in
// its way.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "../cgroup.hpp"
#include "../fd.hpp"
#include "scratch.hpp"

namespace hutch::detail {

/// When a container's last process exits, the kernel unmounts everything in its mount
/// namespace (the overlay, /proc, /dev, ..., with an RCU grace period or two) before the
/// host can reap it; then its cgroup directories are removed, one rmdir per v1 hierarchy. Both
/// are a fair part of a short container's life, and neither needs the caller to wait. The host
/// holds the mount namespace (an fd of /proc/<pid>/ns/mnt, opened when it first waits for,
/// polls or signals the container) so that the exit is quick, and once it has reaped the container
/// hands the fd, and later the cgroup, to this thread; the kernel's teardown then runs beside the
/// caller. The mounts were only visible inside the container; the cgroup goes within microseconds
/// (`settle()` waits for it).
///
/// At most `limit` jobs wait at a time (beyond that the caller does its own), so a host that
/// starts containers faster than one thread tears them down slows down rather than piling
/// them up. The thread blocks every signal. At exit the queue is drained (atexit) and later
/// jobs run in the caller; a forked copy of the host has no janitor and does its own too.
class Janitor {
 public:
  static constexpr std::size_t limit = 16;

  /// Closes `fd` on the janitor's thread (or now, when that is not possible).
  static void close_later(Fd fd) noexcept {
    if (fd) submit(Job{std::move(fd), std::nullopt, nullptr});
  }
  /// Removes `cgroup` (LiveCGroup::remove) on the janitor's thread, or now.
  static void remove_later(LiveCGroup cgroup) noexcept {
    submit(Job{Fd(), std::move(cgroup), nullptr});
  }
  /// Runs `work` on the janitor's thread, or now.
  static void run_later(std::function<void()> work) noexcept {
    submit(Job{Fd(), std::nullopt, std::move(work)});
  }

  /// Waits until every job handed over so far is done.
  static void settle() noexcept {
    State& s = state();
    const pid_t owner = s.owner.load(std::memory_order_acquire);
    if (owner == 0 || owner != ::getpid()) return;
    std::unique_lock lock(s.mutex);
    s.idle.wait(lock, [&] { return s.pending.empty() && !s.busy; });
  }

 private:
  struct Job {
    Fd fd;
    std::optional<LiveCGroup> cgroup;
    std::function<void()> work;
    void run() noexcept {
      fd.reset();
      if (cgroup) (void)cgroup->remove();
      if (work) {
        try {
          work();
        } catch (...) {  // a reclaim that cannot allocate is only put off
        }
      }
    }
  };

  struct State {
    std::mutex mutex;
    std::condition_variable work, idle;
    std::vector<Job> pending;
    bool busy = false;
    bool exiting = false;         // atexit has drained the queue: run jobs in the caller
    std::atomic<pid_t> owner{0};  // the process whose thread runs; 0: none yet
  };

  // Never destroyed: containers may finish during static destruction, after a static
  // janitor would be gone.
  static State& state() {
    static State* s = new State;
    return *s;
  }

  static void submit(Job job) noexcept {
    State& s = state();
    const pid_t owner = s.owner.load(std::memory_order_acquire);
    if (owner != 0 && owner != ::getpid()) return job.run();  // a fork: no janitor here
    std::unique_lock lock(s.mutex);
    if (s.exiting || s.pending.size() >= limit || !start(s)) {
      lock.unlock();
      return job.run();
    }
    s.pending.push_back(std::move(job));
    s.work.notify_one();
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
    if (!started) return false;
    s.owner.store(::getpid(), std::memory_order_release);
    // Nothing may be left for a thread that exit() ends: drain the queue at exit, and from
    // then on do every job in the caller.
    std::atexit([] {
      settle();
      std::lock_guard lock(state().mutex);
      state().exiting = true;
    });
    return true;
  }

  static void run(State& s) {
    std::unique_lock lock(s.mutex);
    for (;;) {
      s.work.wait(lock, [&] { return !s.pending.empty(); });
      std::vector<Job> batch;
      batch.swap(s.pending);
      s.busy = true;
      lock.unlock();
      for (Job& job : batch) job.run();
      batch.clear();
      lock.lock();
      s.busy = false;
      s.idle.notify_all();
    }
  }
};

/// Reclaims, once per process and off the caller's path, what dead hosts left in scratch
/// parent `parent` (see reclaim_scratch).
inline void reclaim_later(const std::string& parent) {
  static std::mutex mutex;
  static std::set<std::string> done;
  {
    std::lock_guard lock(mutex);
    if (!done.insert(parent).second) return;
  }
  Janitor::run_later([parent] { reclaim_scratch(parent); });
}

/// Reclaims, once per process, the empty cgroups dead hosts left below the caller's own.
inline void reclaim_cgroups_later() {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  Janitor::run_later([] {
    if (const auto& layout = host_layout()) reclaim_cgroups(*layout);
  });
}

/// The host's hold on the mount namespace of child `pid` (see Janitor); empty if /proc is
/// not there to give it or the process is already exiting, which only costs the quick exit.
inline Fd hold_mount_namespace(long pid) noexcept {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
  return Fd(::open(path, O_RDONLY | O_CLOEXEC));
}

}  // namespace hutch::detail
