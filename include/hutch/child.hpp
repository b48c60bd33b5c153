// hutch — Child (a running container), ExitStatus and Output.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "attachment.hpp"
#include "cgroup.hpp"
#include "detail/janitor.hpp"
#include "detail/syscall.hpp"
#include "error.hpp"
#include "fd.hpp"

namespace hutch {

class Process;

/// How a container's command ended. The exit code and the signal are kept apart: exactly one
/// of `code` and `signal` is set. `oom_killed` says the kernel's OOM killer ended a process
/// of the container's cgroup (only known when the container has a cgroup with a memory
/// controller).
struct ExitStatus {
  std::optional<int> code;
  std::optional<int> signal;
  bool core_dumped = false;
  bool oom_killed = false;

  bool success() const noexcept { return code && *code == 0; }
  bool exited() const noexcept { return code.has_value(); }
  bool signaled() const noexcept { return signal.has_value(); }

  /// The status as waitid(2) reports it in siginfo_t.
  static ExitStatus from_siginfo(const siginfo_t& info) noexcept {
    ExitStatus s;
    if (info.si_code == CLD_EXITED) {
      s.code = info.si_status;
    } else {
      s.signal = info.si_status;
      s.core_dumped = info.si_code == CLD_DUMPED;
    }
    return s;
  }

  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

/// What `Container::output()` and `Child::wait_with_output()` collect.
struct Output {
  ExitStatus status;
  std::string std_out;
  std::string std_err;
};

namespace detail {
/// Work that must run when the container is gone and its handle destroyed (remove its
/// scratch directory). Set by spawn(); runs exactly once.
using Teardown = std::function<void()>;
}  // namespace detail

/// A running container: a move-only handle on its init process (pid + pidfd) and the host
/// ends of its pipes.
///
/// Destroying a Child that was neither waited for nor `detach()`ed kills it (SIGKILL; with a
/// pid namespace that ends every process inside) and reaps it; then every process left in
/// its cgroup is killed and the cgroup and scratch directories are removed (an unnamed
/// cgroup on a background thread: `hutch::settle()` waits for that). The handle never
/// signals a process it has already reaped: it signals through the pidfd
/// (pidfd_send_signal(2)).
class Child {
 public:
  Child() = default;
  Child(Child&& other) noexcept { *this = std::move(other); }
  Child& operator=(Child&& other) noexcept {
    if (this != &other) {
      finish();
      pid_ = std::exchange(other.pid_, -1);
      pidfd_ = std::move(other.pidfd_);
      stdin_ = std::move(other.stdin_);
      stdout_ = std::move(other.stdout_);
      stderr_ = std::move(other.stderr_);
      pty_ = std::move(other.pty_);
      scratch_dir_ = std::move(other.scratch_dir_);
      network_ = std::move(other.network_);
      attachment_ = std::move(other.attachment_);
      status_ = std::exchange(other.status_, std::nullopt);
      teardown_ = std::exchange(other.teardown_, nullptr);
      cgroup_.reset();
      if (other.cgroup_) cgroup_.emplace(std::move(*other.cgroup_));
      other.cgroup_.reset();
      mount_namespace_ = std::move(other.mount_namespace_);
      hold_pending_ = other.hold_pending_.exchange(false);
      detached_ = std::exchange(other.detached_, false);
    }
    return *this;
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { finish(); }

  /// The host pid of the container's init process (its PID 1 when it has a pid namespace).
  pid_t pid() const noexcept { return pid_; }
  /// The pidfd (pidfd_open(2)) of that process, owned by this handle. (A host that polls it
  /// gets the container's quick exit as wait() does: see `hold_mount_namespace`.)
  int pidfd() const noexcept {
    hold_mount_namespace();
    return pidfd_.get();
  }

  /// Host ends of the pipes made for `Stdio::piped()`; empty otherwise. Close `stdin_pipe()`
  /// (`stdin_pipe().reset()`) to send end-of-file.
  Fd& stdin_pipe() noexcept { return stdin_; }
  Fd& stdout_pipe() noexcept { return stdout_; }
  Fd& stderr_pipe() noexcept { return stderr_; }
  /// The host directory holding the overlay's writable layer (upper/), when the container
  /// has an overlay root; empty otherwise.
  const std::string& scratch_dir() const noexcept { return scratch_dir_; }
  void set_scratch_dir(std::string dir) { scratch_dir_ = std::move(dir); }
  /// The container's network as its Attacher set it up (Container::network): its addresses.
  /// Empty without one.
  const NetworkInfo& network() const noexcept { return network_; }
  /// Asks the Attacher whether the container's network is still as it was attached (for CNI
  /// networks: each plugin's CHECK); the first difference found comes back as the error.
  /// Succeeds without an Attacher, and after detach().
  result<void> check_network() const {
    if (!attachment_) return success();
    return attachment_->check();
  }
  void set_attachment(std::unique_ptr<Attachment> attachment, pid_t pid) {
    network_ = attachment->info();
    attachment->started(pid);
    attachment_ = std::move(attachment);
  }
  /// The host end (master) of the container's terminal, with `Container::tty()`.
  Fd& pty() noexcept { return pty_; }
  /// Sets the terminal's window size (TIOCSWINSZ); the container gets SIGWINCH.
  result<void> resize(unsigned short rows, unsigned short columns) {
    winsize size{rows, columns, 0, 0};
    if (!pty_ || ::ioctl(pty_.get(), TIOCSWINSZ, &size) != 0) {
      return make_error(Step::open_pty, pty_ ? errno : ENOTTY, "", "resize");
    }
    return success();
  }

  /// Blocks until the container's init process ends, reaps it and tears the container down.
  /// Later calls return the same status.
  result<ExitStatus> wait() {
    if (status_) return *status_;
    hold_mount_namespace();
    siginfo_t info{};
    int r = detail::sys::retry(
        [&] { return ::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED); });
    if (r < 0) return last_error(Step::wait, std::to_string(pid_));
    return reaped(info);
  }

