// hutch — Process: what runs in a container — its command, environment, identity, stdio and
// privileges. Container describes its first process so; Child::exec() runs another Process
// inside a running container.
#pragma once

#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/spec.hpp"
#include "security.hpp"
#include "stdio.hpp"

namespace hutch {

namespace detail {

/// The setters a Container and a Process share, over the ProcessSpec part of `S`.
template <class Derived, class S>
class ProcessBuilder {
 public:
  /// The command and its arguments (argv). A name without '/' is searched in the
  /// container's PATH, as execvp(3) does.
  Derived& command(std::vector<std::string> argv) {
    spec_.argv = std::move(argv);
    return self();
  }
  /// Appends arguments to the command.
  Derived& args(std::initializer_list<std::string_view> more) {
    for (auto a : more) spec_.argv.emplace_back(a);
    return self();
  }
  Derived& arg(std::string a) {
    spec_.argv.push_back(std::move(a));
    return self();
  }

  /// Sets one environment variable.
  Derived& env(std::string_view key, std::string_view value) {
    spec_.env_changes.emplace_back(std::string(key), std::string(value));
    return self();
  }
  /// Sets variables from "KEY=VALUE" entries.
  Derived& env(std::initializer_list<std::string_view> entries) {
    for (auto e : entries) {
      auto eq = e.find('=');
      if (eq == std::string_view::npos) {
        spec_.env_changes.emplace_back(std::string(e), std::string());
      } else {
        env(e.substr(0, eq), e.substr(eq + 1));
      }
    }
    return self();
  }
  /// Removes one variable (from the defaults or the inherited host environment).
  Derived& env_remove(std::string_view key) {
    spec_.env_changes.emplace_back(std::string(key), std::nullopt);
    return self();
  }
  /// Starts from an empty environment: no PATH, no HOSTNAME, only what `env()` adds.
  Derived& env_clear() {
    spec_.env_base = EnvBase::empty;
    spec_.env_changes.clear();
    return self();
  }
  /// Starts from the host process's environment (like a plain subprocess). Opt-in: a host's
  /// environment often holds secrets that a container should not see.
  Derived& env_inherit() {
    spec_.env_base = EnvBase::host;
    spec_.env_changes.clear();
    return self();
  }

  /// The working directory the command starts in (inside the container's filesystem).
  Derived& cwd(std::string dir) {
    spec_.cwd = std::move(dir);
    return self();
  }
  /// The uid, gid and supplementary groups the command runs as (ids inside the container;
  /// with a user namespace they must be mapped). Default: 0, 0, no change of groups.
  Derived& user(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
    spec_.user = UserIds{uid, gid, std::move(groups)};
    return self();
  }

