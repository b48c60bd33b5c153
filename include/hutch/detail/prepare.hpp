// hutch — planning a launch on the host: the environment, the exec candidates, stdio and the
// terminal, the mounts, and the Plan that points into them. Everything the child will read is
// made here, before clone.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "cgroup_layout.hpp"
#include "clone.hpp"
#include "init.hpp"
#include "janitor.hpp"
#include "launch_state.hpp"
#include "mount_plan.hpp"
#include "private_dir.hpp"
#include "scratch.hpp"
#include "spec.hpp"

extern char** environ;

namespace hutch::detail {

/// The highest capability number this kernel knows, read once.
inline int cap_last() {
  static const int last = [] {
    std::ifstream in("/proc/sys/kernel/cap_last_cap");
    int n = 40;
    in >> n;
    return n;
  }();
  return last;
}

/// The environment: the base (defaults, empty or the host's), then the changes in order.
inline std::vector<std::string> build_env(const ProcessSpec& c,
                                          const std::optional<std::string>& hostname = {}) {
  std::vector<std::string> env;
  switch (c.env_base) {
    case EnvBase::defaults:
      env.push_back(fmt::format("PATH={}", default_path));
      if (hostname) env.push_back("HOSTNAME=" + *hostname);
      break;
    case EnvBase::host:
      for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
      break;
    case EnvBase::empty:
      break;
  }
  for (const auto& change : c.env_changes) {
    const std::string& key = change.first;
    const std::optional<std::string>& value = change.second;
    auto same = [&](const std::string& entry) {
      return entry.size() > key.size() && entry[key.size()] == '=' &&
             entry.compare(0, key.size(), key) == 0;
    };
    auto it = std::find_if(env.begin(), env.end(), same);
    if (!value) {
      env.erase(std::remove_if(env.begin(), env.end(), same), env.end());
    } else if (it != env.end()) {
      *it = key + "=" + *value;
    } else {
      env.push_back(key + "=" + *value);
    }
  }
  return env;
}

/// argv, and the paths execve tries: the name itself if it has a '/', else each directory of
/// the container's own PATH, as execvpe(3) would search inside it.
inline void build_exec(const ProcessSpec& c, LaunchState& s) {
  for (const auto& a : s.strings_argv) s.argv.push_back(a.c_str());
  s.argv.push_back(nullptr);
  const std::string& name = c.argv[0];
  if (name.find('/') != std::string::npos) {
    s.strings_exec.push_back(name);
  } else {
    std::string_view path = default_path;
    for (const auto& e : s.strings_env) {
      if (e.rfind("PATH=", 0) == 0) path = std::string_view(e).substr(5);
    }
    s.searched_path = true;
    s.search_path = std::string(path);
    while (true) {
      auto colon = path.find(':');
      std::string_view dir = path.substr(0, colon);
      s.strings_exec.push_back(fmt::format("{}/{}", dir.empty() ? "." : dir, name));
      if (colon == std::string_view::npos) break;
      path.remove_prefix(colon + 1);
    }
  }
  for (auto& p : s.strings_exec) s.exec_paths.push_back(p.c_str());
}

inline result<void> open_pty(const ProcessSpec& c, LaunchState& s) {
  Fd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return last_error(Step::open_pty, "/dev/ptmx");
  if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) {
    return last_error(Step::open_pty, "/dev/ptmx");
  }
  if (c.tty_size && ::ioctl(master.get(), TIOCSWINSZ, &*c.tty_size) != 0) {
    return last_error(Step::open_pty, "/dev/ptmx", "setting the window size");
  }
  char name[64];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) {
    return last_error(Step::open_pty, "ptsname");
  }
  Fd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return last_error(Step::open_pty, name);
  for (int i = 0; i < 3; ++i) s.fd_moves.push_back({slave.get(), i});
  s.child_stdio[0] = std::move(slave);
  s.pty_master = std::move(master);
  s.plan.tty = true;
  return success();
}

/// One stream: the container's end in child_stdio[i], the host's (pipes) in host_stdio[i].
inline result<void> open_stream(const Stdio& io, int i, LaunchState& s) {
  switch (io.kind()) {
    case Stdio::Kind::inherit:
      return success();
    case Stdio::Kind::fd:
      s.fd_moves.push_back({io.borrowed_fd(), i});
      return success();
    case Stdio::Kind::null:
      s.child_stdio[i].reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!s.child_stdio[i]) return last_error(Step::open_stdio, "/dev/null");
      break;
    case Stdio::Kind::file:
    case Stdio::Kind::append: {
      const int flags =
          i == 0 ? O_RDONLY
                 : O_WRONLY | O_CREAT | (io.kind() == Stdio::Kind::append ? O_APPEND : O_TRUNC);
      s.child_stdio[i].reset(::open(io.path().c_str(), flags | O_CLOEXEC | O_NOCTTY, 0644));
      if (!s.child_stdio[i]) return last_error(Step::open_stdio, io.path());
      break;
    }
    case Stdio::Kind::piped: {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) < 0) return last_error(Step::create_pipe);
      Fd read_end(fds[0]), write_end(fds[1]);
      s.child_stdio[i] = i == 0 ? std::move(read_end) : std::move(write_end);
      s.host_stdio[i] = i == 0 ? std::move(write_end) : std::move(read_end);
      break;
    }
  }
  s.fd_moves.push_back({s.child_stdio[i].get(), i});
  return success();
}

