// hutch — the launcher: clone the child on the plan, walk it through the sync points of
// detail/sync.hpp, wait for its exec (or, created, for its start), and hand back a Child.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "../attachment.hpp"
#include "../cgroup.hpp"
#include "../child.hpp"
#include "../error.hpp"
#include "child/main.hpp"
#include "child_report.hpp"
#include "clone.hpp"
#include "id_maps.hpp"
#include "janitor.hpp"
#include "launch_state.hpp"
#include "net_reserve.hpp"
#include "prepare.hpp"
#include "spec.hpp"
#include "sync.hpp"
#include "syscall.hpp"
#include "validate.hpp"

namespace hutch::detail {

/// What create() hands to Created: the container waiting before its command, and the state
/// start() needs (the report pipe, the sync socket, the names for its errors).
struct Launched {
  Child child;
  std::unique_ptr<LaunchState> state;
};

/// The calling thread in another namespace for one clone, and back after: setns(2) changes
/// only the calling thread's network namespace and pid namespace for children. `own` names
/// the thread's namespace of that kind to come back to.
class ThreadNamespace {
 public:
  ThreadNamespace(const char* own, int type) : own_path_(own), type_(type) {}
  ThreadNamespace(const ThreadNamespace&) = delete;
  ThreadNamespace& operator=(const ThreadNamespace&) = delete;
  bool enter(int target) {
    own_.reset(::open(own_path_, O_RDONLY | O_CLOEXEC));
    if (!own_) return false;
    if (::setns(target, type_) == 0) return true;
    own_.reset();
    return false;
  }
  ~ThreadNamespace() {
    // A thread left in a namespace it did not mean to keep would put its next children there.
    if (own_ && ::setns(own_.get(), type_) != 0) std::terminate();
  }

 private:
  const char* own_path_;
  int type_;
  Fd own_;
};

/// Whether `pid` sits in the time namespace it made for its children (a dead process counts
/// as yes: there is nothing left to run in the wrong one).
inline bool entered_time_namespace(pid_t pid) {
  struct stat self {
  }, children{};
  const std::string base = fmt::format("/proc/{}/ns/time", pid);
  if (::stat(base.c_str(), &self) != 0) return true;
  if (::stat((base + "_for_children").c_str(), &children) != 0) return true;
  return self.st_ino == children.st_ino;
}

/// After exec: a new time namespace must hold the command.
inline result<void> check_time_namespace(const Plan& plan, pid_t pid) {
  if (plan.unshare_time && !entered_time_namespace(pid)) {
    return make_error(Step::unshare_time, ENOTSUP, "",
                      "this kernel does not move a process into its new time namespace at exec "
                      "(6.1 does not, 6.18 does)");
  }
  return success();
}

/// Waits for the child to exec: end of file on the close-on-exec report pipe (or its death;
/// either way it no longer uses the stack or the plan). A report is its failure.
inline result<void> await_exec(LaunchState& s, pid_t pid) {
  ChildReport report{};
  ssize_t n = sys::retry([&] { return ::read(s.report_read.get(), &report, sizeof report); });
  if (n < 0) return last_error(Step::read_child_report);
  if (n == static_cast<ssize_t>(sizeof report)) {
    s.report_read.reset();  // consumed: reported_or() does not look again
    return child_error(s, report);
  }
  return check_time_namespace(s.plan, pid);
}

/// SIGKILLs the process of `pidfd` and reaps it.
inline void kill_and_reap(int pidfd) noexcept {
  sys::pidfd_send_signal(pidfd, SIGKILL);
  siginfo_t info{};
  sys::retry([&] { return ::waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED); });
}

/// /proc/PID/oom_score_adj, written by the host: never while the process shares the host's
/// memory (the kernel gives every process sharing it the same value: the host's would change
/// too), so after a spawned process's exec, or before a created one's release.
inline result<void> write_oom_score_adj(pid_t pid, int value) {
  const std::string path = fmt::format("/proc/{}/oom_score_adj", pid);
  if (!write_text(path, std::to_string(value))) {
    return last_error(Step::set_oom_score_adj, path,
                      errno == EACCES ? "lowering it needs CAP_SYS_RESOURCE" : "");
  }
  return success();
}