  /// Reaps the process if it has ended; std::nullopt while it is still running.
  result<std::optional<ExitStatus>> try_wait() {
    if (status_) return std::optional<ExitStatus>(*status_);
    siginfo_t info{};
    int r = detail::sys::retry([&] {
      return ::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED | WNOHANG);
    });
    if (r < 0) return last_error(Step::wait, std::to_string(pid_));
    if (info.si_pid == 0) return std::optional<ExitStatus>();
    return std::optional<ExitStatus>(reaped(info));
  }

  /// Waits at most `timeout` (poll(2) on the pidfd: no busy loop, no SIGCHLD handler);
  /// std::nullopt when the process still runs after it.
  result<std::optional<ExitStatus>> wait_for(std::chrono::nanoseconds timeout) {
    if (status_) return std::optional<ExitStatus>(*status_);
    hold_mount_namespace();
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      // Round up so a sub-millisecond remainder still waits instead of spinning.
      int ms = left.count() <= 0
                   ? 0
                   : static_cast<int>(std::min<std::int64_t>(left.count() + 1, INT32_MAX));
      pollfd p{pidfd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, ms);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return last_error(Step::poll, std::to_string(pid_));
      if (r > 0) return try_wait();
      if (clock::now() >= deadline) return std::optional<ExitStatus>();
    }
  }

  /// Sends `signal` to the container's init process. Once the process has been reaped this
  /// does nothing and succeeds: the process it would have named is gone.
  result<void> kill(int signal = SIGKILL) {
    if (status_ || !pidfd_) return success();
    hold_mount_namespace();
    if (detail::sys::pidfd_send_signal(pidfd_.get(), signal) < 0 && errno != ESRCH) {
      return last_error(Step::kill, std::to_string(pid_));
    }
    return success();
  }

