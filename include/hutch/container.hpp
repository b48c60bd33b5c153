// hutch — Container: the description of a container, and spawn().
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "child.hpp"
#include "detail/child_setup.hpp"
#include "detail/clone.hpp"
#include "detail/plan.hpp"
#include "detail/syscall.hpp"
#include "error.hpp"
#include "fd.hpp"
#include "namespaces.hpp"
#include "rootfs.hpp"
#include "security.hpp"
#include "stdio.hpp"

extern char** environ;

namespace hutch {

namespace detail {
struct SpawnAccess;
struct SpawnState;
}  // namespace detail

class Created;

/// The PATH a container gets unless its environment sets one (Docker's default).
inline constexpr std::string_view default_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

class Image;
class ImageStore;

/// Progress while unpacking an image (hutch/image.hpp): bytes of layer `layer` (of `layers`)
/// read so far.
struct LayerProgress {
  std::size_t layer = 0, layers = 0;
  std::string digest;
  std::uint64_t done = 0, total = 0;
};
using ProgressCallback = std::function<void(const LayerProgress&)>;

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
    argv_ = std::move(argv);
    return *this;
  }
  /// Appends arguments to the command.
  Container& args(std::initializer_list<std::string_view> more) {
    for (auto a : more) argv_.emplace_back(a);
    return *this;
  }
  Container& arg(std::string a) {
    argv_.push_back(std::move(a));
    return *this;
  }

  /// Sets one environment variable.
  Container& env(std::string_view key, std::string_view value) {
    env_changes_.emplace_back(std::string(key), std::string(value));
    return *this;
  }
  /// Sets variables from "KEY=VALUE" entries.
  Container& env(std::initializer_list<std::string_view> entries) {
    for (auto e : entries) {
      auto eq = e.find('=');
      if (eq == std::string_view::npos) {
        env_changes_.emplace_back(std::string(e), std::string());
      } else {
        env(e.substr(0, eq), e.substr(eq + 1));
      }
    }
    return *this;
  }
  /// Removes one variable (from the defaults or the inherited host environment).
  Container& env_remove(std::string_view key) {
    env_changes_.emplace_back(std::string(key), std::nullopt);
    return *this;
  }
  /// Starts from an empty environment: no PATH, no HOSTNAME, only what `env()` adds.
  Container& env_clear() {
    env_base_ = EnvBase::empty;
    env_changes_.clear();
    return *this;
  }
  /// Starts from the host process's environment (like a plain subprocess). Opt-in: a host's
  /// environment often holds secrets that a container should not see.
  Container& env_inherit() {
    env_base_ = EnvBase::host;
    env_changes_.clear();
    return *this;
  }

  /// The working directory the command starts in (inside the container's filesystem).
  Container& cwd(std::string dir) {
    cwd_ = std::move(dir);
    return *this;
  }
  /// The hostname inside; needs `Namespace::uts` (it would otherwise rename the host).
  Container& hostname(std::string name) {
    hostname_ = std::move(name);
    return *this;
  }
  Container& namespaces(Namespaces set) {
    namespaces_ = set;
    return *this;
  }
  /// Id maps of the user namespace; see IdMap for the default.
  Container& uid_map(std::vector<IdMap> map) {
    uid_map_ = std::move(map);
    return *this;
  }
  Container& gid_map(std::vector<IdMap> map) {
    gid_map_ = std::move(map);
    return *this;
  }
  /// Clock offsets; needs `Namespace::time`.
  Container& time_offsets(TimeOffsets offsets) {
    time_offsets_ = offsets;
    return *this;
  }
  /// The uid, gid and supplementary groups the command runs as (ids inside the container;
  /// with a user namespace they must be mapped). Default: 0, 0, no change of groups.
  Container& user(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
    user_ = User{uid, gid, std::move(groups)};
    return *this;
  }

  Container& std_in(Stdio s) {
    stdio_[0] = std::move(s);
    return *this;
  }
  Container& std_out(Stdio s) {
    stdio_[1] = std::move(s);
    return *this;
  }
  Container& std_err(Stdio s) {
    stdio_[2] = std::move(s);
    return *this;
  }
  /// Sets all three streams.
  Container& stdio(const Stdio& s) {
    stdio_[0] = stdio_[1] = stdio_[2] = s;
    return *this;
  }
  /// Gives the container a pseudo-terminal as stdin, stdout and stderr (overriding their
  /// Stdio), in a session of its own with the terminal as its controlling tty; the host end
  /// is `Child::pty()`. Set the window size with `Child::resize()`.
  Container& tty(bool yes = true) {
    tty_ = yes;
    return *this;
  }
  /// The terminal's window size from the start (before the command runs), with tty().
  Container& tty_size(unsigned short rows, unsigned short columns) {
    tty_size_ = winsize{rows, columns, 0, 0};
    return *this;
  }
  /// Makes host descriptor `host_fd` appear as `container_fd` (>= 3) inside. The host keeps
  /// owning `host_fd`; it must stay open until spawn() returns.
  Container& pass_fd(int host_fd, int container_fd) {
    passed_fds_.push_back({host_fd, container_fd});
    return *this;
  }
  /// The container's own root filesystem. Without one, the command sees the host's files
  /// (with a fresh /proc when it has pid and mount namespaces).
  Container& rootfs(RootFs fs) {
    rootfs_ = std::move(fs);
    return *this;
  }
  /// The container's cgroup and limits (see CGroup).
  Container& cgroup(CGroup spec) {
    cgroup_ = std::move(spec);
    return *this;
  }
  /// The capabilities the command keeps: bounding, permitted and effective sets (inheritable
  /// and ambient are empty). Default: `Capabilities::defaults()`, Docker's 14.
  Container& capabilities(Capabilities set) {
    capabilities_ = set;
    return *this;
  }
  /// PR_SET_NO_NEW_PRIVS (on by default): execve can never grant privileges, not through
  /// setuid binaries nor file capabilities.
  Container& no_new_privs(bool yes) {
    no_new_privs_ = yes;
    return *this;
  }
  /// The command's file mode creation mask (umask(2)). Default 022, as runc and Docker.
  Container& umask(mode_t mask) {
    umask_ = mask;
    return *this;
  }
  /// Whether the command starts a session of its own (setsid(2)); on by default, as
  /// bubblewrap's --new-session. A terminal inherited as stdin is then not the container's
  /// controlling terminal, so the container cannot push keystrokes into the host's shell
  /// with TIOCSTI, nor get its job-control signals. `tty()` always makes a new session.
  Container& new_session(bool yes) {
    new_session_ = yes;
    return *this;
  }
  /// A seccomp filter installed as the last step before execve. Build one with
  /// `hutch::Seccomp` (hutch/seccomp.hpp, the `hutch::seccomp` CMake target), e.g.
  /// `Seccomp::defaults().compile()`. Needs no_new_privs (the default) or CAP_SYS_ADMIN.
  Container& seccomp(SeccompProgram program) {
    seccomp_ = std::move(program);
    return *this;
  }
  /// Sets a resource limit (setrlimit(2)) for the command, e.g. `rlimit(RLIMIT_NOFILE, 256)`.
  Container& rlimit(int resource, rlim_t soft, rlim_t hard) {
    rlimits_.push_back({resource, soft, hard});
    return *this;
  }
  Container& rlimit(int resource, rlim_t limit) { return rlimit(resource, limit, limit); }
  /// Whether the container is killed (SIGKILL) when the thread that spawned it ends.
  Container& die_with_parent(bool yes) {
    die_with_parent_ = yes;
    return *this;
  }

  /// A container for an OCI image, as `docker run IMAGE` sets it up: its layers (unpacked
  /// into `store` once) under a writable overlay, its Entrypoint + Cmd, Env, WorkingDir and
  /// User. Defined by hutch/image.hpp (the `hutch::image` module).
  static result<Container> from_image(const Image& image, const ImageStore& store,
                                      const ProgressCallback& progress = {});

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
    auto child = spawn();
    if (!child) return child.error();
    return child->wait();
  }

  /// Runs the container to its end with stdout and stderr captured (stdin /dev/null unless
  /// set otherwise) and returns them with the exit status.
  result<Output> output() const {
    Container c = *this;
    if (c.stdio_[0].kind() == Stdio::Kind::inherit) c.stdio_[0] = Stdio::null();
    c.stdio_[1] = Stdio::piped();
    c.stdio_[2] = Stdio::piped();
    auto child = c.spawn();
    if (!child) return child.error();
    return child->wait_with_output();
  }

  // Read access, for tools built on the library.
  const std::vector<std::string>& argv() const noexcept { return argv_; }
  Namespaces namespaces() const noexcept { return namespaces_; }
  const std::optional<std::string>& hostname() const noexcept { return hostname_; }

 private:
  enum class EnvBase { defaults, empty, host };
  struct User {
    uid_t uid;
    gid_t gid;
    std::vector<gid_t> groups;
  };
  struct PassedFd {
    int host;
    int inside;
  };

  std::vector<std::string> argv_;
  EnvBase env_base_ = EnvBase::defaults;
  std::vector<std::pair<std::string, std::optional<std::string>>> env_changes_;
  std::optional<std::string> cwd_;
  std::optional<std::string> hostname_;
  Namespaces namespaces_ = Namespaces::all();
  std::vector<IdMap> uid_map_, gid_map_;
  std::optional<TimeOffsets> time_offsets_;
  std::optional<User> user_;
  Stdio stdio_[3] = {Stdio::inherit(), Stdio::inherit(), Stdio::inherit()};
  std::vector<PassedFd> passed_fds_;
  std::optional<RootFs> rootfs_;
  std::optional<CGroup> cgroup_;
  bool die_with_parent_ = true;
  bool tty_ = false;
  std::optional<winsize> tty_size_;
  Capabilities capabilities_ = Capabilities::defaults();
  bool no_new_privs_ = true;
  bool new_session_ = true;
  mode_t umask_ = 022;
  SeccompProgram seccomp_;
  std::vector<Rlimit> rlimits_;

  friend struct detail::SpawnAccess;
};