inline Error clone_error(Namespaces ns, int err) {
  std::string note;
  if (err == EPERM && !ns.empty() && !ns.contains(Namespace::user) && ::geteuid() != 0) {
    note = "creating namespaces needs CAP_SYS_ADMIN; add Namespace::user to run rootless";
  } else if ((err == EPERM || err == ENOSPC || err == EUSERS) && ns.contains(Namespace::user)) {
    note =
        "the kernel refused a user namespace: see user.max_user_namespaces and "
        "kernel.unprivileged_userns_clone";
  } else if (err == EINVAL) {
    note = "the kernel does not support one of the requested namespaces";
  }
  return make_error(Step::clone, err, "", std::move(note));
}

/// One launch: spawn() (the child shares our memory and execs as soon as it is set up) or
/// create() (a copy of our memory; it waits at SyncPoint::start).
class Launcher {
 public:
  static result<Child> spawn(const Spec& c) {
    HUTCH_TRYV(validate(c));
    if (c.start_fifo) return invalid(*c.start_fifo, "a start FIFO is for create()");
    for (const auto& j : c.joined) {
      if (j.type == Namespace::time) {
        return invalid(j.path,
                       "a time namespace can only be joined by create(): spawn()'s child "
                       "shares the host's memory, which the kernel does not allow");
      }
    }
    LaunchState state;
    if (c.attacher) {
      HUTCH_TRY(Attached attached, prepare_attachment(c));
      Launcher launcher(attached.spec, state, false, std::move(attached.attachment));
      return launcher.run();
    }
    Launcher launcher(c, state, false);
    return launcher.run();
  }

  static result<Launched> create(const Spec& c) {
    HUTCH_TRYV(validate(c));
    auto state = std::make_unique<LaunchState>();
    std::optional<Attached> attached;
    if (c.attacher) {
      HUTCH_TRY(Attached made, prepare_attachment(c));
      attached.emplace(std::move(made));
    }
    Launcher launcher(attached ? attached->spec : c, *state, true,
                      attached ? std::move(attached->attachment) : nullptr);
    HUTCH_TRY(Child child, launcher.run());
    return Launched{std::move(child), std::move(state)};
  }

  /// Created::start(): lets the waiting child exec. Any failure ends the container (the
  /// Child, destroyed here, kills and reaps it and removes what it had).
  static result<Child> start(std::unique_ptr<LaunchState>& state, Child& created) {
    if (!state) {
      return make_error(Step::release_child, EALREADY, "",
                        "a created container starts once (this one did, or failed to)");
    }
    const std::unique_ptr<LaunchState> owned = std::move(state);
    LaunchState& s = *owned;
    Child child = std::move(created);
    // Once it is dead, its report (if it wrote one) names the real cause.
    auto failed = [&](Error e) -> Error {
      (void)child.kill(SIGKILL);
      (void)child.wait();
      return reported_or(s, std::move(e));
    };
    if (auto released = release(s.sync_host.get(), SyncPoint::start); !released) {
      return failed(released.error());
    }
    if (auto exec = await_exec(s, child.pid()); !exec) return failed(exec.error());
    return child;
  }

 private:
  Launcher(const Spec& c, LaunchState& s, bool create,
           std::unique_ptr<Attachment> attachment = nullptr)
      : c_(c), s_(s), create_(create), attachment_(std::move(attachment)) {}

  /// A spec with an Attacher: its Attachment for this spawn, and a copy of the spec whose
  /// root gets the attachment's files (without a root of its own, the container sees the
  /// host's).
  struct Attached {
    Spec spec;
    std::unique_ptr<Attachment> attachment;
  };
  static result<Attached> prepare_attachment(const Spec& c) {
    const bool own_net = c.namespaces.contains(Namespace::net);
    if (c.attacher->host_network() == own_net) {
      return invalid("network", own_net ? "the host's network needs no network namespace"
                                        : "this network needs a network namespace of its own");
    }
    for (const auto& j : c.joined) {
      if (j.type == Namespace::net) {
        return invalid(j.path, "a joined network namespace cannot be given a network too");
      }
    }
    HUTCH_TRY(std::unique_ptr<Attachment> attachment, c.attacher->prepare(c.hostname));
    Spec spec = c;
    if (spec.rootfs) {
      for (const auto& file : attachment->files()) spec.rootfs->bind(file.host, file.inside);
    }
    return Attached{std::move(spec), std::move(attachment)};
  }