  Derived& std_in(Stdio s) {
    spec_.stdio[0] = std::move(s);
    return self();
  }
  Derived& std_out(Stdio s) {
    spec_.stdio[1] = std::move(s);
    return self();
  }
  Derived& std_err(Stdio s) {
    spec_.stdio[2] = std::move(s);
    return self();
  }
  /// Sets all three streams.
  Derived& stdio(const Stdio& s) {
    spec_.stdio[0] = spec_.stdio[1] = spec_.stdio[2] = s;
    return self();
  }
  /// Gives the process a pseudo-terminal as stdin, stdout and stderr (overriding their
  /// Stdio), in a session of its own with the terminal as its controlling tty; the host end
  /// is `Child::pty()`. Set the window size with `Child::resize()`.
  Derived& tty(bool yes = true) {
    spec_.tty = yes;
    return self();
  }
  /// The terminal's window size from the start (before the command runs), with tty().
  Derived& tty_size(unsigned short rows, unsigned short columns) {
    spec_.tty_size = winsize{rows, columns, 0, 0};
    return self();
  }
  /// Makes host descriptor `host_fd` appear as `container_fd` (>= 3) inside. The host keeps
  /// owning `host_fd`; it must stay open until spawn() returns.
  Derived& pass_fd(int host_fd, int container_fd) {
    spec_.passed_fds.push_back({host_fd, container_fd});
    return self();
  }
  /// The capabilities the command keeps: bounding, permitted and effective sets (inheritable
  /// and ambient are empty). Default: `Capabilities::defaults()`, Docker's 14.
  Derived& capabilities(Capabilities set) {
    spec_.capabilities = CapabilitySets::of(set);
    return self();
  }
  /// Each capability set on its own (an OCI config's process.capabilities): the ambient set
  /// must lie in both the permitted and the inheritable sets.
  Derived& capability_sets(CapabilitySets sets) {
    spec_.capabilities = sets;
    return self();
  }
  /// PR_SET_NO_NEW_PRIVS (on by default): execve can never grant privileges, not through
  /// setuid binaries nor file capabilities.
  Derived& no_new_privs(bool yes) {
    spec_.no_new_privs = yes;
    return self();
  }
  /// The command's file mode creation mask (umask(2)). Default 022, as runc and Docker.
  Derived& umask(mode_t mask) {
    spec_.umask = mask;
    return self();
  }
  /// Whether the command starts a session of its own (setsid(2)); on by default, as
  /// bubblewrap's --new-session. A terminal inherited as stdin is then not the container's
  /// controlling terminal, so the container cannot push keystrokes into the host's shell
  /// with TIOCSTI, nor get its job-control signals. `tty()` always makes a new session.
  Derived& new_session(bool yes) {
    spec_.new_session = yes;
    return self();
  }
  /// A seccomp filter installed as the last step before execve. Build one with
  /// `hutch::Seccomp` (hutch/seccomp.hpp, the `hutch::seccomp` CMake target), e.g.
  /// `Seccomp::defaults().compile()`. Needs no_new_privs (the default) or CAP_SYS_ADMIN.
  Derived& seccomp(SeccompProgram program) {
    spec_.seccomp = std::move(program);
    return self();
  }
  /// Sets a resource limit (setrlimit(2)) for the command, e.g. `rlimit(RLIMIT_NOFILE, 256)`.
  Derived& rlimit(int resource, rlim_t soft, rlim_t hard) {
    spec_.rlimits.push_back({resource, soft, hard});
    return self();
  }
  Derived& rlimit(int resource, rlim_t limit) { return rlimit(resource, limit, limit); }
  /// The process's OOM score adjustment (/proc/PID/oom_score_adj, -1000..1000): how readily
  /// the OOM killer picks it. Lowering it below the caller's own needs CAP_SYS_RESOURCE.
  Derived& oom_score_adj(int adjustment) {
    spec_.oom_score_adj = adjustment;
    return self();
  }
  /// Executes the file open as `fd` (borrowed; execveat(2)) instead of looking argv[0] up:
  /// a host binary run inside the container, as an OCI createContainer hook is.
  Derived& executable_fd(int fd) {
    spec_.exec_fd = fd;
    return self();
  }
  /// Whether the process is killed (SIGKILL) when the thread that started it ends.
  Derived& die_with_parent(bool yes) {
    spec_.die_with_parent = yes;
    return self();
  }

  const std::vector<std::string>& argv() const noexcept { return spec_.argv; }

 protected:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
  S spec_;
};

}  // namespace detail

/// A process to run inside a running container (Child::exec, hutch::exec_in). A copyable
/// value with the same setters as a Container's first process. Its defaults are those of a
/// new container's process (Docker's capabilities, no_new_privs, a minimal environment,
/// root); `Process::of(container)` starts from a container's own settings instead, as
/// `docker exec` does.
class Process : public detail::ProcessBuilder<Process, detail::ProcessSpec> {
 public:
  Process() = default;
  /// The process settings of `spec` (a Container's: `Process::of(container.spec())`).
  static Process of(const detail::ProcessSpec& spec) {
    Process p;
    p.spec_ = spec;
    p.spec_.stdio[0] = p.spec_.stdio[1] = p.spec_.stdio[2] = Stdio::inherit();
    p.spec_.passed_fds.clear();
    return p;
  }
  /// The description as plain data, for hutch's launcher.
  const detail::ProcessSpec& spec() const noexcept { return spec_; }
};

}  // namespace hutch