namespace detail {

inline bool valid_hostname(std::string_view name) {
  // sethostname(2) takes up to HOST_NAME_MAX (64) bytes; we also hold it to RFC 1123 labels
  // so what the container sees is a name resolvers accept.
  if (name.empty() || name.size() > 64) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || (label == 0 && c == '-') || ++label > 63) return false;
  }
  return name.back() != '-' && name.back() != '.';
}

inline bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

inline std::string format_id_map(const std::vector<IdMap>& map) {
  std::string out;
  for (const IdMap& m : map) out += fmt::format("{} {} {}\n", m.inside, m.outside, m.count);
  return out;
}

inline result<void> check_id_map(const std::vector<IdMap>& map, std::string_view which) {
  if (map.size() > 340)
    return invalid(std::string(which), "at most 340 lines (user_namespaces(7))");
  for (std::size_t i = 0; i < map.size(); ++i) {
    const IdMap& a = map[i];
    if (a.count == 0) return invalid(std::string(which), "a line maps zero ids");
    for (std::size_t j = 0; j < i; ++j) {
      const IdMap& b = map[j];
      if (a.inside < b.inside + b.count && b.inside < a.inside + a.count) {
        return invalid(std::string(which), "lines overlap inside the container");
      }
      if (a.outside < b.outside + b.count && b.outside < a.outside + a.count) {
        return invalid(std::string(which), "lines overlap on the host");
      }
    }
  }
  return success();
}

