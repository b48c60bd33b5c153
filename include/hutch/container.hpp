// hutch — Container: the description of a container (a copyable value), and spawn().
#pragma once

#include <sys/ioctl.h>
#include <sys/types.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgroup.hpp"
#include "child.hpp"
#include "created.hpp"
#include "detail/launcher.hpp"
#include "detail/spec.hpp"
#include "error.hpp"
#include "namespaces.hpp"
#include "rootfs.hpp"
#include "security.hpp"
#include "stdio.hpp"

namespace hutch {

/// The description of a container: a command, its environment and identity, the namespaces
/// that isolate it, its stdio. A copyable value; `spawn()` may be called any number of times.
///
/// Defaults are those of a container, not of a subprocess:
/// - namespaces: `Namespaces::all()` (user, pid, mount, uts, ipc, net, cgroup), rootless;
/// - environment: only `PATH` (`default_path`) and `HOSTNAME` if a hostname is set; the
///   host's environment is not passed in unless `env_inherit()` says so;
/// - descriptors: only stdio and those given with `pass_fd()` reach the command;
/// - the container is killed when the thread that spawned it exits (PR_SET_PDEATHSIG),
///   unless `die_with_parent(false)`: spawn from a thread that outlives the container.
class Container {
 public:
  /// The command and its arguments (argv). A name without '/' is searched in the
  /// container's PATH, as execvp(3) does.
  Container& command(std::vector<std::string> argv) {
    spec_.argv = std::move(argv);
    return *this;
  }
  /// Appends arguments to the command.
  Container& args(std::initializer_list<std::string_view> more) {
    for (auto a : more) spec_.argv.emplace_back(a);
    return *this;
  }
  Container& arg(std::string a) {
    spec_.argv.push_back(std::move(a));
    return *this;
  }

  /// Sets one environment variable.
  Container& env(std::string_view key, std::string_view value) {
    spec_.env_changes.emplace_back(std::string(key), std::string(value));
    return *this;
  }
  /// Sets variables from "KEY=VALUE" entries.
  Container& env(std::initializer_list<std::string_view> entries) {
    for (auto e : entries) {
      auto eq = e.find('=');
      if (eq == std::string_view::npos) {
        spec_.env_changes.emplace_back(std::string(e), std::string());
      } else {
        env(e.substr(0, eq), e.substr(eq + 1));
      }
    }
    return *this;
  }
  /// Removes one variable (from the defaults or the inherited host environment).
  Container& env_remove(std::string_view key) {
    spec_.env_changes.emplace_back(std::string(key), std::nullopt);
    return *this;
  }
  /// Starts from an empty environment: no PATH, no HOSTNAME, only what `env()` adds.
  Container& env_clear() {
    spec_.env_base = detail::EnvBase::empty;
    spec_.env_changes.clear();
    return *this;
  }
  /// Starts from the host process's environment (like a plain subprocess). Opt-in: a host's
  /// environment often holds secrets that a container should not see.
  Container& env_inherit() {
    spec_.env_base = detail::EnvBase::host;
    spec_.env_changes.clear();
    return *this;
  }

  /// The working directory the command starts in (inside the container's filesystem).
  Container& cwd(std::string dir) {
    spec_.cwd = std::move(dir);
    return *this;
  }
  /// The hostname inside; needs `Namespace::uts` (it would otherwise rename the host).
  Container& hostname(std::string name) {
    spec_.hostname = std::move(name);
    return *this;
  }
  Container& namespaces(Namespaces set) {
    spec_.namespaces = set;
    return *this;
  }
  /// Id maps of the user namespace; see IdMap for the default.
  Container& uid_map(std::vector<IdMap> map) {
    spec_.uid_map = std::move(map);
    return *this;
  }
  Container& gid_map(std::vector<IdMap> map) {
    spec_.gid_map = std::move(map);
    return *this;
  }
  /// Clock offsets; needs `Namespace::time`.
  Container& time_offsets(TimeOffsets offsets) {
    spec_.time_offsets = offsets;
    return *this;
  }
  /// The uid, gid and supplementary groups the command runs as (ids inside the container;
  /// with a user namespace they must be mapped). Default: 0, 0, no change of groups.
  Container& user(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
    spec_.user = detail::UserIds{uid, gid, std::move(groups)};
    return *this;
  }