  /// Reads stdout and stderr pipes to their end while writing `input` to the stdin pipe,
  /// then waits. Never deadlocks on a child that fills both pipes.
  result<Output> wait_with_output(std::string_view input = {}) {
    hold_mount_namespace();
    Output out;
    if (stdin_) {
      int flags = ::fcntl(stdin_.get(), F_GETFL);
      ::fcntl(stdin_.get(), F_SETFL, flags | O_NONBLOCK);
      if (input.empty()) stdin_.reset();
    }
    char buffer[65536];
    while (stdout_ || stderr_ || stdin_) {
      pollfd fds[3] = {
          {stdout_.get(), POLLIN, 0}, {stderr_.get(), POLLIN, 0}, {stdin_.get(), POLLOUT, 0}};
      if (::poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return last_error(Step::read_output);
      }
      Fd* sources[2] = {&stdout_, &stderr_};
      std::string* sinks[2] = {&out.std_out, &out.std_err};
      for (int i = 0; i < 2; ++i) {
        if (fds[i].revents == 0) continue;
        ssize_t n = ::read(sources[i]->get(), buffer, sizeof buffer);
        if (n > 0) {
          sinks[i]->append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          sources[i]->reset();
        }
      }
      if (fds[2].revents != 0) {
        ssize_t n = ::write(stdin_.get(), input.data(), input.size());
        if (n > 0) input.remove_prefix(static_cast<std::size_t>(n));
        // EPIPE: the command stopped reading; that is its business, not an error.
        if (input.empty() || (n < 0 && errno != EINTR && errno != EAGAIN)) stdin_.reset();
      }
    }
    auto status = wait();
    if (!status) return status.error();
    out.status = *status;
    return out;
  }

  /// The container's cgroup, or nullptr if it has none.
  const LiveCGroup* cgroup() const noexcept { return cgroup_ ? &*cgroup_ : nullptr; }
  /// Resource use so far (also after wait(), until the Child is destroyed).
  result<CGroupStats> stats() const {
    return on_cgroup([](const LiveCGroup& g) { return g.stats(); });
  }
  /// Stops / resumes every process of the container (cgroup freezer).
  result<void> freeze() const {
    return on_cgroup([](const LiveCGroup& g) { return g.freeze(); });
  }
  result<void> thaw() const {
    return on_cgroup([](const LiveCGroup& g) { return g.thaw(); });
  }
  /// Kills every process of the container's cgroup, also those that left its process tree.
  result<void> kill_all() const {
    return on_cgroup([](const LiveCGroup& g) { return g.kill_all(); });
  }

  /// Gives up ownership: the destructor will neither kill nor reap the process and skips the
  /// teardown (cgroup and scratch directories stay). Returns the pid.
  pid_t detach() noexcept {
    // Its scratch directory outlives this host now: a later reclaim must leave it while the
    // container runs.
    if (!detached_ && running()) detail::mark_scratch_live(scratch_dir_, pid_);
    detached_ = true;
    teardown_ = nullptr;
    if (attachment_) std::exchange(attachment_, nullptr)->keep();
    mount_namespace_.reset();
    if (cgroup_) cgroup_->release();
    return pid_;
  }

  /// Runs `process` inside this running container, as `docker exec` does: it joins the
  /// container's namespaces (setns on the pidfd, Linux 5.8) and cgroup, starts in its root,
  /// and is set up as the container's first process was (user, capabilities, no_new_privs,
  /// rlimits, seccomp, terminal) from `process`' own settings (`Process::of(container.spec())`
  /// takes the container's). Returns the new process's Child; it fails with the reason, as
  /// spawn() does. Defined with hutch/container.hpp.
  result<Child> exec(const Process& process) const;

  /// Whether this handle still owns a process that has not been reaped.
  bool running() const noexcept { return pid_ > 0 && !status_ && !detached_; }

  // Used by Container::spawn().
  Child(pid_t pid, Fd pidfd, Fd in, Fd out, Fd err, std::optional<LiveCGroup> cgroup,
        detail::Teardown teardown, bool own_mount_namespace = false) noexcept
      : pid_(pid),
        pidfd_(std::move(pidfd)),
        stdin_(std::move(in)),
        stdout_(std::move(out)),
        stderr_(std::move(err)),
        teardown_(std::move(teardown)),
        cgroup_(std::move(cgroup)),
        hold_pending_(own_mount_namespace) {}