/// The dumpable flag (prctl(2)) belongs to the mm, and every child shares ours until it execs
/// (CLONE_VM): a child that makes itself non-dumpable for its setup makes the host so too. A
/// window is open from the release of a child to its exec; when the last one closes, the
/// host's own flag comes back. While any window is open the /proc files of every child belong
/// to root, so a host without privilege writes id maps only when none is open.
class DumpableWindow {
 public:
  DumpableWindow() {
    std::lock_guard lock(state().mutex);
    if (state().open++ == 0) state().saved = ::prctl(PR_GET_DUMPABLE);
  }
  ~DumpableWindow() {
    std::lock_guard lock(state().mutex);
    if (--state().open == 0) {
      if (state().saved > 0 && ::prctl(PR_GET_DUMPABLE) != state().saved) {
        ::prctl(PR_SET_DUMPABLE, state().saved);
      }
      state().closed.notify_all();
    }
  }
  DumpableWindow(const DumpableWindow&) = delete;
  DumpableWindow& operator=(const DumpableWindow&) = delete;

  template <typename F>
  static auto when_all_closed(F f) {
    if (::geteuid() == 0) return f();  // root opens any /proc file
    std::unique_lock lock(state().mutex);
    state().closed.wait(lock, [] { return state().open == 0; });
    return f();
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable closed;
    int open = 0;
    int saved = 1;
  };
  static State& state() {
    static State s;
    return s;
  }
};

/// Everything one spawn() owns: the plan, the strings and arrays it points into, the pipes
/// and the stack. It outlives the child's use of them (until exec or exit).
struct SpawnState {
  Plan plan;
  std::vector<std::string> strings_argv, strings_env, strings_exec;
  std::vector<const char*> argv, envp, exec_paths;
  std::string hostname, cwd, timens_offsets;
  std::vector<gid_t> groups;
  std::vector<RlimitStep> rlimits;
  std::deque<std::string> mount_strings;  // stable addresses for MountStep pointers
  std::vector<MountStep> mounts;
  std::vector<FdMove> fd_moves;
  Fd child_stdio[3];  // the container's ends
  Fd host_stdio[3];   // the host's ends of pipes
  Fd pty_master;      // the host's end of the container's terminal
  Fd report_read, report_write;
  Fd sync_host, sync_child;
  bool searched_path = false;
  std::string search_path;
  ScratchDir scratch;
};

struct SpawnAccess {
  /// The highest capability number this kernel knows, read once.
  static int cap_last() {
    static const int last = [] {
      std::ifstream in("/proc/sys/kernel/cap_last_cap");
      int n = 40;
      in >> n;
      return n;
    }();
    return last;
  }

  static result<void> validate(const Container& c) {
    if (c.argv_.empty() || c.argv_[0].empty()) return invalid("command", "the command is empty");
    for (const auto& a : c.argv_) {
      if (has_nul(a)) return invalid(a, "an argument contains a NUL byte");
    }
    for (const auto& [key, value] : c.env_changes_) {
      if (key.empty() || key.find('=') != std::string::npos || has_nul(key)) {
        return invalid(key, "environment variable names may not be empty or contain '='");
      }
      if (value && has_nul(*value)) return invalid(key, "the value contains a NUL byte");
    }
    if (c.hostname_) {
      if (!c.namespaces_.contains(Namespace::uts)) {
        return invalid(*c.hostname_, "setting a hostname needs Namespace::uts");
      }
      if (!valid_hostname(*c.hostname_)) {
        return invalid(*c.hostname_,
                       "a hostname is 1-64 characters of letters, digits, '-' and '.'");
      }
    }
    if (c.cwd_ && (c.cwd_->empty() || has_nul(*c.cwd_))) {
      return invalid(c.cwd_.value_or(""), "the working directory is empty or has a NUL byte");
    }
    if ((!c.uid_map_.empty() || !c.gid_map_.empty()) && !c.namespaces_.contains(Namespace::user)) {
      return invalid("uid_map", "id maps need Namespace::user");
    }
    BOOST_OUTCOME_TRYV(check_id_map(c.uid_map_, "uid_map"));
    BOOST_OUTCOME_TRYV(check_id_map(c.gid_map_, "gid_map"));
    if (c.time_offsets_ && !c.namespaces_.contains(Namespace::time)) {
      return invalid("time_offsets", "clock offsets need Namespace::time");
    }
    for (std::size_t i = 0; i < c.passed_fds_.size(); ++i) {
      const auto& p = c.passed_fds_[i];
      if (p.inside < 3) {
        return invalid(std::to_string(p.inside), "pass_fd targets 3 and up; use std_in/out/err");
      }
      if (p.inside > 1023) return invalid(std::to_string(p.inside), "pass_fd targets below 1024");
      if (::fcntl(p.host, F_GETFD) < 0) {
        return make_error(Step::validate, EBADF, std::to_string(p.host), "pass_fd source");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (c.passed_fds_[j].inside == p.inside) {
          return invalid(std::to_string(p.inside), "two fds passed to the same number");
        }
      }
    }
    if (c.passed_fds_.size() > 60) return invalid("pass_fd", "at most 60 passed descriptors");
    BOOST_OUTCOME_TRYV(check_user(c));
    if (c.umask_ > 0777) return invalid(fmt::format("{:o}", c.umask_), "a umask is at most 0777");
    if (c.seccomp_.size() > BPF_MAXINSNS) {
      return invalid(std::to_string(c.seccomp_.size()),
                     "a seccomp program has at most 4096 instructions");
    }
    for (const Rlimit& r : c.rlimits_) {
      if (r.resource < 0 || r.resource >= RLIM_NLIMITS) {
        return invalid(std::to_string(r.resource), "not an RLIMIT_* resource");
      }
      if (r.soft > r.hard) {
        return invalid(fmt::format("{} {}", r.soft, r.hard), "the soft limit exceeds the hard");
      }
    }
    for (const auto& s : c.stdio_) {
      if (s.kind() == Stdio::Kind::fd && ::fcntl(s.borrowed_fd(), F_GETFD) < 0) {
        return make_error(Step::validate, EBADF, std::to_string(s.borrowed_fd()),
                          "Stdio::fd source");
      }
    }
    return success();
  }