inline result<void> open_stdio(const ProcessSpec& c, LaunchState& s) {
  if (c.tty) return open_pty(c, s);
  for (int i = 0; i < 3; ++i) HUTCH_TRYV(open_stream(c.stdio[i], i, s));
  return success();
}

/// The host id that container id 0 maps to (the caller's own without a map).
inline std::uint32_t outside_root(const std::vector<IdMap>& map, std::uint32_t own) {
  for (const IdMap& m : map) {
    if (m.inside == 0) return m.outside;
  }
  return own;
}

/// An overlay in a directory the user named lives on a host filesystem: create its upper,
/// work and mount directories here, owned by the container's root, so that a user
/// namespace whose root is not the caller can still write to them.
inline result<void> prepare_scratch(const Spec& c, const std::string& scratch) {
  const bool userns = c.namespaces.contains(Namespace::user);
  const uid_t uid = userns ? outside_root(c.uid_map, ::geteuid()) : ::geteuid();
  const gid_t gid = userns ? outside_root(c.gid_map, ::getegid()) : ::getegid();
  for (const char* name : {"", "/upper", "/work", "/root"}) {
    const std::string dir = scratch + name;
    if (*name && ::mkdir(dir.c_str(), 0755) != 0) return last_error(Step::prepare_rootfs, dir);
    if ((uid != ::geteuid() || gid != ::getegid()) && ::chown(dir.c_str(), uid, gid) != 0) {
      return last_error(Step::prepare_rootfs, dir,
                        "giving the scratch directory to the container's root");
    }
  }
  return success();
}

/// The host's cgroup layout for the container's /sys/fs/cgroup, or nullptr if there is none.
inline const Layout* layout_to_show() {
  const auto& layout = host_layout();
  return layout ? &*layout : nullptr;
}

