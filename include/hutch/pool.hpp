// hutch — Pool: containers created ahead from one description, refilled in the background, so
// that a spawn is only the start of one already set up ("hot spares").
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "child.hpp"
#include "container.hpp"
#include "created.hpp"
#include "error.hpp"

namespace hutch {

namespace detail {

/// One Pool's share of the pool thread's work. Guarded by PoolThread's mutex.
struct PoolState {
  explicit PoolState(Container c, std::size_t n) : description(std::move(c)), size(n) {}
  const Container description;
  const std::size_t size;
  std::deque<Created> ready;
  std::size_t making = 0;
  std::optional<Error> failed;  // the last refill's error: refilling waits for the next spawn()
  bool closed = false;
  std::condition_variable changed;  // a container is ready, or a refill failed
};

/// The thread that creates every Pool's containers: one per process, for the life of the
/// process, because a container dies with the thread that made it (PR_SET_PDEATHSIG) unless
/// told otherwise — a Pool's containers die with the process, as spawned ones die with their
/// thread. It blocks every signal. At exit it stops creating; in a forked copy of the host
/// there is none (a Pool there spawns in the caller).
class PoolThread {
 public:
  static PoolThread& get() {
    static PoolThread* t = new PoolThread;  // never destroyed: pools may outlive statics
    return *t;
  }
  std::mutex mutex;

  /// Whether this process has the thread (starting it if not): false after exit began, in a
  /// fork, or if no thread can be made. With `mutex` held.
  bool running() {
    if (exiting_) return false;
    if (owner_ == ::getpid()) return true;
    if (owner_ != 0) return false;  // a fork of the process that has it
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    bool started = true;
    try {
      std::thread([this] { run(); }).detach();
    } catch (const std::system_error&) {
      started = false;
    }
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (!started) return false;
    owner_ = ::getpid();
    std::atexit([] {
      PoolThread& t = get();
      std::unique_lock lock(t.mutex);
      t.exiting_ = true;
      t.idle_.wait(lock, [&] { return !t.busy_; });  // no create() during static destruction
    });
    return true;
  }

  /// Adds or wakes a pool that wants refilling. With `mutex` held.
  void want(const std::shared_ptr<PoolState>& pool) {
    bool known = false;
    for (const auto& p : pools_) known |= p == pool;
    if (!known) pools_.push_back(pool);
    work_.notify_one();
  }
  void forget(const std::shared_ptr<PoolState>& pool) { std::erase(pools_, pool); }

 private:
  static bool wants(const PoolState& p) {
    return !p.closed && !p.failed && p.ready.size() + p.making < p.size;
  }

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      std::shared_ptr<PoolState> pool;
      work_.wait(lock, [&] {
        if (exiting_) return false;
        for (const auto& p : pools_) {
          if (wants(*p)) {
            pool = p;
            return true;
          }
        }
        return false;
      });
      // Round robin: the pool served goes to the back.
      std::erase(pools_, pool);
      pools_.push_back(pool);
      ++pool->making;
      busy_ = true;
      lock.unlock();
      std::optional<Created> made;
      std::optional<Error> failed;
      if (auto created = pool->description.create()) {
        made.emplace(std::move(*created));
      } else {
        failed = created.error();
      }
      lock.lock();
      if (made && pool->closed) {  // its pool went meanwhile: kill and remove it, unlocked
        lock.unlock();
        made.reset();
        lock.lock();
      }
      --pool->making;
      busy_ = false;
      idle_.notify_all();
      if (failed) {
        pool->failed = std::move(failed);
      } else if (made) {
        pool->ready.push_back(std::move(*made));
      }
      pool->changed.notify_all();
    }
  }

  std::vector<std::shared_ptr<PoolState>> pools_;
  std::condition_variable work_, idle_;
  pid_t owner_ = 0;
  bool busy_ = false, exiting_ = false;
};

}  // namespace detail

/// Containers created ahead (Container::create) from one description and kept at `size`:
/// `spawn()` takes one, starts it and returns its Child — the start alone is on the caller's
/// path; the set-up (namespaces, id maps, root, cgroup) was done on hutch's pool thread, which
/// then makes the next. Each container is used once. Thread-safe: any number of threads may
/// spawn from one Pool.
///
/// A Pool's containers die with the process rather than with the thread that spawns them
/// (unless the description says die_with_parent(false)); they outlive the Pool. Destroying
/// the Pool kills and removes the ones still waiting.
class Pool {
 public:
  Pool(Container description, std::size_t size)
      : state_(std::make_shared<detail::PoolState>(std::move(description), size)) {
    detail::PoolThread& t = detail::PoolThread::get();
    std::lock_guard lock(t.mutex);
    if (size > 0 && t.running()) t.want(state_);
  }
  Pool(Pool&&) noexcept = default;
  Pool& operator=(Pool&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() { close(); }

  /// A waiting container started. With none ready it waits for the one being made (a Pool of
  /// size 0, or one in a forked copy of the host or at exit, spawns in the caller instead). A
  /// failure to create is the error of the spawn that finds it, and refilling starts again.
  result<Child> spawn() {
    detail::PoolThread& t = detail::PoolThread::get();
    std::optional<Created> taken;
    {
      std::unique_lock lock(t.mutex);
      if (state_->size == 0 || !t.running()) {
        lock.unlock();
        return state_->description.spawn();
      }
      if (state_->ready.empty() && state_->failed) {
        Error e = *std::exchange(state_->failed, std::nullopt);
        t.want(state_);
        return e;
      }
      t.want(state_);
      state_->changed.wait(lock, [&] { return !state_->ready.empty() || state_->failed; });
      if (state_->ready.empty()) {
        Error e = *std::exchange(state_->failed, std::nullopt);
        t.want(state_);
        return e;
      }
      taken.emplace(std::move(state_->ready.front()));
      state_->ready.pop_front();
      t.want(state_);
    }
    return taken->start();
  }

  /// How many are waiting now.
  std::size_t ready() const {
    std::lock_guard lock(detail::PoolThread::get().mutex);
    return state_->ready.size();
  }
  std::size_t size() const noexcept { return state_->size; }

  /// Waits until the pool is full, for a host that wants it warm before it serves: the
  /// refill's error if one failed, ETIMEDOUT after `timeout`.
  result<void> fill(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    detail::PoolThread& t = detail::PoolThread::get();
    std::unique_lock lock(t.mutex);
    if (!t.running()) return success();
    t.want(state_);
    const bool done = state_->changed.wait_for(
        lock, timeout, [&] { return state_->ready.size() >= state_->size || state_->failed; });
    if (state_->failed) {
      Error e = *std::exchange(state_->failed, std::nullopt);
      t.want(state_);
      return e;
    }
    if (!done) {
      return make_error(Step::pool_fill, ETIMEDOUT,
                        fmt::format("{} of {} ready", state_->ready.size(), state_->size),
                        "the pool did not fill in time");
    }
    return success();
  }

 private:
  void close() noexcept {
    if (!state_) return;
    std::deque<Created> waiting;
    {
      detail::PoolThread& t = detail::PoolThread::get();
      std::unique_lock lock(t.mutex);
      state_->closed = true;
      waiting.swap(state_->ready);
      t.forget(state_);
      // One being made now is removed by the pool thread: nothing of the pool outlives it.
      state_->changed.wait(lock, [&] { return state_->making == 0; });
    }
    waiting.clear();  // each killed and removed, as an unstarted Created is
    state_.reset();
  }

  std::shared_ptr<detail::PoolState> state_;
};

}  // namespace hutch