  Container& std_in(Stdio s) {
    spec_.stdio[0] = std::move(s);
    return *this;
  }
  Container& std_out(Stdio s) {
    spec_.stdio[1] = std::move(s);
    return *this;
  }
  Container& std_err(Stdio s) {
    spec_.stdio[2] = std::move(s);
    return *this;
  }
  /// Sets all three streams.
  Container& stdio(const Stdio& s) {
    spec_.stdio[0] = spec_.stdio[1] = spec_.stdio[2] = s;
    return *this;
  }
  /// Gives the container a pseudo-terminal as stdin, stdout and stderr (overriding their
  /// Stdio), in a session of its own with the terminal as its controlling tty; the host end
  /// is `Child::pty()`. Set the window size with `Child::resize()`.
  Container& tty(bool yes = true) {
    spec_.tty = yes;
    return *this;
  }
  /// The terminal's window size from the start (before the command runs), with tty().
  Container& tty_size(unsigned short rows, unsigned short columns) {
    spec_.tty_size = winsize{rows, columns, 0, 0};
    return *this;
  }
  /// Makes host descriptor `host_fd` appear as `container_fd` (>= 3) inside. The host keeps
  /// owning `host_fd`; it must stay open until spawn() returns.
  Container& pass_fd(int host_fd, int container_fd) {
    spec_.passed_fds.push_back({host_fd, container_fd});
    return *this;
  }
  /// The container's own root filesystem. Without one, the command sees the host's files
  /// (with a fresh /proc when it has pid and mount namespaces).
  Container& rootfs(RootFs fs) {
    spec_.rootfs = std::move(fs);
    return *this;
  }
  /// The container's cgroup and limits (see CGroup).
  Container& cgroup(CGroup spec) {
    spec_.cgroup = std::move(spec);
    return *this;
  }
  /// The capabilities the command keeps: bounding, permitted and effective sets (inheritable
  /// and ambient are empty). Default: `Capabilities::defaults()`, Docker's 14.
  Container& capabilities(Capabilities set) {
    spec_.capabilities = set;
    return *this;
  }
  /// PR_SET_NO_NEW_PRIVS (on by default): execve can never grant privileges, not through
  /// setuid binaries nor file capabilities.
  Container& no_new_privs(bool yes) {
    spec_.no_new_privs = yes;
    return *this;
  }
  /// The command's file mode creation mask (umask(2)). Default 022, as runc and Docker.
  Container& umask(mode_t mask) {
    spec_.umask = mask;
    return *this;
  }
  /// Whether the command starts a session of its own (setsid(2)); on by default, as
  /// bubblewrap's --new-session. A terminal inherited as stdin is then not the container's
  /// controlling terminal, so the container cannot push keystrokes into the host's shell
  /// with TIOCSTI, nor get its job-control signals. `tty()` always makes a new session.
  Container& new_session(bool yes) {
    spec_.new_session = yes;
    return *this;
  }
  /// A seccomp filter installed as the last step before execve. Build one with
  /// `hutch::Seccomp` (hutch/seccomp.hpp, the `hutch::seccomp` CMake target), e.g.
  /// `Seccomp::defaults().compile()`. Needs no_new_privs (the default) or CAP_SYS_ADMIN.
  Container& seccomp(SeccompProgram program) {
    spec_.seccomp = std::move(program);
    return *this;
  }
  /// Sets a resource limit (setrlimit(2)) for the command, e.g. `rlimit(RLIMIT_NOFILE, 256)`.
  Container& rlimit(int resource, rlim_t soft, rlim_t hard) {
    spec_.rlimits.push_back({resource, soft, hard});
    return *this;
  }
  Container& rlimit(int resource, rlim_t limit) { return rlimit(resource, limit, limit); }
  /// Whether the container is killed (SIGKILL) when the thread that spawned it ends.
  Container& die_with_parent(bool yes) {
    spec_.die_with_parent = yes;
    return *this;
  }

  /// Starts the container. Returns when the command has been exec'd inside it, or with the
  /// reason it could not be, whichever step failed, in the host or in the container.
  result<Child> spawn() const;

  /// Sets the container up — namespaces, id maps, root filesystem, cgroup, user and
  /// capabilities — and stops just before its command: `Created::start()` runs it (the
  /// split of `runc create` and `runc start`). A failed step is reported here as by spawn();
  /// exec's own errors (command not found, ...) by start(). Starting a created container
  /// costs a message and an exec, so a host that prepares one ahead starts its job at once.
  /// The waiting process has a copy of the host's memory (spawn()'s child shares it), so
  /// creating costs more than spawning and grows with the host's size; it may wait as long
  /// as it likes.
  result<Created> create() const;

  /// Runs the container to its end and returns its exit status. Stdio as configured.
  result<ExitStatus> run() const {
    HUTCH_TRY(Child child, spawn());
    return child.wait();
  }

  /// Runs the container to its end with stdout and stderr captured (stdin /dev/null unless
  /// set otherwise) and returns them with the exit status.
  result<Output> output() const {
    Container c = *this;
    if (c.spec_.stdio[0].kind() == Stdio::Kind::inherit) c.spec_.stdio[0] = Stdio::null();
    c.spec_.stdio[1] = Stdio::piped();
    c.spec_.stdio[2] = Stdio::piped();
    HUTCH_TRY(Child child, c.spawn());
    return child.wait_with_output();
  }

  // Read access, for tools built on the library.
  const std::vector<std::string>& argv() const noexcept { return spec_.argv; }
  Namespaces namespaces() const noexcept { return spec_.namespaces; }
  const std::optional<std::string>& hostname() const noexcept { return spec_.hostname; }
  /// The whole description as plain data: what the launcher reads.
  const detail::Spec& spec() const noexcept { return spec_; }

 private:
  detail::Spec spec_;
};

inline result<Child> Container::spawn() const {
  return detail::Launcher::spawn(spec_);
}

inline result<Created> Container::create() const {
  HUTCH_TRY(detail::Launched launched, detail::Launcher::create(spec_));
  return Created(std::move(launched.state), std::move(launched.child));
}

}  // namespace hutch