/// The filesystem steps: a root filesystem's, or (with only a mount namespace) a fresh /proc
/// over the host's when there is a pid namespace.
inline result<void> build_mounts(const Spec& c, LaunchState& s) {
  if (c.rootfs) {
    const RootFsSpec& fs = c.rootfs->spec();
    if (fs.overlay) {
      const bool own = fs.scratch_parent.empty();
      // A parent of the caller's choice must be its own: another user who could write in it
      // could swap the container's scratch directory during setup.
      if (!own) {
        HUTCH_TRYV(
            private_directory(fs.scratch_parent, Step::prepare_rootfs, {.others_may_read = true}));
      }
      const std::string parent = own ? default_scratch_parent() : fs.scratch_parent;
      reclaim_later(parent);
      HUTCH_TRY(s.scratch, ScratchDir::create(parent, !own && fs.keep_scratch));
      HUTCH_TRYV(RootFsPlanner::check_overlay_path(s.scratch.path()));
      if (!own) HUTCH_TRYV(prepare_scratch(c, s.scratch.path()));
    }
    RootFsPlanner planner{fs, layout_to_show(), c.namespaces, s.mount_strings, s.mounts};
    HUTCH_TRY(s.plan.new_root, planner.plan(s.scratch.path()));
    return success();
  }
  if (!c.namespaces.contains(Namespace::mount)) return success();
  s.mounts.push_back({.kind = MountStep::Kind::make_private});
  if (c.namespaces.contains(Namespace::pid)) {
    // A new pid namespace with the host's filesystem: a fresh /proc over the host's (in our
    // own mount namespace), so `ps` and /proc show only the container.
    s.mounts.push_back({.kind = MountStep::Kind::mount,
                        .source = "proc",
                        .target = "/proc",
                        .fstype = "proc",
                        .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
  }
  s.mounts.push_back({.kind = MountStep::Kind::enter_cgroup});
  return success();
}

/// What the process may do, and as whom: the plan's identity and privileges.
inline void plan_identity(const ProcessSpec& c, LaunchState& s) {
  Plan& plan = s.plan;
  if (c.cwd) {
    s.cwd = *c.cwd;
    plan.cwd = s.cwd.c_str();
  }
  plan.die_with_parent = c.die_with_parent;
  if (c.user) {
    plan.set_ids = true;
    plan.uid = c.user->uid;
    plan.gid = c.user->gid;
    s.groups = c.user->groups;
    plan.set_groups = !s.groups.empty() || ::geteuid() == 0;
    plan.groups = s.groups.data();
    plan.group_count = s.groups.size();
  }
  plan.no_new_privs = c.no_new_privs;
  plan.new_session = c.new_session;
  plan.umask = c.umask;
  plan.seccomp = c.seccomp.data();
  plan.seccomp_length = c.seccomp.size();
  plan.test_pause_fd = test_pause_fd;
  const CapabilitySets& caps = c.capabilities;
  plan.set_capabilities =
      caps != CapabilitySets{Capabilities::all(), Capabilities::all(), Capabilities::all(),
                             Capabilities::none(), Capabilities::none()};
  plan.bounding = caps.bounding.bits();
  plan.effective = caps.effective.bits();
  plan.permitted = caps.permitted.bits();
  plan.inheritable = caps.inheritable.bits();
  plan.ambient = caps.ambient.bits();
  plan.cap_last = cap_last();
  for (const Rlimit& r : c.rlimits) s.rlimits.push_back({r.resource, r.soft, r.hard});
  plan.rlimits = s.rlimits.data();
  plan.rlimit_count = s.rlimits.size();
  if (c.oom_score_adj) {
    s.oom_score_adj = std::to_string(*c.oom_score_adj);
    plan.oom_score_adj = s.oom_score_adj.c_str();
    plan.oom_score_adj_length = s.oom_score_adj.size();
  }
}

/// The kernel parameters, as paths under the container's own /proc/sys.
inline void plan_sysctls(const Spec& c, LaunchState& s) {
  s.sysctl_strings.reserve(c.sysctls.size() * 2);
  for (const auto& [key, value] : c.sysctls) {
    std::string path = "/proc/sys/" + key;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    s.sysctl_strings.push_back(std::move(path));
    s.sysctl_strings.push_back(value);
  }
  for (std::size_t i = 0; i < c.sysctls.size(); ++i) {
    const std::string& value = s.sysctl_strings[2 * i + 1];
    s.sysctls.push_back({s.sysctl_strings[2 * i].c_str(), value.c_str(), value.size()});
  }
  s.plan.sysctls = s.sysctls.data();
  s.plan.sysctl_count = s.sysctls.size();
}

/// Namespaces to join: opened now; the pid one is entered by our thread around clone.
inline result<void> open_joined_namespaces(const Spec& c, LaunchState& s) {
  for (const auto& j : c.joined) {
    Fd fd(::open(j.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return last_error(Step::join, j.path, "a namespace to join");
    const int type = static_cast<int>(Namespaces::of({j.type}).clone_flags() |
                                      (j.type == Namespace::cgroup ? CLONE_NEWCGROUP : 0) |
                                      (j.type == Namespace::time ? CLONE_NEWTIME : 0));
    if (j.type == Namespace::pid) {
      s.pid_namespace = std::move(fd);
      continue;
    }
    s.joins.push_back({fd.get(), type});
    s.join_fds.push_back(std::move(fd));
    s.join_paths.push_back(j.path);
  }
  s.plan.joins = s.joins.data();
  s.plan.join_count = s.joins.size();
  return success();
}

/// The container's own namespaces' settings: hostname, loopback, cgroup and time.
inline void plan_namespaces(const Spec& c, LaunchState& s) {
  Plan& plan = s.plan;
  if (c.domainname) {
    s.domainname = *c.domainname;
    plan.domainname = s.domainname.c_str();
    plan.domainname_length = s.domainname.size();
  }
  plan_sysctls(c, s);
  if (c.hostname) {
    s.hostname = *c.hostname;
    plan.hostname = s.hostname.c_str();
    plan.hostname_length = s.hostname.size();
  }
  const Namespaces ns = c.namespaces;
  auto joined = [&](Namespace n) {
    return std::any_of(c.joined.begin(), c.joined.end(),
                       [&](const auto& j) { return j.type == n; });
  };
  plan.loopback_up = ns.contains(Namespace::net) && !joined(Namespace::net);
  plan.unshare_cgroup = ns.contains(Namespace::cgroup) && !joined(Namespace::cgroup);
  if (ns.contains(Namespace::time) && !joined(Namespace::time)) {
    // A child that shares our memory cannot enter a new time namespace at clone (the kernel
    // keeps it with the mm); it unshares one, writes the offsets before anyone is inside, and
    // enters it at exec (newer kernels: seen on 6.18, not on 6.1; the launcher checks).
    plan.unshare_time = true;
    if (c.time_offsets) {
      const TimeOffsets& t = *c.time_offsets;
      s.timens_offsets =
          fmt::format("monotonic {} {}\nboottime {} {}\n", t.monotonic_seconds,
                      t.monotonic_nanoseconds, t.boottime_seconds, t.boottime_nanoseconds);
      plan.timens_offsets = s.timens_offsets.c_str();
      plan.timens_offsets_length = s.timens_offsets.size();
    }
  }
}

/// The report pipe and the sync socket (a socket, not a pipe: the host's send() uses
/// MSG_NOSIGNAL, so a child that died early cannot raise SIGPIPE in the host).
inline result<void> open_channels(LaunchState& s) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return last_error(Step::create_pipe);
  s.report_read.reset(fds[0]);
  s.report_write.reset(fds[1]);
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
    return last_error(Step::create_pipe);
  }
  s.sync_host.reset(fds[0]);
  s.sync_child.reset(fds[1]);
  s.plan.error_fd = s.report_write.get();
  s.plan.sync_fd = s.sync_child.get();
  s.plan.host_sync_fd = s.sync_host.get();
  return success();
}

/// A process's part of the plan: its command, environment, stdio and identity.
inline result<void> prepare_process(const ProcessSpec& c,
                                    const std::optional<std::string>& hostname, LaunchState& s) {
  s.strings_argv = c.argv;
  s.strings_env = build_env(c, hostname);
  for (auto& e : s.strings_env) s.envp.push_back(e.c_str());
  s.envp.push_back(nullptr);
  build_exec(c, s);
  HUTCH_TRYV(open_stdio(c, s));
  for (const auto& p : c.passed_fds) s.fd_moves.push_back({p.host, p.inside});
  Plan& plan = s.plan;
  plan.argv = s.argv.data();
  plan.envp = s.envp.data();
  plan.exec_paths = s.exec_paths.data();
  plan.exec_path_count = s.exec_paths.size();
  plan_identity(c, s);
  plan.fd_moves = s.fd_moves.data();
  plan.fd_move_count = s.fd_moves.size();
  for (const auto& m : s.fd_moves) plan.max_target = std::max(plan.max_target, m.target);
  return success();
}

/// The FIFO a created container waits on for its start: made (0600) if missing, and opened
/// as O_PATH for the child, which opens it for writing from inside (blocking until a reader).
inline result<void> open_start_fifo(const std::string& path, LaunchState& s) {
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) {
    return last_error(Step::prepare_rootfs, path, "making the start FIFO");
  }
  s.start_fifo.reset(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!s.start_fifo || ::fstat(s.start_fifo.get(), &st) != 0) {
    return last_error(Step::prepare_rootfs, path, "the start FIFO");
  }
  if (!S_ISFIFO(st.st_mode)) {
    return make_error(Step::prepare_rootfs, EINVAL, path, "the start FIFO is not a FIFO");
  }
  s.plan.start_fifo_fd = s.start_fifo.get();
  return success();
}

/// An init as PID 1: its memfd and its argv (report descriptor, the exec step's number, the
/// command's candidate paths, then the command's argv).
inline result<void> prepare_init(const std::string& path, LaunchState& s) {
  if (path.empty()) {
    return make_error(Step::validate, ENOENT, "init",
                      "no init binary: install hutch-init, set HUTCH_INIT or give its path");
  }
  HUTCH_TRY(s.plan.init_fd, init_memfd(path));
  s.init_path = path;
  s.init_strings = {"hutch-init", std::string(15, ' '),
                    std::to_string(static_cast<int>(Step::exec)),
                    std::to_string(s.strings_exec.size())};
  s.init_strings.insert(s.init_strings.end(), s.strings_exec.begin(), s.strings_exec.end());
  s.init_strings.push_back("--");
  s.init_strings.insert(s.init_strings.end(), s.strings_argv.begin(), s.strings_argv.end());
  for (const auto& a : s.init_strings) s.init_argv.push_back(a.c_str());
  s.init_argv.push_back(nullptr);
  s.plan.init_argv = s.init_argv.data();
  s.plan.init_report_arg = s.init_strings[1].data();
  return success();
}

/// Everything before clone: the description checked elsewhere, turned into a plan.
inline result<void> prepare(const Spec& c, LaunchState& s, bool create) {
  HUTCH_TRYV(prepare_process(c, c.hostname, s));
  if (c.init) HUTCH_TRYV(prepare_init(*c.init, s));
  HUTCH_TRYV(build_mounts(c, s));
  s.plan.mounts = s.mounts.data();
  s.plan.mount_count = s.mounts.size();
  plan_namespaces(c, s);
  HUTCH_TRYV(open_joined_namespaces(c, s));
  s.plan.exec_fd = c.exec_fd;
  s.plan.wait_for_start = create;
  s.plan.own_memory = create;
  if (c.start_fifo) HUTCH_TRYV(open_start_fifo(*c.start_fifo, s));
  return open_channels(s);
}

}  // namespace hutch::detail