  /// With a user namespace, the command's uid, gid and groups must be mapped in it; say so
  /// here rather than let setresuid fail with a bare EINVAL inside.
  static result<void> check_user(const Container& c) {
    if (!c.user_ || !c.namespaces_.contains(Namespace::user)) return success();
    auto mapped = [](const std::vector<IdMap>& map, std::uint32_t id) {
      if (map.empty()) return id == 0;  // the default maps container root alone
      return std::any_of(map.begin(), map.end(),
                         [&](const IdMap& m) { return id >= m.inside && id - m.inside < m.count; });
    };
    auto unmapped = [](std::string_view what, std::uint32_t id, const std::vector<IdMap>& map) {
      std::string ranges = map.empty() ? "0" : "";
      for (const IdMap& m : map) {
        if (!ranges.empty()) ranges += ", ";
        ranges += m.count == 1 ? std::to_string(m.inside)
                               : fmt::format("{}-{}", m.inside, m.inside + m.count - 1);
      }
      return invalid(
          fmt::format("{} {}", what, id),
          fmt::format("not mapped in the container's user namespace (it maps {})", ranges));
    };
    if (!mapped(c.uid_map_, c.user_->uid)) return unmapped("uid", c.user_->uid, c.uid_map_);
    if (!mapped(c.gid_map_, c.user_->gid)) return unmapped("gid", c.user_->gid, c.gid_map_);
    for (gid_t g : c.user_->groups) {
      if (!mapped(c.gid_map_, g)) return unmapped("group", g, c.gid_map_);
    }
    return success();
  }

  static void build_env(const Container& c, SpawnState& s) {
    std::vector<std::string>& env = s.strings_env;
    switch (c.env_base_) {
      case Container::EnvBase::defaults:
        env.push_back(fmt::format("PATH={}", default_path));
        if (c.hostname_) env.push_back("HOSTNAME=" + *c.hostname_);
        break;
      case Container::EnvBase::host:
        for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
        break;
      case Container::EnvBase::empty:
        break;
    }
    for (const auto& [key, value] : c.env_changes_) {
      auto same = [&](const std::string& entry) {
        return entry.size() > key.size() && entry[key.size()] == '=' &&
               entry.compare(0, key.size(), key) == 0;
      };
      auto it = std::find_if(env.begin(), env.end(), same);
      if (value) {
        std::string entry = key + "=" + *value;
        if (it != env.end()) {
          *it = std::move(entry);
        } else {
          env.push_back(std::move(entry));
        }
      } else {
        env.erase(std::remove_if(env.begin(), env.end(), same), env.end());
      }
    }
    for (auto& e : env) s.envp.push_back(e.c_str());
    s.envp.push_back(nullptr);
  }