 private:
  template <class F>
  auto on_cgroup(F f) const -> decltype(f(std::declval<const LiveCGroup&>())) {
    if (!cgroup_) {
      return make_error(Step::cgroup_read, ENOENT, "",
                        "the container was spawned without a cgroup");
    }
    return f(*cgroup_);
  }

  /// Holds the container's mount namespace so that its exit is quick (detail::Janitor says
  /// why), from the first wait, poll or signal rather than from spawn: a live container costs
  /// the host one descriptor, its pidfd. A process already exiting tears its mounts down itself.
  void hold_mount_namespace() const noexcept {
    if (hold_pending_.exchange(false) && running()) {
      mount_namespace_ = detail::hold_mount_namespace(pid_);
    }
  }

  ExitStatus reaped(const siginfo_t& info) {
    ExitStatus status = ExitStatus::from_siginfo(info);
    status.oom_killed = cgroup_ && cgroup_->oom_killed();
    status_ = status;
    detail::Janitor::close_later(std::move(mount_namespace_));
    return status;
  }

  void finish() noexcept {
    if (pid_ > 0 && !status_ && !detached_) {
      (void)kill(SIGKILL);
      (void)wait();
    }
    // Processes that left the init's tree (no pid namespace) die with the cgroup. The janitor
    // removes it off the caller's path, unless the caller named it: then the name must be free
    // again when this returns.
    if (cgroup_ && cgroup_->named()) {
      (void)cgroup_->remove();
    } else if (cgroup_) {
      detail::Janitor::remove_later(std::move(*cgroup_));
    }
    cgroup_.reset();
    if (teardown_) std::exchange(teardown_, nullptr)();
    if (attachment_) {
      detail::Janitor::run_later([attachment = std::shared_ptr<Attachment>(
                                      std::move(attachment_))]() mutable { attachment.reset(); });
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  Fd pidfd_;
  Fd stdin_, stdout_, stderr_, pty_;
  std::string scratch_dir_;
  NetworkInfo network_;
  std::unique_ptr<Attachment> attachment_;  // undone by the janitor once we are gone
  std::optional<ExitStatus> status_;
  detail::Teardown teardown_;
  std::optional<LiveCGroup> cgroup_;
  // The host's hold on the container's mount namespace: taken (once) when the host first
  // waits for, polls or signals the container, dropped by the janitor once it is reaped.
  mutable Fd mount_namespace_;
  // It has a mount namespace and no hold was tried; a reaped or detached Child takes none
  // (running()). Atomic: pidfd() is const, callable from any thread.
  mutable std::atomic<bool> hold_pending_ = false;
  bool detached_ = false;
};

/// Waits until the teardown of every container reaped or destroyed so far is done. A reaped
/// container's mount namespace (its overlay, /proc, /dev) and a destroyed Child's cgroup are
/// torn down on a background thread, off the caller's path; call this before unmounting a
/// filesystem that held a container's root, or to see its cgroup gone. (At exit it is done
/// for you.)
inline void settle() noexcept {
  detail::Janitor::settle();
}

}  // namespace hutch

template <>
struct fmt::formatter<hutch::ExitStatus> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class Context>
  auto format(const hutch::ExitStatus& s, Context& ctx) const {
    auto out = ctx.out();
    if (s.code) {
      out = fmt::format_to(out, "exited with code {}", *s.code);
    } else if (s.signal) {
      const char* name = ::sigabbrev_np(*s.signal);
      out = fmt::format_to(out, "killed by signal {} (SIG{}){}", *s.signal, name ? name : "?",
                           s.core_dumped ? ", core dumped" : "");
    }
    if (s.oom_killed) out = fmt::format_to(out, " (out of memory)");
    return out;
  }
};
