// hutch — exec into a running container: a process that joins the container's namespaces and
// cgroup (as `docker exec`, `runc exec` do), set up as a spawned process is, minus the mounts.
//
//   host                           intermediate (our memory)        process (our memory)
//   ----                           -------------------------        --------------------
//   plan, pipes, two stacks
//   clone3 -----------------------> setns(pidfd, namespaces)
//                                   clone3(CLONE_PARENT [| INTO_CGROUP]) -> starts, waits
//   waits for it to exit  <-------- writes the pid, exits           await(ids_mapped)
//   pidfd_open(pid) (our child)
//   (v1) writes it into the cgroups
//   release(ids_mapped) ---------------------------------------->   fds, session, ids, caps,
//                                                                   cwd, seccomp, execve
//   reads the report pipe: EOF = exec'd
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../child.hpp"
#include "../error.hpp"
#include "../process.hpp"
#include "cgroup_layout.hpp"
#include "child/join.hpp"
#include "child_report.hpp"
#include "clone.hpp"
#include "id_maps.hpp"
#include "launch_state.hpp"
#include "launcher.hpp"
#include "prepare.hpp"
#include "sync.hpp"
#include "syscall.hpp"
#include "validate.hpp"

namespace hutch::detail {

/// The CLONE_NEW* flags of the namespaces `pid` has that this process does not share.
inline result<std::uint64_t> namespaces_to_join(pid_t pid) {
  struct Kind {
    const char* name;
    std::uint64_t flag;
  };
  static constexpr Kind kinds[] = {{"user", CLONE_NEWUSER},     {"mnt", CLONE_NEWNS},
                                   {"pid", CLONE_NEWPID},       {"uts", CLONE_NEWUTS},
                                   {"ipc", CLONE_NEWIPC},       {"net", CLONE_NEWNET},
                                   {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
  std::uint64_t flags = 0;
  for (const Kind& k : kinds) {
    struct stat theirs {
    }, ours{};
    const std::string path = fmt::format("/proc/{}/ns/{}", pid, k.name);
    if (::stat(path.c_str(), &theirs) != 0) {
      if (errno == ENOENT && std::string_view(k.name) == "time") continue;  // before 5.6
      return last_error(Step::join, path);
    }
    const std::string self = fmt::format("/proc/self/ns/{}", k.name);
    if (::stat(self.c_str(), &ours) != 0) return last_error(Step::join, self);
    if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev) flags |= k.flag;
  }
  if (flags & CLONE_NEWTIME) {
    return make_error(Step::join, ENOTSUP, std::to_string(pid),
                      "the container has a time namespace of its own: a process that shares the "
                      "host's memory until exec cannot enter one");
  }
  return flags;
}

/// The cgroup a process is in: on v2 a directory descriptor for clone3 to start the new
/// process in it, on v1 the cgroup.procs file of each hierarchy to write it into.
struct TargetCGroup {
  Fd v2;
  std::vector<std::string> v1_procs;
};

inline result<TargetCGroup> cgroup_of(pid_t pid) {
  TargetCGroup out;
  const auto& layout = host_layout();
  if (!layout) return out;  // no cgroupfs: there is nothing to join
  const std::string text = read_text(fmt::format("/proc/{}/cgroup", pid));
  const std::string own = read_text("/proc/self/cgroup");
  split(text, '\n', [&](std::string_view line) {
    // Where it is where we are, the new process is already there (it starts in ours).
    bool same = false;
    split(own, '\n', [&](std::string_view mine) { same |= !line.empty() && mine == line; });
    if (same) return;
    const auto first = line.find(':');
    const auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) return;
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string path(line.substr(second + 1));
    for (const auto& h : layout->hierarchies) {
      bool listed = false;
      split(controllers, ',',
            [&](std::string_view c) { listed |= !h.controllers.empty() && c == h.controllers[0]; });
      const std::string dir = path == "/" ? h.mount : h.mount + path;
      if (h.v2 && controllers.empty()) {
        out.v2.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      } else if (!h.v2 && listed) {
        out.v1_procs.push_back(dir + "/cgroup.procs");
      }
    }
  });
  return out;
}

/// One exec into the process `pid` (pidfd `target`): see the sequence above.
class Joiner {
 public:
  static result<Child> exec(pid_t pid, int target, const ProcessSpec& p) {
    HUTCH_TRYV(check_command(p));
    HUTCH_TRYV(check_fds(p));
    HUTCH_TRYV(check_limits(p));
    LaunchState s;
    Joiner joiner(s);
    return joiner.run(pid, target, p);
  }