  static void build_exec(const Container& c, SpawnState& s) {
    for (const auto& a : c.argv_) s.argv.push_back(a.c_str());
    s.argv.push_back(nullptr);
    const std::string& name = c.argv_[0];
    if (name.find('/') != std::string::npos) {
      s.strings_exec.push_back(name);
    } else {
      // Search the container's own PATH, as execvpe(3) would inside it.
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

  static result<void> open_pty(const Container& c, SpawnState& s) {
    Fd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master) return last_error(Step::open_pty, "/dev/ptmx");
    if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) {
      return last_error(Step::open_pty, "/dev/ptmx");
    }
    if (c.tty_size_ && ::ioctl(master.get(), TIOCSWINSZ, &*c.tty_size_) != 0) {
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

  static result<void> open_stdio(const Container& c, SpawnState& s) {
    if (c.tty_) return open_pty(c, s);
    for (int i = 0; i < 3; ++i) {
      const Stdio& io = c.stdio_[i];
      switch (io.kind()) {
        case Stdio::Kind::inherit:
          continue;
        case Stdio::Kind::null:
          s.child_stdio[i].reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
          if (!s.child_stdio[i]) return last_error(Step::open_stdio, "/dev/null");
          break;
        case Stdio::Kind::file:
        case Stdio::Kind::append: {
          int flags =
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
        case Stdio::Kind::fd:
          s.fd_moves.push_back({io.borrowed_fd(), i});
          continue;
      }
      s.fd_moves.push_back({s.child_stdio[i].get(), i});
    }
    return success();
  }

  static result<void> build_mounts(const Container& c, SpawnState& s) {
    if (c.rootfs_) {
      const RootFs& fs = *c.rootfs_;
      if (fs.uses_overlay()) {
        const bool own = fs.scratch_parent_.empty();
        auto scratch = ScratchDir::create(own ? default_scratch_parent() : fs.scratch_parent_,
                                          !own && fs.keep_scratch_);
        if (!scratch) return scratch.error();
        s.scratch = std::move(*scratch);
        BOOST_OUTCOME_TRYV(RootFsPlanner::check_overlay_path(s.scratch.path()));
        if (!own) {
          BOOST_OUTCOME_TRYV(prepare_scratch(c, s.scratch.path()));
        }
      }
      RootFsPlanner planner{fs, c.namespaces_, s.mount_strings, s.mounts};
      auto root = planner.plan(s.scratch.path());
      if (!root) return root.error();
      s.plan.new_root = *root;
      return success();
    }
    if (!c.namespaces_.contains(Namespace::mount)) return success();
    s.mounts.push_back({.kind = MountStep::Kind::make_private});
    if (c.namespaces_.contains(Namespace::pid)) {
      // A new pid namespace with the host's filesystem: a fresh /proc over the host's
      // (in our own mount namespace), so `ps` and /proc show only the container.
      s.mounts.push_back({.kind = MountStep::Kind::mount,
                          .source = "proc",
                          .target = "/proc",
                          .fstype = "proc",
                          .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
    }
    s.mounts.push_back({.kind = MountStep::Kind::enter_cgroup});
    return success();
  }

  /// The host id that container id 0 maps to (the caller's own without a map).
  static std::uint32_t outside_root(const std::vector<IdMap>& map, std::uint32_t own) {
    for (const IdMap& m : map) {
      if (m.inside == 0) return m.outside;
    }
    return own;
  }

  /// An overlay in a directory the user named lives on a host filesystem: create its upper,
  /// work and mount directories here, owned by the container's root, so that a user
  /// namespace whose root is not the caller can still write to them.
  static result<void> prepare_scratch(const Container& c, const std::string& scratch) {
    const bool userns = c.namespaces_.contains(Namespace::user);
    const uid_t uid = userns ? outside_root(c.uid_map_, ::geteuid()) : ::geteuid();
    const gid_t gid = userns ? outside_root(c.gid_map_, ::getegid()) : ::getegid();
    for (const char* name : {"", "/upper", "/work", "/root"}) {
      const std::string dir = scratch + name;
      if (*name && ::mkdir(dir.c_str(), 0755) != 0) return last_error(Step::prepare_rootfs, dir);
      if ((uid != ::geteuid() || gid != ::getegid()) && ::chown(dir.c_str(), uid, gid) != 0) {
        return last_error(Step::prepare_rootfs, dir,
                          "giving the scratch directory to the "
                          "container's root");
      }
    }
    return success();
  }

  static Error child_error(const SpawnState& s, const ChildReport& report) {
    const Step step = static_cast<Step>(report.step);
    const int err = report.error;
    const auto index = static_cast<std::size_t>(report.index);
    switch (step) {
      case Step::exec:
        if (s.searched_path && (err == ENOENT)) {
          return make_error(step, err, s.strings_argv.empty() ? "" : s.strings_argv[0],
                            fmt::format("not found in PATH={}", s.search_path));
        }
        return make_error(step, err, index < s.strings_exec.size() ? s.strings_exec[index] : "",
                          err == EACCES ? "not executable, or a directory on the way is not "
                                          "searchable"
                                        : "");
      case Step::chdir:
        return make_error(step, err, s.cwd);
      case Step::set_hostname:
        return make_error(step, err, s.hostname);
      case Step::set_controlling_tty:
        return make_error(step, err, "fd 0");
      case Step::setup_fds:
        return make_error(step, err, fmt::format("fd {}", report.index));
      case Step::set_uid:
      case Step::set_gid:
        return make_error(step, err,
                          std::to_string(step == Step::set_uid ? s.plan.uid : s.plan.gid),
                          err == EINVAL ? "the id is not mapped in the user namespace" : "");
      case Step::set_rlimit: {
        std::string subject = index < s.rlimits.size()
                                  ? fmt::format("resource {} = {}/{}", s.rlimits[index].resource,
                                                s.rlimits[index].soft, s.rlimits[index].hard)
                                  : "";
        return make_error(step, err, subject,
                          err == EPERM ? "raising a hard limit above the host's needs "
                                         "CAP_SYS_RESOURCE on the host"
                                       : "");
      }
      case Step::install_seccomp:
        return make_error(step, err, fmt::format("{} instructions", s.plan.seccomp_length),
                          err == EACCES   ? "a seccomp filter needs no_new_privs or CAP_SYS_ADMIN"
                          : err == EINVAL ? "the kernel refused the program (not valid BPF)"
                                          : "");
      case Step::set_capabilities:
        return make_error(step, err,
                          report.index >= 0 ? fmt::format("capability {}", report.index) : "");
      case Step::set_groups:
        return make_error(step, err, "",
                          err == EPERM ? "supplementary groups need a gid_map written with "
                                         "privilege (setgroups is denied rootless)"
                                       : "");
      case Step::prepare_rootfs:
        return make_error(step, err, s.plan.new_root ? s.plan.new_root : "");
      case Step::pivot_root:
        return make_error(step, err, s.plan.new_root ? s.plan.new_root : "",
                          err == EINVAL ? "the host's root cannot be pivoted away from (an "
                                          "initramfs?): use RootFs::chroot_fallback()"
                                        : "");
      default:
        if (index < s.mounts.size()) {
          const MountStep& m = s.mounts[index];
          std::string note;
          if (m.fstype && std::string_view(m.fstype) == "overlay" &&
              (err == EPERM || err == EINVAL) && ::geteuid() != 0) {
            note = "overlayfs without root needs Linux >= 5.11";
          } else if (err == ENOSYS && (m.kind == MountStep::Kind::readonly ||
                                       (m.kind == MountStep::Kind::bind && m.flags & MS_RDONLY))) {
            note = "read-only with its submounts needs mount_setattr, Linux >= 5.12";
          } else if (m.kind == MountStep::Kind::bind && m.source) {
            note = fmt::format("bind of {}", m.source);
          } else if (m.fstype) {
            note = fmt::format("{} filesystem", m.fstype);
          }
          return make_error(step, err, m.target ? m.target : "", std::move(note));
        }
        return make_error(step, err);
    }
  }

  static result<Child> spawn(const Container& c) { return launch(c, nullptr); }
  static result<Created> create(const Container& c);

  /// spawn(), or with `keep` create(): then the child waits before exec, the Child returned
  /// is the created container and `keep` gets what start() needs.
  static result<Child> launch(const Container& c, std::unique_ptr<SpawnState>* keep) {
    BOOST_OUTCOME_TRYV(validate(c));
    const bool create = keep != nullptr;
    SpawnState s;
    s.strings_argv = c.argv_;
    build_env(c, s);
    build_exec(c, s);
    BOOST_OUTCOME_TRYV(open_stdio(c, s));
    for (const auto& p : c.passed_fds_) s.fd_moves.push_back({p.host, p.inside});
    BOOST_OUTCOME_TRYV(build_mounts(c, s));

    Plan& plan = s.plan;
    plan.argv = s.argv.data();
    plan.envp = s.envp.data();
    plan.exec_paths = s.exec_paths.data();
    plan.exec_path_count = s.exec_paths.size();
    if (c.cwd_) {
      s.cwd = *c.cwd_;
      plan.cwd = s.cwd.c_str();
    }
    if (c.hostname_) {
      s.hostname = *c.hostname_;
      plan.hostname = s.hostname.c_str();
      plan.hostname_length = s.hostname.size();
    }
    const Namespaces ns = c.namespaces_;
    plan.loopback_up = ns.contains(Namespace::net);
    plan.unshare_cgroup = ns.contains(Namespace::cgroup);
    plan.die_with_parent = c.die_with_parent_;
    if (ns.contains(Namespace::time)) {
      // A child that shares our memory cannot enter a new time namespace at clone (the
      // kernel keeps it with the mm); it unshares one, writes the offsets before anyone is
      // inside, and enters it at exec (newer kernels: seen on 6.18, not on 6.1; checked
      // after exec below).
      plan.unshare_time = true;
      if (c.time_offsets_) {
        const TimeOffsets& t = *c.time_offsets_;
        s.timens_offsets =
            fmt::format("monotonic {} {}\nboottime {} {}\n", t.monotonic_seconds,
                        t.monotonic_nanoseconds, t.boottime_seconds, t.boottime_nanoseconds);
        plan.timens_offsets = s.timens_offsets.c_str();
        plan.timens_offsets_length = s.timens_offsets.size();
      }
    }
    plan.mounts = s.mounts.data();
    plan.mount_count = s.mounts.size();
    if (c.user_) {
      plan.set_ids = true;
      plan.uid = c.user_->uid;
      plan.gid = c.user_->gid;
      s.groups = c.user_->groups;
      plan.set_groups = !s.groups.empty() || ::geteuid() == 0;
      plan.groups = s.groups.data();
      plan.group_count = s.groups.size();
    }
    plan.no_new_privs = c.no_new_privs_;
    plan.new_session = c.new_session_;
    plan.umask = c.umask_;
    plan.seccomp = c.seccomp_.data();
    plan.seccomp_length = c.seccomp_.size();
    plan.test_pause_fd = test_pause_fd;
    plan.set_capabilities = c.capabilities_ != Capabilities::all();
    plan.capabilities = c.capabilities_.bits();
    plan.cap_last = cap_last();
    for (const Rlimit& r : c.rlimits_) s.rlimits.push_back({r.resource, r.soft, r.hard});
    plan.rlimits = s.rlimits.data();
    plan.rlimit_count = s.rlimits.size();
    plan.fd_moves = s.fd_moves.data();
    plan.fd_move_count = s.fd_moves.size();
    for (const auto& m : s.fd_moves) plan.max_target = std::max(plan.max_target, m.target);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return last_error(Step::create_pipe);
    s.report_read.reset(fds[0]);
    s.report_write.reset(fds[1]);
    // A socket, not a pipe: the host's send() uses MSG_NOSIGNAL, so a child that died early
    // cannot raise SIGPIPE in the host.
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
      return last_error(Step::create_pipe);
    }
    s.sync_host.reset(fds[0]);
    s.sync_child.reset(fds[1]);
    plan.error_fd = s.report_write.get();
    plan.sync_read_fd = s.sync_child.get();
    plan.sync_write_fd = s.sync_host.get();
    plan.wait_for_start = create;

    std::optional<LiveCGroup> cgroup;
    Fd cgroup_fd;
    if (c.cgroup_) {
      HUTCH_TRY(const CGroupLayout layout, LiveCGroup::check(*c.cgroup_));
      if (layout == CGroupLayout::unified) {
        // v2: create it now, so that clone3 starts the child inside it.
        auto created = LiveCGroup::make(*c.cgroup_);
        if (!created) return created.error();
        cgroup.emplace(std::move(*created));
        cgroup_fd = cgroup->open_for_clone();
      } else {
        // v1 cannot place a child at clone: create the cgroup and move the child into it
        // while the child sets up, then let it enter (Plan::late_cgroup).
        plan.late_cgroup = true;
      }
    }

    Stack stack;
    if (!stack.allocate()) return last_error(Step::allocate_stack);

    int pidfd = -1;
    bool placed = false;
    long pid;
    auto clone_child = [&] {
      BlockAllSignals blocked;
      return start_child(child::main, &plan, ns.clone_flags(), stack, pidfd, cgroup_fd.get(),
                         placed, plan.handlers_cleared, !create);
    };
    // A created child copies our memory's dumpable flag: copy it while no spawn has it
    // cleared, or a rootless host could not write the child's id maps.
    pid = create ? DumpableWindow::when_all_closed(clone_child) : clone_child();
    if (pid < 0) return clone_error(c, static_cast<int>(-pid));
    Fd pidfd_owner(pidfd);
    s.report_write.reset();
    s.sync_child.reset();

    // Kills and reaps the child. If it had already failed on its own, its report names the
    // real cause (a host step may fail only because the child is gone).
    auto abandon = [&](Error e) -> result<Child> {
      sys::pidfd_send_signal(pidfd_owner.get(), SIGKILL);
      s.sync_host.reset();
      siginfo_t info{};
      sys::retry([&] {
        return ::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_owner.get(), &info, WEXITED);
      });
      return reported_or(s, std::move(e));
    };

    if (ns.contains(Namespace::user)) {
      auto maps = DumpableWindow::when_all_closed([&] { return write_id_maps(c, pid); });
      if (!maps) return abandon(maps.error());
    }
    if (cgroup && !placed) {
      // v2 on a kernel without CLONE_INTO_CGROUP: attach before the child may go on, so
      // its command never runs outside its limits.
      auto attached = cgroup->attach(static_cast<pid_t>(pid));
      if (!attached) return abandon(attached.error());
    }
    std::optional<DumpableWindow> non_dumpable;  // our memory is the child's until exec
    if (!create) non_dumpable.emplace();
    if (auto released = release(s); !released) return abandon(released.error());
    if (plan.late_cgroup) {
      auto created = LiveCGroup::make(*c.cgroup_);
      if (!created) return abandon(created.error());
      cgroup.emplace(std::move(*created));
      auto attached = cgroup->attach(static_cast<pid_t>(pid));
      if (!attached) return abandon(attached.error());
      if (auto released = release(s); !released) return abandon(released.error());
    }

    if (create) {
      // One byte: set up and waiting for start(). End of file: it failed (its report says
      // why) or was killed.
      char ready = 0;
      ssize_t got = sys::retry([&] { return ::recv(s.sync_host.get(), &ready, 1, 0); });
      if (got != 1) {
        return abandon(got < 0 ? last_error(Step::read_child_report)
                               : make_error(Step::read_child_report, ECHILD, "",
                                            "the container ended during its setup"));
      }
    } else {
      auto exec = await_exec(s, static_cast<pid_t>(pid));
      non_dumpable.reset();
      if (!exec) return abandon(exec.error());
    }
    Teardown teardown;
    std::string scratch_dir = s.scratch.path();
    if (!s.scratch.path().empty()) {
      auto scratch = std::make_shared<ScratchDir>(std::move(s.scratch));
      teardown = [scratch] { (void)scratch->remove(); };
    }
    Child child(static_cast<pid_t>(pid), std::move(pidfd_owner), std::move(s.host_stdio[0]),
                std::move(s.host_stdio[1]), std::move(s.host_stdio[2]), std::move(cgroup),
                std::move(teardown), ns.contains(Namespace::mount));
    child.pty() = std::move(s.pty_master);
    child.set_scratch_dir(std::move(scratch_dir));
    // The created child has its own copy of the plan: from here on the host reads only the
    // names and descriptors in `s` (for start()'s errors), which a move keeps.
    if (create) *keep = std::make_unique<SpawnState>(std::move(s));
    return child;
  }

  /// One byte on the sync socket: the waiting child may go on (past its id maps, into its
  /// cgroup, or, created, to exec).
  static result<void> release(const SpawnState& s) {
    char go = 1;
    if (sys::retry([&] { return ::send(s.sync_host.get(), &go, 1, MSG_NOSIGNAL); }) != 1) {
      return last_error(Step::release_child);
    }
    return success();
  }

  /// The child's failure report, if it wrote one (it is dead or dying), else `e`.
  static Error reported_or(const SpawnState& s, Error e) {
    ChildReport report{};
    if (s.report_read && sys::retry([&] {
                           return ::read(s.report_read.get(), &report, sizeof report);
                         }) == static_cast<ssize_t>(sizeof report)) {
      return child_error(s, report);
    }
    return e;
  }

  /// Waits for the child to exec: end of file on the close-on-exec report pipe (or its
  /// death; either way it no longer uses the stack or the plan). A report is its failure.
  static result<void> await_exec(SpawnState& s, pid_t pid) {
    ChildReport report{};
    ssize_t n = sys::retry([&] { return ::read(s.report_read.get(), &report, sizeof report); });
    if (n < 0) return last_error(Step::read_child_report);
    if (n == static_cast<ssize_t>(sizeof report)) {
      s.report_read.reset();  // consumed: reported_or() does not look again
      return child_error(s, report);
    }
    return check_time_namespace(s.plan, pid);
  }

  /// Created::start(): lets the waiting child exec. Any failure ends the container (the
  /// Child, destroyed here, kills and reaps it and removes what it had).
  static result<Child> start(std::unique_ptr<SpawnState>& state, Child& created) {
    if (!state) {
      return make_error(Step::release_child, EALREADY, "",
                        "a created container starts once (this one did, or failed to)");
    }
    const std::unique_ptr<SpawnState> owned = std::move(state);
    SpawnState& s = *owned;
    Child child = std::move(created);
    // Once it is dead, its report (if it wrote one) names the real cause.
    auto failed = [&](Error e) -> Error {
      (void)child.kill(SIGKILL);
      (void)child.wait();
      return reported_or(s, std::move(e));
    };
    if (auto released = release(s); !released) return failed(released.error());
    if (auto exec = await_exec(s, child.pid()); !exec) return failed(exec.error());
    return child;
  }

  /// After exec: a new time namespace must hold the command.
  static result<void> check_time_namespace(const Plan& plan, pid_t pid) {
    if (plan.unshare_time && !entered_time_namespace(pid)) {
      return make_error(Step::unshare_time, ENOTSUP, "",
                        "this kernel does not move a process into its new time namespace at "
                        "exec (6.1 does not, 6.18 does)");
    }
    return success();
  }

  /// Whether `pid` sits in the time namespace it made for its children (a dead process
  /// counts as yes: there is nothing left to run in the wrong one).
  static bool entered_time_namespace(pid_t pid) {
    struct stat self {
    }, children{};
    const std::string base = fmt::format("/proc/{}/ns/time", pid);
    if (::stat(base.c_str(), &self) != 0) return true;
    if (::stat((base + "_for_children").c_str(), &children) != 0) return true;
    return self.st_ino == children.st_ino;
  }

  static Error clone_error(const Container& c, int err) {
    const Namespaces ns = c.namespaces_;
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

  static result<void> write_id_maps(const Container& c, long pid) {
    const bool root = ::geteuid() == 0;
    std::vector<IdMap> uids = c.uid_map_, gids = c.gid_map_;
    if (uids.empty()) uids.push_back({0, ::geteuid(), 1});
    if (gids.empty()) gids.push_back({0, ::getegid(), 1});
    const std::string base = fmt::format("/proc/{}/", pid);
    if (!root) {
      // Without CAP_SETGID a gid_map may only be written once setgroups is denied
      // (user_namespaces(7)).
      const std::string path = base + "setgroups";
      if (!sys::write_file(path.c_str(), "deny", 4) && errno != ENOENT) {
        return last_error(Step::write_setgroups, path);
      }
    }
    const std::string uid_text = format_id_map(uids), gid_text = format_id_map(gids);
    const std::string uid_path = base + "uid_map", gid_path = base + "gid_map";
    const char* privilege_note = root ? ""
                                      : "mapping ids other than your own needs CAP_SETUID "
                                        "and CAP_SETGID";
    if (!sys::write_file(uid_path.c_str(), uid_text.data(), uid_text.size())) {
      return last_error(Step::write_uid_map, uid_text.substr(0, uid_text.size() - 1),
                        errno == EPERM ? privilege_note : "");
    }
    if (!sys::write_file(gid_path.c_str(), gid_text.data(), gid_text.size())) {
      return last_error(Step::write_gid_map, gid_text.substr(0, gid_text.size() - 1),
                        errno == EPERM ? privilege_note : "");
    }
    return success();
  }
};

}  // namespace detail

/// A container set up by `Container::create()`, its init waiting just before its command.
/// `start()` runs the command and gives the running container's Child. Destroying it
/// unstarted kills the process and removes everything it had, as destroying a Child does.
class Created {
 public:
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
  result<Child> start() { return detail::SpawnAccess::start(state_, child_); }

 private:
  friend struct detail::SpawnAccess;
  Created(std::unique_ptr<detail::SpawnState> state, Child child) noexcept
      : state_(std::move(state)), child_(std::move(child)) {}

  std::unique_ptr<detail::SpawnState> state_;  // the report pipe, the start socket, names
  Child child_;
};

namespace detail {
inline result<Created> SpawnAccess::create(const Container& c) {
  std::unique_ptr<SpawnState> state;
  auto child = launch(c, &state);
  if (!child) return child.error();
  return Created(std::move(state), std::move(*child));
}

}  // namespace detail

inline result<Child> Container::spawn() const {
  return detail::SpawnAccess::spawn(*this);
}

inline result<Created> Container::create() const {
  return detail::SpawnAccess::create(*this);
}

}  // namespace hutch