  result<Child> run() {
    HUTCH_TRYV(prepare(c_, s_, create_));
    s_.plan.await_network = attachment_ != nullptr;
    take_network_made_ahead();
    HUTCH_TRYV(cgroup_before_clone());
    if (!stack_.allocate()) return last_error(Step::allocate_stack);
    HUTCH_TRYV(clone_child());
    if (auto walked = handshake(); !walked) return abandon(walked.error());
    if (create_) {
      if (auto ready = await_child(s_.sync_host.get(), SyncPoint::ready); !ready) {
        return abandon(ready.error());
      }
    } else {
      auto exec = await_exec(s_, static_cast<pid_t>(pid_));
      non_dumpable_.reset();
      if (!exec) return abandon(exec.error());
      if (c_.oom_score_adj) {
        if (auto adjusted = write_oom_score_adj(static_cast<pid_t>(pid_), *c_.oom_score_adj);
            !adjusted) {
          return abandon(adjusted.error());
        }
      }
    }
    return assemble();
  }

  /// v2: the cgroup is created now, so that clone3 starts the child inside it. v1 cannot
  /// place a child at clone: the cgroup is made and joined while the child sets up
  /// (Plan::late_cgroup).
  result<void> cgroup_before_clone() {
    if (!c_.cgroup) return success();
    HUTCH_TRY(const CGroupLayout layout, LiveCGroup::check(*c_.cgroup));
    reclaim_cgroups_later();
    if (layout == CGroupLayout::unified) {
      HUTCH_TRY(LiveCGroup created, LiveCGroup::create(*c_.cgroup));
      cgroup_.emplace(std::move(created));
      cgroup_fd_ = cgroup_->open_for_clone();
    } else {
      s_.plan.late_cgroup = true;
    }
    return success();
  }

  /// Container::network_made_ahead: a network namespace from the reserve, its loopback
  /// already up. Without one (not root), the child makes its own at clone, as without it.
  void take_network_made_ahead() {
    // The plan brings loopback up exactly when the container makes a network namespace.
    if (!c_.network_made_ahead || !s_.plan.loopback_up) return;
    network_made_ahead_ = NetReserve::get().take();
    if (!network_made_ahead_) return;
    s_.plan.loopback_up = false;
    s_.plan.sysfs_fd = network_made_ahead_.sysfs.get();
  }

  /// The CLONE_NEW* flags of the namespaces to make: those asked for, but the joined ones
  /// and a network namespace made ahead.
  std::uint64_t new_namespaces() const {
    Namespaces made = c_.namespaces;
    for (const auto& j : c_.joined) made = made.without(j.type);
    if (network_made_ahead_) made = made.without(Namespace::net);
    return made.clone_flags();
  }

  result<void> clone_child() {
    // So with a network namespace made ahead: the child starts in it.
    ThreadNamespace net_namespace("/proc/thread-self/ns/net", CLONE_NEWNET);
    if (network_made_ahead_ && !net_namespace.enter(network_made_ahead_.net.get())) {
      return last_error(Step::enter_network_namespace);
    }
    int pidfd = -1;
    auto start = [&] {
      BlockAllSignals blocked;
      // A pid namespace to join: our thread enters it as its children's (setns(2) changes
      // only pid_for_children) for the clone, then returns to its own.
      ThreadNamespace pid_namespace("/proc/thread-self/ns/pid_for_children", CLONE_NEWPID);
      if (s_.pid_namespace && !pid_namespace.enter(s_.pid_namespace.get())) {
        return -static_cast<long>(errno);
      }
      return start_child(child::main, &s_.plan, new_namespaces(), stack_, pidfd, cgroup_fd_.get(),
                         placed_, s_.plan.handlers_cleared, !create_);
    };
    // A created child copies our memory's dumpable flag: copy it while no spawn has it
    // cleared, or a rootless host could not write the child's id maps.
    pid_ = create_ ? DumpableWindow::when_all_closed(start) : start();
    network_made_ahead_ = {};  // the child's now: they go with it
    if (pid_ < 0) return clone_error(c_.namespaces, static_cast<int>(-pid_));
    pidfd_.reset(pidfd);
    s_.report_write.reset();
    s_.sync_child.reset();
    return success();
  }

