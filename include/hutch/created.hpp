// hutch — Created: a container set up ahead, started on demand (runc create / runc start).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>

#include <memory>
#include <string>
#include <utility>

#include "child.hpp"
#include "detail/launch_state.hpp"
#include "detail/launcher.hpp"
#include "error.hpp"
#include "fd.hpp"

namespace hutch {

/// A container set up by `Container::create()`, its init waiting just before its command.
/// `start()` runs the command and gives the running container's Child. Destroying it
/// unstarted kills the process and removes everything it had, as destroying a Child does.
class Created {
 public:
  /// Made by Container::create() from the launcher's state and the waiting child.
  Created(std::unique_ptr<detail::LaunchState> state, Child child) noexcept
      : state_(std::move(state)), child_(std::move(child)) {}
  Created(Created&&) noexcept = default;
  Created& operator=(Created&&) noexcept = default;
  ~Created() = default;

  /// The host pid of the waiting init process.
  pid_t pid() const noexcept { return child_.pid(); }
  /// As the Child's: the host ends of its pipes (`Stdio::piped()`) and terminal, usable
  /// before start() (input written now is there when the command reads), and its overlay's
  /// scratch directory. start() hands them on to the Child.
  Fd& stdin_pipe() noexcept { return child_.stdin_pipe(); }
  Fd& stdout_pipe() noexcept { return child_.stdout_pipe(); }
  Fd& stderr_pipe() noexcept { return child_.stderr_pipe(); }
  Fd& pty() noexcept { return child_.pty(); }
  const std::string& scratch_dir() const noexcept { return child_.scratch_dir(); }
  /// The container's cgroup (null without one): its paths() are what another process opens
  /// it by (LiveCGroup::open) once this one has detached.
  const LiveCGroup* cgroup() const noexcept { return child_.cgroup(); }

  /// Runs the command. Returns when it has been exec'd, or with the reason it could not be
  /// (the container is gone then). Once only. A container killed while it waited fails
  /// here, or, if it was still dying, its Child's wait() says it was killed.
  result<Child> start() { return detail::Launcher::start(state_, child_); }

  /// Gives the waiting container up to whoever starts it by its start FIFO
  /// (Container::start_fifo, hutch::start_created) — as `runc create` leaves a container for
  /// `runc start`: it is neither killed nor reaped here, and its cgroup stays. Give it
  /// die_with_parent(false) to let it outlive this process. Returns its pid.
  pid_t detach() noexcept {
    const pid_t pid = child_.detach();
    state_.reset();
    return pid;
  }

 private:
  std::unique_ptr<detail::LaunchState> state_;  // the report pipe, the sync socket, names
  Child child_;
};

/// Starts the created container waiting on the FIFO at `fifo` (Container::start_fifo), from
/// any process: opens it for reading, which lets the container go on to its command, and
/// returns once the container has said so. `pid` (the container's, or 0) lets it fail at once
/// when the container is gone rather than wait for it; `timeout` bounds the wait.
inline result<void> start_created(const std::string& fifo, pid_t pid,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  Fd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!reader) return last_error(Step::release_child, fifo, "the start FIFO");
  Fd watched(pid > 0 ? detail::sys::pidfd_open(pid) : -1);
  if (pid > 0 && !watched) return last_error(Step::release_child, std::to_string(pid));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd fds[2] = {{reader.get(), POLLIN, 0}, {watched.get(), POLLIN, 0}};
    const int n = ::poll(fds, watched ? 2 : 1, 100);
    if (n < 0 && errno != EINTR) return last_error(Step::release_child, fifo);
    if (n > 0 && (fds[0].revents & POLLIN)) {
      char byte;
      if (::read(reader.get(), &byte, 1) == 1) return success();
    }
    if (n > 0 && watched && (fds[1].revents & POLLIN)) {
      return make_error(Step::release_child, ESRCH, std::to_string(pid),
                        "the created container ended before it was started");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(Step::release_child, ETIMEDOUT, fifo, "the container did not start");
    }
  }
}

}  // namespace hutch
