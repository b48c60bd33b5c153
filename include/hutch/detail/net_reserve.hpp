// hutch — network namespaces made ahead (Container::network_made_ahead): a background thread
// keeps a few, each with its loopback up, so that a spawn takes one instead of making it
// (the kernel's setup_net costs 1-3 ms on the machines hutch is measured on, more than the
// rest of a full-isolation spawn). The launcher's thread enters the one it takes for its
// clone (setns(2) changes only the calling thread's network namespace) and leaves it after:
// the child starts in it and holds the only reference once the host closes its descriptor.
//
// A namespace made this way belongs to the user namespace of the thread that made it, the
// host's: the same as one made at clone for a container without a user namespace, but not
// for one with (see Container::network_made_ahead).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "../fd.hpp"
#include "child/process.hpp"
#include "clone.hpp"

namespace hutch::detail {

/// The calling thread's own network namespace, kept to come back to.
inline Fd open_thread_network_namespace() {
  return Fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
}

/// A network namespace made ahead and the sysfs that shows it: sysfs is mounted for the
/// network namespace of its mounter, and only by one with CAP_SYS_ADMIN over that namespace's
/// owner, so a container in a user namespace of its own could not mount it.
struct MadeAheadNetwork {
  Fd net;
  Fd sysfs;  // detached (fsmount), read-only, nosuid, nodev, noexec; invalid if none
  explicit operator bool() const noexcept { return static_cast<bool>(net); }
};

/// A sysfs for the calling thread's network namespace, as a detached mount.
inline Fd make_sysfs() {
  Fd context(static_cast<int>(::syscall(SYS_fsopen, "sysfs", 1 /* FSOPEN_CLOEXEC */)));
  if (!context) return Fd();
  if (::syscall(SYS_fsconfig, context.get(), 6 /* FSCONFIG_CMD_CREATE */, nullptr, nullptr, 0) !=
      0) {
    return Fd();
  }
  // MOUNT_ATTR_RDONLY | NOSUID | NODEV | NOEXEC, as runc mounts /sys.
  return Fd(static_cast<int>(
      ::syscall(SYS_fsmount, context.get(), 1 /* FSMOUNT_CLOEXEC */, 0x1 | 0x2 | 0x4 | 0x8)));
}

/// Makes a network namespace with its loopback up and its sysfs, on the calling thread,
/// which enters it and comes back to `own` (its namespace before). Needs CAP_SYS_ADMIN in the
/// thread's user namespace; an invalid one with errno set if it cannot be made.
inline MadeAheadNetwork make_network_namespace(int own) {
  if (::unshare(CLONE_NEWNET) != 0) return {};
  MadeAheadNetwork made{open_thread_network_namespace(), Fd()};
  int err = errno;
  const long up = child::bring_loopback_up();
  if (made.net) made.sysfs = make_sysfs();
  // A thread left in a namespace it did not mean to keep would make its next sockets there.
  if (::setns(own, CLONE_NEWNET) != 0) std::terminate();
  if (made.net && up < 0) {
    made = {};
    err = static_cast<int>(-up);
  }
  errno = err;
  return made;
}

/// The process's reserve of network namespaces and the thread that fills it, started by the
/// first spawn that asks. It keeps one ready, and one more each time a spawn found none (up
/// to `most`), so a host that spawns in bursts finds them made; it blocks every signal. Where
/// it may not make them (without CAP_SYS_ADMIN) it stops, and so does the reserve: each
/// container then makes its own at clone, as without it. A forked copy of the process has no
/// thread: its spawns make theirs on their own thread.
class NetReserve {
 public:
  static constexpr std::size_t most = 4;

  static NetReserve& get() {
    static NetReserve* reserve = new NetReserve;  // never destroyed: its thread runs to exit
    return *reserve;
  }

  /// A network namespace made ahead (with its sysfs) or, with none ready, one made now on the
  /// calling thread (or the one the thread is making, which is done sooner). Invalid, with errno
  /// set, where none may be made.
  MadeAheadNetwork take() {
    const pid_t owner = owner_.load();
    if (owner != 0 && owner != ::getpid()) return make_here();  // a fork: its lock may be held
    std::unique_lock lock(mutex_);
    if (refused_) {
      errno = refused_;
      return {};
    }
    if (!start()) {
      lock.unlock();
      return make_here();
    }
    if (ready_.empty()) {
      if (wanted_ < most) ++wanted_;
      work_.notify_one();
      made_.wait(lock, [&] { return !ready_.empty() || !making_ || refused_; });
    }
    if (ready_.empty()) {
      lock.unlock();
      return make_here();
    }
    MadeAheadNetwork taken = std::move(ready_.front());
    ready_.pop_front();
    work_.notify_one();
    return taken;
  }

  /// Closes the namespaces waiting and refills no more until the next take().
  void release() {
    std::deque<MadeAheadNetwork> waiting;
    std::unique_lock lock(mutex_);
    made_.wait(lock, [&] { return !making_; });
    wanted_ = 0;
    waiting.swap(ready_);
  }

  /// How many are ready now.
  std::size_t ready() {
    std::lock_guard lock(mutex_);
    return ready_.size();
  }

 private:
  static MadeAheadNetwork make_here() {
    Fd own = open_thread_network_namespace();
    return own ? make_network_namespace(own.get()) : MadeAheadNetwork{};
  }

  /// Whether this process has the thread (starting it if not). With `mutex_` held.
  bool start() {
    if (owner_.load() == ::getpid()) return true;
    BlockAllSignals blocked;
    try {
      std::thread([this] { run(); }).detach();
    } catch (const std::system_error&) {
      return false;
    }
    owner_.store(::getpid());
    return true;
  }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      work_.wait(lock, [&] { return !refused_ && ready_.size() < wanted_; });
      making_ = true;
      lock.unlock();
      MadeAheadNetwork made = make_here();  // holding no descriptor of its own between them
      const int err = errno;
      lock.lock();
      making_ = false;
      if (made) {
        ready_.push_back(std::move(made));
      } else {
        refused_ = err != 0 ? err : EPERM;
      }
      made_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_, made_;
  std::deque<MadeAheadNetwork> ready_;
  std::size_t wanted_ = 1;
  bool making_ = false;
  int refused_ = 0;  // the errno that stopped the thread: no more are made
  std::atomic<pid_t> owner_{0};
};

}  // namespace hutch::detail