  /// The host's side of the sync points before exec (detail/sync.hpp).
  result<void> handshake() {
    if (c_.namespaces.contains(Namespace::user)) {
      HUTCH_TRYV(DumpableWindow::when_all_closed([&]() -> result<void> {
        HUTCH_TRYV(write_id_maps(c_.uid_map, c_.gid_map, pid_));
        return open_attach_namespaces();
      }));
    } else {
      HUTCH_TRYV(open_attach_namespaces());
    }
    if (cgroup_ && !placed_) {
      // v2 on a kernel without CLONE_INTO_CGROUP: attach before the child may go on, so its
      // command never runs outside its limits.
      HUTCH_TRYV(cgroup_->attach(static_cast<pid_t>(pid_)));
    }
    if (create_ && c_.oom_score_adj) {
      HUTCH_TRYV(write_oom_score_adj(static_cast<pid_t>(pid_), *c_.oom_score_adj));
    }
    if (!create_) non_dumpable_.emplace();  // our memory is the child's until exec
    HUTCH_TRYV(release(s_.sync_host.get(), SyncPoint::ids_mapped));
    if (s_.plan.late_cgroup) {
      HUTCH_TRY(LiveCGroup created, LiveCGroup::create(*c_.cgroup));
      cgroup_.emplace(std::move(created));
      HUTCH_TRYV(cgroup_->attach(static_cast<pid_t>(pid_)));
      HUTCH_TRYV(release(s_.sync_host.get(), SyncPoint::cgroup_joined));
    }
    if (attachment_) {
      const AttachTarget target{static_cast<pid_t>(pid_), attach_netns_.get(),
                                attach_userns_.get()};
      auto attached = attachment_->attach(target);
      attach_netns_.reset();
      attach_userns_.reset();
      HUTCH_TRYV(attached);
      HUTCH_TRYV(release(s_.sync_host.get(), SyncPoint::network_ready));
    }
    return success();
  }

  /// The child's network and user namespaces for its Attachment, opened while the child is
  /// still dumpable (it clears the flag once released from ids_mapped).
  result<void> open_attach_namespaces() {
    if (!attachment_) return success();
    const std::string net = fmt::format("/proc/{}/ns/net", pid_);
    attach_netns_.reset(::open(net.c_str(), O_RDONLY | O_CLOEXEC));
    if (!attach_netns_) return last_error(Step::release_child, net);
    if (c_.namespaces.contains(Namespace::user)) {
      const std::string user = fmt::format("/proc/{}/ns/user", pid_);
      attach_userns_.reset(::open(user.c_str(), O_RDONLY | O_CLOEXEC));
      if (!attach_userns_) return last_error(Step::release_child, user);
    }
    return success();
  }

  /// Kills and reaps the child. If it had already failed on its own, its report names the
  /// real cause (a host step may fail only because the child is gone).
  Error abandon(Error e) {
    kill_and_reap(pidfd_.get());
    s_.sync_host.reset();
    non_dumpable_.reset();
    return reported_or(s_, std::move(e));
  }

  Child assemble() {
    s_.scratch.started();
    if (!c_.die_with_parent) s_.scratch.mark_live(pid_);
    Teardown teardown;
    std::string scratch_dir = s_.scratch.path();
    if (!s_.scratch.path().empty()) {
      auto scratch = std::make_shared<ScratchDir>(std::move(s_.scratch));
      teardown = [scratch] { (void)scratch->remove(); };
    }
    Child child(static_cast<pid_t>(pid_), std::move(pidfd_), std::move(s_.host_stdio[0]),
                std::move(s_.host_stdio[1]), std::move(s_.host_stdio[2]), std::move(cgroup_),
                std::move(teardown), c_.namespaces.contains(Namespace::mount));
    child.pty() = std::move(s_.pty_master);
    child.set_scratch_dir(std::move(scratch_dir));
    if (attachment_) child.set_attachment(std::move(attachment_), pid_);
    return child;
  }

  const Spec& c_;
  LaunchState& s_;
  const bool create_;
  std::optional<LiveCGroup> cgroup_;
  Fd cgroup_fd_;
  Stack stack_;
  Fd pidfd_;
  long pid_ = -1;
  bool placed_ = false;
  std::optional<DumpableWindow> non_dumpable_;
  std::unique_ptr<Attachment> attachment_;
  Fd attach_netns_, attach_userns_;
  MadeAheadNetwork network_made_ahead_;
};

}  // namespace hutch::detail
