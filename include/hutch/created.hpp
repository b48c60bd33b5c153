// hutch — Created: a container set up ahead, started on demand (runc create / runc start).
#pragma once

#include <sys/types.h>

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

  /// Runs the command. Returns when it has been exec'd, or with the reason it could not be
  /// (the container is gone then). Once only. A container killed while it waited fails
  /// here, or, if it was still dying, its Child's wait() says it was killed.
  result<Child> start() { return detail::Launcher::start(state_, child_); }

 private:
  std::unique_ptr<detail::LaunchState> state_;  // the report pipe, the sync socket, names
  Child child_;
};

}  // namespace hutch