 private:
  explicit Joiner(LaunchState& s) : s_(s) {}

  result<Child> run(pid_t pid, int target, const ProcessSpec& p) {
    HUTCH_TRY(const std::uint64_t flags, namespaces_to_join(pid));
    HUTCH_TRY(TargetCGroup cgroup, cgroup_of(pid));
    HUTCH_TRYV(prepare_process(p, std::nullopt, s_));
    HUTCH_TRYV(open_channels(s_));
    if (!first_.allocate() || !second_.allocate()) return last_error(Step::allocate_stack);
    Plan& plan = s_.plan;
    plan.join_pidfd = target;
    plan.join_flags = flags;
    plan.join_cgroup_fd = cgroup.v2.get();
    plan.join_stack = second_.low();
    plan.join_result = &result_;
    non_dumpable_.emplace();  // both children share our memory until the exec
    HUTCH_TRY(const pid_t joined, start_joined());
    pid_ = joined;
    auto abandon = [&](Error e) -> Error {
      kill_and_reap(pidfd_.get());
      s_.sync_host.reset();
      non_dumpable_.reset();
      return reported_or(s_, std::move(e));
    };
    for (const auto& procs : cgroup.v1_procs) {
      if (!write_text(procs, std::to_string(joined))) {
        return abandon(last_error(Step::cgroup_attach, procs));
      }
    }
    if (auto released = release(s_.sync_host.get(), SyncPoint::ids_mapped); !released) {
      return abandon(released.error());
    }
    auto exec = await_exec(s_, joined);
    non_dumpable_.reset();
    if (!exec) return abandon(exec.error());
    if (p.oom_score_adj) HUTCH_TRYV(write_oom_score_adj(joined, *p.oom_score_adj));
    Child child(joined, std::move(pidfd_), std::move(s_.host_stdio[0]), std::move(s_.host_stdio[1]),
                std::move(s_.host_stdio[2]), std::nullopt, nullptr, false);
    child.pty() = std::move(s_.pty_master);
    return child;
  }

  /// Starts the intermediate, waits for it, and takes a pidfd of the process it left in the
  /// container (our child: nothing reaps it before we do, so its pid cannot be reused).
  result<pid_t> start_joined() {
    int intermediate_pidfd = -1;
    bool placed = false;
    long intermediate;
    {
      BlockAllSignals blocked;
      intermediate = start_child(child::join_main, &s_.plan, 0, first_, intermediate_pidfd, -1,
                                 placed, s_.plan.handlers_cleared, true);
    }
    if (intermediate < 0) return clone_error(Namespaces::none(), static_cast<int>(-intermediate));
    Fd intermediate_fd(intermediate_pidfd);
    s_.report_write.reset();
    s_.sync_child.reset();
    siginfo_t info{};
    if (sys::retry([&] {
          return ::waitid(static_cast<idtype_t>(P_PIDFD), intermediate_fd.get(), &info, WEXITED);
        }) != 0) {
      return last_error(Step::wait, std::to_string(intermediate));
    }
    if (info.si_code != CLD_EXITED || info.si_status != 0 || result_.pid <= 0) {
      return reported_or(s_, make_error(Step::join, ECHILD, std::to_string(intermediate),
                                        "the process that joins the container failed"));
    }
    pidfd_.reset(sys::pidfd_open(static_cast<pid_t>(result_.pid)));
    if (!pidfd_) return last_error(Step::join, std::to_string(result_.pid), "pidfd_open");
    return static_cast<pid_t>(result_.pid);
  }

  LaunchState& s_;
  Stack first_, second_;
  JoinResult result_;
  Fd pidfd_;
  pid_t pid_ = -1;
  std::optional<DumpableWindow> non_dumpable_;
};

}  // namespace hutch::detail

namespace hutch {

inline result<Child> Child::exec(const Process& process) const {
  if (!running()) {
    return make_error(Step::join, ESRCH, std::to_string(pid_), "the container is not running");
  }
  return detail::Joiner::exec(pid_, pidfd_.get(), process.spec());
}

/// Runs `process` inside the running container whose init (or any process) is `pid`, as
/// `runc exec` does for a container it did not start itself: it joins that process's
/// namespaces and cgroup. Returns the new process's Child.
inline result<Child> exec_in(pid_t pid, const Process& process) {
  Fd target(detail::sys::pidfd_open(pid));
  if (!target) return last_error(Step::join, std::to_string(pid), "pidfd_open");
  return detail::Joiner::exec(pid, target.get(), process.spec());
}

}  // namespace hutch
