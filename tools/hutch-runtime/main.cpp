// hutch-runtime: an OCI runtime (runtime-spec 1.0–1.2) on the hutch library, with runc's
// command line, so that engines drive it as they drive runc or crun: podman and CRI-O
// (conmon), containerd's runc shim (`BinaryName`, what Kubernetes runs), dockerd
// (`--add-runtime`).
//
//   hutch-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [FLAGS] ID ...
//
// Commands: create, start, state, kill, delete, exec, pause, resume, ps, list, update,
// features, spec-free `run` (create + start + wait). A container's state lives in
// <root>/<id>/ (state.json, the exec FIFO it waits on between create and start); its pid
// is checked against its start time, so a reused pid is never signalled.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <hutch/hutch.hpp>
#include <hutch/oci.hpp>

#include "args.hpp"
#include "console.hpp"
#include "hooks.hpp"
#include "state.hpp"

namespace hutch_runtime {
namespace {

constexpr const char* version_text = "hutch-runtime version 0.1.0\nspec: 1.2.0\n";

/// The global flags, and where errors and warnings go.
struct Global {
  std::string root;
  std::string log;
  bool json_log = false;
  bool debug = false;
  bool systemd_cgroup = false;

  void write_log(const char* level, const std::string& message) const {
    if (log.empty()) return;
    hutch::Fd fd(::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return;
    std::string line =
        json_log ? json{{"level", level}, {"msg", message}, {"time", rfc3339_now()}}.dump() + "\n"
                 : fmt::format("time=\"{}\" level={} msg=\"{}\"\n", rfc3339_now(), level, message);
    (void)!::write(fd.get(), line.data(), line.size());
  }
  void warn(const std::string& message) const {
    write_log("warning", message);
    fmt::print(stderr, "hutch-runtime: warning: {}\n", message);
  }
};

using Result = hutch::result<int>;

hutch::Error usage(std::string what) {
  return hutch::make_error(hutch::oci_step::state, EINVAL, std::move(what), "usage");
}

hutch::result<std::string> the_id(const Parsed& a) {
  if (a.positional.empty()) return usage("the container id is missing");
  HUTCH_TRYV(check_id(a.positional[0]));
  return a.positional[0];
}

/// Writes `pid` to `path` whole (a temporary renamed into place: a reader never sees half).
hutch::result<void> write_pid_file(const std::string& path, pid_t pid) {
  if (path.empty()) return hutch::success();
  const std::string temporary = path + ".hutch-new";
  hutch::Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return hutch::last_error(hutch::oci_step::state, temporary, "pid file");
  const std::string text = std::to_string(pid);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    return hutch::last_error(hutch::oci_step::state, path, "pid file");
  }
  return hutch::success();
}

std::string absolute(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.empty() ? "." : path.c_str(), resolved)) return resolved;
  return path;
}

/// A signal by number or name ("9", "KILL", "SIGKILL").
hutch::result<int> signal_number(std::string name) {
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
    const int n = std::atoi(name.c_str());
    if (n > 0 && n < NSIG) return n;
  }
  if (name.starts_with("SIG")) name = name.substr(3);
  for (int n = 1; n < NSIG; ++n) {
    const char* abbrev = ::sigabbrev_np(n);
    if (abbrev && name == abbrev) return n;
  }
  if (name.starts_with("RTMIN+")) return SIGRTMIN + std::atoi(name.c_str() + 6);
  return usage(fmt::format("{}: not a signal", name));
}

/// The pids in the container's cgroup (every hierarchy's, each once).
std::vector<pid_t> cgroup_pids(const State& s) {
  std::set<pid_t> pids;
  for (const auto& dir : s.cgroup) {
    std::istringstream procs(hutch::detail::read_text(dir + "/cgroup.procs"));
    for (pid_t pid; procs >> pid;) pids.insert(pid);
  }
  return {pids.begin(), pids.end()};
}

/// Signals the container's init by pidfd, after checking that the pid is still the one
/// started (a pid reused by another process is never signalled).
hutch::result<void> signal_init(const State& s, int signal) {
  hutch::Fd pidfd(hutch::detail::sys::pidfd_open(s.pid));
  if (!pidfd || !s.alive()) return state_error(ESRCH, s.id, "container not running");
  if (hutch::detail::sys::pidfd_send_signal(pidfd.get(), signal) < 0 && errno != ESRCH) {
    return hutch::last_error(hutch::oci_step::state, std::to_string(s.pid), "kill");
  }
  return hutch::success();
}

void wait_gone(const State& s, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (s.alive() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

hutch::result<void> run_hooks(const Global& g, const State& s, const char* point,
                              const std::string& status, bool inside, bool warn_only) {
  for (const auto& hook : hooks_of(s.hooks, point)) {
    const json state = hook_state(s, status);
    auto r = inside ? run_container_hook(hook, s.pid, state) : run_host_hook(hook, state);
    if (!r) {
      if (!warn_only) return r.error();
      g.warn(fmt::format("{} hook: {}", point, r.error().message()));
    }
  }
  return hutch::success();
}

// ---- create / start / run -------------------------------------------------------------

Result create(const Global& g, const Parsed& a, bool and_start) {
  HUTCH_TRY(const std::string id, the_id(a));
  if (g.systemd_cgroup) {
    return state_error(ENOTSUP, "--systemd-cgroup",
                       "hutch-runtime manages cgroupfs itself (set the engine's cgroup manager "
                       "to cgroupfs)");
  }
  const std::string bundle = absolute(a.value("bundle", "."));
  const std::string console_socket = a.value("console-socket");
  Store store(g.root);
  HUTCH_TRYV(store.make(id));
  struct Cleanup {
    const Store& store;
    const std::string& id;
    bool armed = true;
    ~Cleanup() {
      if (armed) store.remove(id);
    }
  } cleanup{store, id};

  HUTCH_TRY(hutch::oci::Config config, hutch::oci::load_config(bundle, id));
  if (config.terminal && console_socket.empty() && !and_start) {
    return usage("a container with a terminal needs --console-socket");
  }
  // The container waits on a FIFO that `start` opens; `run` starts it from here.
  const std::string fifo = store.fifo(id);
  hutch::Container& c = config.container;
  if (!and_start) {
    // Writable by the container's user (it opens it after taking its ids): only through the
    // descriptor the container holds, as the directory lets no one else in (runc's 0622).
    if (::mkfifo(fifo.c_str(), 0600) != 0 || ::chmod(fifo.c_str(), 0622) != 0) {
      return hutch::last_error(hutch::oci_step::state, fifo);
    }
    c.start_fifo(fifo);
  }
  const int preserve = std::atoi(a.value("preserve-fds", "0").c_str());
  for (int i = 0; i < preserve; ++i) c.pass_fd(3 + i, 3 + i);

  HUTCH_TRY(hutch::Created created, c.create());
  State s;
  s.id = id;
  s.oci_version = config.oci_version;
  s.bundle = bundle;
  s.rootfs = config.root;
  s.created = rfc3339_now();
  s.pid = created.pid();
  if (auto stat = proc_stat(s.pid)) s.start_time = stat->start_time;
  if (const hutch::LiveCGroup* cgroup = created.cgroup()) s.cgroup = cgroup->paths();
  s.annotations = config.annotations;
  s.process = config.document["process"];
  s.seccomp = config.document["linux"].value("seccomp", json());
  s.hooks = config.document.value("hooks", json::object());
  HUTCH_TRYV(store.save(s));

  if (config.terminal && !console_socket.empty()) {
    HUTCH_TRYV(send_console(console_socket, created.pty().get()));
  }
  HUTCH_TRYV(run_hooks(g, s, "prestart", "created", false, false));
  HUTCH_TRYV(run_hooks(g, s, "createRuntime", "created", false, false));
  HUTCH_TRYV(run_hooks(g, s, "createContainer", "created", true, false));
  HUTCH_TRYV(write_pid_file(a.value("pid-file"), s.pid));
  if (!and_start) {
    created.detach();
    cleanup.armed = false;
    return 0;
  }
  // run: start it here and wait, relaying a terminal to this one.
  HUTCH_TRYV(run_hooks(g, s, "startContainer", "created", true, false));
  HUTCH_TRY(hutch::Child child, created.start());
  s.started = true;
  HUTCH_TRYV(store.save(s));
  HUTCH_TRYV(run_hooks(g, s, "poststart", "running", false, true));
  if (config.terminal) relay_terminal(child.pty().get());
  HUTCH_TRY(const hutch::ExitStatus status, child.wait());
  (void)run_hooks(g, s, "poststop", "stopped", false, true);
  return status.code ? *status.code : 128 + status.signal.value_or(0);
}

Result start(const Global& g, const Parsed& a) {
  HUTCH_TRY(const std::string id, the_id(a));
  Store store(g.root);
  HUTCH_TRY(const hutch::Fd lock, store.lock(id));
  HUTCH_TRY(State s, store.load(id));
  const std::string status = status_of(s);
  if (status != "created") {
    return state_error(EINVAL, id, fmt::format("cannot start a container that is {}", status));
  }
  if (auto hooks = run_hooks(g, s, "startContainer", "created", true, false); !hooks) {
    (void)signal_init(s, SIGKILL);
    return hooks.error();
  }
  HUTCH_TRYV(hutch::start_created(store.fifo(id), s.pid));
  ::unlink(store.fifo(id).c_str());
  s.started = true;
  HUTCH_TRYV(store.save(s));
  (void)run_hooks(g, s, "poststart", "running", false, true);
  return 0;
}

// ---- state / list / ps ----------------------------------------------------------------

Result state(const Global& g, const Parsed& a) {
  HUTCH_TRY(const std::string id, the_id(a));
  HUTCH_TRY(const State s, Store(g.root).load(id));
  fmt::print("{}\n", public_state(s).dump(2));
  return 0;
}

Result list(const Global& g, const Parsed& a) {
  Store store(g.root);
  json all = json::array();
  for (const auto& id : store.ids()) {
    auto s = store.load(id);
    if (s) all.push_back(public_state(*s));
  }
  if (a.has("quiet")) {
    for (const auto& s : all) fmt::print("{}\n", s["id"].get<std::string>());
  } else if (a.value("format", "table") == "json") {
    fmt::print("{}\n", all.dump());
  } else {
    fmt::print("{:<24}{:<10}{:<10}{:<40}{}\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
    for (const auto& s : all) {
      fmt::print("{:<24}{:<10}{:<10}{:<40}{}\n", s["id"].get<std::string>(), s["pid"].get<int>(),
                 s["status"].get<std::string>(), s["bundle"].get<std::string>(),
                 s["created"].get<std::string>());
    }
  }
  return 0;
}

Result ps(const Global& g, const Parsed& a) {
  HUTCH_TRY(const std::string id, the_id(a));
  HUTCH_TRY(const State s, Store(g.root).load(id));
  const std::vector<pid_t> pids = cgroup_pids(s);
  if (a.value("format", "table") == "json") {
    fmt::print("{}\n", json(pids).dump());
    return 0;
  }
  // The table: ps(1) with the arguments given (-ef by default), its lines of these pids.
  std::string command = "ps";
  if (a.positional.size() > 1) {
    for (std::size_t i = 1; i < a.positional.size(); ++i) {
      for (char c : a.positional[i]) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != ',' && c != '=') {
          return usage(fmt::format("{}: not a ps option", a.positional[i]));
        }
      }
      command += " " + a.positional[i];
    }
  } else {
    command += " -ef";
  }
  FILE* out = ::popen(command.c_str(), "r");
  if (!out) return hutch::last_error(hutch::oci_step::state, "ps");
  char line[4096];
  int pid_column = -1;
  for (bool header = true; std::fgets(line, sizeof line, out); header = false) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string w; words >> w;) fields.push_back(w);
    if (header) {
      for (std::size_t i = 0; i < fields.size(); ++i) {
        if (fields[i] == "PID") pid_column = static_cast<int>(i);
      }
      if (pid_column < 0) {
        ::pclose(out);
        return usage("ps's output has no PID column");
      }
      fmt::print("{}", line);
      continue;
    }
    if (static_cast<int>(fields.size()) <= pid_column) continue;
    const pid_t pid = std::atoi(fields[static_cast<std::size_t>(pid_column)].c_str());
    if (std::find(pids.begin(), pids.end(), pid) != pids.end()) fmt::print("{}", line);
  }
  ::pclose(out);
  return 0;
}

// ---- kill / delete / pause / resume / update ---------------------------------------------

Result kill(const Global& g, const Parsed& a) {
  HUTCH_TRY(const std::string id, the_id(a));
  HUTCH_TRY(const int signal, signal_number(a.positional.size() > 1 ? a.positional[1] : "TERM"));
  Store store(g.root);
  HUTCH_TRY(const hutch::Fd lock, store.lock(id));
  HUTCH_TRY(const State s, store.load(id));
  if (status_of(s) == "stopped" && !a.has("all")) {
    return state_error(ESRCH, id, "container not running");
  }
  if (a.has("all")) {
    for (pid_t pid : cgroup_pids(s)) ::kill(pid, signal);
    if (s.alive()) HUTCH_TRYV(signal_init(s, signal));
    return 0;
  }
  HUTCH_TRYV(signal_init(s, signal));
  return 0;
}

Result remove(const Global& g, const Parsed& a) {
  HUTCH_TRY(const std::string id, the_id(a));
  Store store(g.root);
  const bool force = a.has("force");
  auto lock = store.lock(id);
  if (!lock && force && lock.error().errno_value() == ENOENT) return 0;  // gone: as runc
  if (!lock) return lock.error();
  HUTCH_TRY(const State s, store.load(id));
  const std::string status = status_of(s);
  if ((status == "running" || status == "paused") && !force) {
    return state_error(EBUSY, id,
                       fmt::format("cannot delete a container that is {} (use --force)", status));
  }
  if (!s.cgroup.empty()) {
    HUTCH_TRY(hutch::LiveCGroup cgroup, hutch::LiveCGroup::open(s.cgroup));
    if (status == "paused") (void)cgroup.thaw();
    if (s.alive()) (void)signal_init(s, SIGKILL);
    (void)cgroup.kill_all();
    wait_gone(s, std::chrono::seconds(10));
    if (auto removed = cgroup.remove(); !removed) g.warn(removed.error().message());
  } else if (s.alive()) {
    (void)signal_init(s, SIGKILL);
    wait_gone(s, std::chrono::seconds(10));
  }
  (void)run_hooks(g, s, "poststop", "stopped", false, true);
  store.remove(id);
  return 0;
}

Result freeze(const Global& g, const Parsed& a, bool frozen) {
  HUTCH_TRY(const std::string id, the_id(a));
  Store store(g.root);
  HUTCH_TRY(const hutch::Fd lock, store.lock(id));
  HUTCH_TRY(const State s, store.load(id));
  const std::string status = status_of(s);
  if (status != (frozen ? "running" : "paused")) {
    return state_error(EINVAL, id, fmt::format("container is {}", status));
  }
  HUTCH_TRY(hutch::LiveCGroup cgroup, hutch::LiveCGroup::open(s.cgroup));
  HUTCH_TRYV(frozen ? cgroup.freeze() : cgroup.thaw());
  cgroup.release();
  return 0;
}

hutch::result<std::string> read_input(const std::string& path) {
  hutch::Fd fd(path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return hutch::last_error(hutch::oci_step::config, path);
  return hutch::oci::read_bounded(fd.get(), path);
}

Result update(const Global& g, const Parsed& a) {
  HUTCH_TRY(const std::string id, the_id(a));
  Store store(g.root);
  HUTCH_TRY(const hutch::Fd lock, store.lock(id));
  HUTCH_TRY(const State s, store.load(id));
  json resources = json::object();
  if (a.has("resources")) {
    HUTCH_TRY(const std::string text, read_input(a.value("resources")));
    resources = json::parse(text, nullptr, false);
    if (resources.is_discarded() || !resources.is_object()) {
      return hutch::oci::detail::bad("--resources", "not a JSON object");
    }
  }
  auto number = [&](const char* flag) { return std::stoll(a.value(flag, "0")); };
  try {
    if (a.has("memory")) resources["memory"]["limit"] = number("memory");
    if (a.has("memory-swap")) resources["memory"]["swap"] = number("memory-swap");
    if (a.has("pids-limit")) resources["pids"]["limit"] = number("pids-limit");
    if (a.has("cpu-quota")) resources["cpu"]["quota"] = number("cpu-quota");
    if (a.has("cpu-period")) resources["cpu"]["period"] = number("cpu-period");
    if (a.has("cpu-shares")) resources["cpu"]["shares"] = number("cpu-shares");
  } catch (const std::exception&) {
    return usage("a resource flag takes a number");
  }
  if (a.has("cpuset-cpus")) resources["cpu"]["cpus"] = a.value("cpuset-cpus");
  // The device rules are the cgroup's from its creation: an update that repeats them (as
  // containerd sends the whole resources) changes nothing there.
  resources.erase("devices");
  hutch::CGroup limits;
  HUTCH_TRYV(hutch::oci::detail::read_resources(resources, limits));
  HUTCH_TRY(hutch::LiveCGroup cgroup, hutch::LiveCGroup::open(s.cgroup));
  HUTCH_TRYV(cgroup.update(limits));
  cgroup.release();
  return 0;
}

// ---- exec -------------------------------------------------------------------------------

std::atomic<pid_t> forward_to{0};
void forward_signal(int signal) {
  if (const pid_t pid = forward_to.load()) ::kill(pid, signal);
}

Result exec(const Global& g, const Parsed& a) {
  HUTCH_TRY(const std::string id, the_id(a));
  Store store(g.root);
  HUTCH_TRY(const State s, store.load(id));
  const std::string status = status_of(s);
  if (status == "stopped") return state_error(ESRCH, id, "cannot exec in a stopped container");
  if (status == "paused" && !a.has("ignore-paused")) {
    return state_error(EBUSY, id, "cannot exec in a paused container");
  }
  json process;
  if (a.has("process")) {
    HUTCH_TRY(const std::string text, read_input(a.value("process")));
    process = json::parse(text, nullptr, false);
    if (process.is_discarded() || !process.is_object()) {
      return hutch::oci::detail::bad(a.value("process"), "not a JSON object");
    }
  } else {
    if (a.positional.size() < 2) return usage("exec needs a command or --process");
    process = s.process;
    process["args"] = std::vector<std::string>(a.positional.begin() + 1, a.positional.end());
    process["terminal"] = a.has("tty");
    process.erase("consoleSize");
    if (a.has("cwd")) process["cwd"] = a.value("cwd");
    for (const auto& kv : a.all("env")) process["env"].push_back(kv);
    if (a.has("user")) {
      const std::string user = a.value("user");
      const auto colon = user.find(':');
      try {
        process["user"]["uid"] = std::stoul(user.substr(0, colon));
        if (colon != std::string::npos) process["user"]["gid"] = std::stoul(user.substr(colon + 1));
      } catch (const std::exception&) {
        return usage(fmt::format("{}: --user takes uid[:gid]", user));
      }
    }
    for (const auto& gid : a.all("additional-gids")) {
      process["user"]["additionalGids"].push_back(std::stoul(gid));
    }
    if (a.has("no-new-privs")) process["noNewPrivileges"] = true;
    for (const auto& cap : a.all("cap")) {
      for (const char* set : {"bounding", "effective", "permitted", "ambient"}) {
        process["capabilities"][set].push_back(cap);
      }
    }
  }
  const bool terminal = process.value("terminal", false);
  const bool detach = a.has("detach");
  const std::string console_socket = a.value("console-socket");
  if (terminal && detach && console_socket.empty()) {
    return usage("a detached exec with a terminal needs --console-socket");
  }
  HUTCH_TRY(hutch::Process p, hutch::oci::parse_process(process.dump()));
  if (!s.seccomp.is_null()) {
    HUTCH_TRY(hutch::SeccompProgram program, hutch::oci::seccomp_program(s.seccomp));
    p.seccomp(std::move(program));
  }
  p.die_with_parent(false);
  const int preserve = std::atoi(a.value("preserve-fds", "0").c_str());
  for (int i = 0; i < preserve; ++i) p.pass_fd(3 + i, 3 + i);
  HUTCH_TRY(hutch::Child child, hutch::exec_in(s.pid, p));
  if (terminal && !console_socket.empty()) {
    HUTCH_TRYV(send_console(console_socket, child.pty().get()));
  }
  HUTCH_TRYV(write_pid_file(a.value("pid-file"), child.pid()));
  if (detach) {
    child.detach();
    return 0;
  }
  forward_to = child.pid();
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    ::signal(signal, forward_signal);
  }
  if (terminal && console_socket.empty()) relay_terminal(child.pty().get());
  HUTCH_TRY(const hutch::ExitStatus exit, child.wait());
  return exit.code ? *exit.code : 128 + exit.signal.value_or(0);
}

// ---- features -------------------------------------------------------------------------

Result features() {
  json caps = json::array();
  for (int c = 0; c <= 40; ++c) {
    if (auto name = hutch::capability_name(static_cast<hutch::Capability>(c)); !name.empty()) {
      caps.push_back(std::string(name));
    }
  }
  json options = json::array();
  for (const auto& f : hutch::oci::detail::mount_flags) options.push_back(std::string(f.name));
  for (const auto& p : hutch::oci::detail::propagations) options.push_back(std::string(p.name));
  for (const char* o : {"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
                        "tmpcopyup", "notmpcopyup"}) {
    options.push_back(o);
  }
  const json out = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.2.0"},
      {"hooks",
       {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions", options},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
        {"capabilities", caps},
        {"cgroup",
         {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions",
           {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}},
          {"operators",
           {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
          {"archs", {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"}}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}},
        {"intelRdt", {{"enabled", false}}},
        {"mountExtensions", {{"idmap", {{"enabled", false}}}}}}},
      {"annotations", {{"org.hutch.runtime.version", "0.1.0"}}}};
  fmt::print("{}\n", out.dump(2));
  return 0;
}

// ---- the command line -------------------------------------------------------------------

const std::vector<Flag> global_flags = {{"root", 0, true},
                                        {"log", 0, true},
                                        {"log-format", 0, true},
                                        {"debug", 0, false},
                                        {"systemd-cgroup", 0, false},
                                        {"rootless", 0, true},
                                        {"criu", 0, true},
                                        {"version", 'v', false},
                                        {"help", 'h', false}};

const std::vector<Flag> create_flags = {{"bundle", 'b', true},       {"pid-file", 0, true},
                                        {"console-socket", 0, true}, {"preserve-fds", 0, true},
                                        {"no-pivot", 0, false},      {"no-new-keyring", 0, false},
                                        {"detach", 'd', false}};
const std::vector<Flag> exec_flags = {
    {"process", 'p', true},      {"detach", 'd', false},     {"pid-file", 0, true},
    {"console-socket", 0, true}, {"tty", 't', false},        {"cwd", 0, true},
    {"env", 'e', true},          {"user", 'u', true},        {"additional-gids", 'g', true},
    {"cap", 'c', true},          {"no-new-privs", 0, false}, {"preserve-fds", 0, true},
    {"ignore-paused", 0, false}, {"apparmor", 0, true},      {"process-label", 0, true},
    {"cgroup", 0, true}};
const std::vector<Flag> update_flags = {{"resources", 'r', true}, {"memory", 'm', true},
                                        {"memory-swap", 0, true}, {"pids-limit", 0, true},
                                        {"cpu-quota", 0, true},   {"cpu-period", 0, true},
                                        {"cpu-shares", 0, true},  {"cpuset-cpus", 0, true}};

constexpr const char* help_text =
    "usage: hutch-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
    "  create [--bundle DIR] [--pid-file F] [--console-socket S] [--preserve-fds N] ID\n"
    "  start ID | state ID | pause ID | resume ID\n"
    "  run [--bundle DIR] [--pid-file F] ID      create, start and wait\n"
    "  kill [--all] ID [SIGNAL]\n"
    "  delete [--force] ID\n"
    "  exec [--process F | [--tty] [--cwd D] [--env K=V] [--user U[:G]] ...] [--detach]\n"
    "       [--pid-file F] [--console-socket S] ID [COMMAND...]\n"
    "  ps [--format table|json] ID [PS-ARGS]\n"
    "  list [--format table|json] [--quiet]\n"
    "  update [--resources FILE|-] [--memory N] [--pids-limit N] [--cpu-quota N] ... ID\n"
    "  features | --version\n";

Result dispatch(Global& g, const std::vector<std::string>& args) {
  Parsed top;
  std::size_t i = 1;
  // Global flags come before the command.
  std::vector<std::string> head;
  for (; i < args.size() && args[i].starts_with("-"); ++i) {
    head.push_back(args[i]);
    const std::string name = args[i].substr(args[i].find_first_not_of('-'));
    for (const Flag& f : global_flags) {
      if (f.takes_value && name == f.name && i + 1 < args.size()) head.push_back(args[++i]);
    }
  }
  head.insert(head.begin(), "");
  if (auto error = parse_flags(head, 1, global_flags, false, top)) return usage(*error);
  if (top.has("version")) {
    fmt::print("{}", version_text);
    return 0;
  }
  if (top.has("help") || i >= args.size()) {
    fmt::print("{}", help_text);
    return top.has("help") ? 0 : 2;
  }
  const std::string default_root =
      ::geteuid() == 0
          ? "/run/hutch-runtime"
          : std::string(std::getenv("XDG_RUNTIME_DIR") ? std::getenv("XDG_RUNTIME_DIR") : "/tmp") +
                "/hutch-runtime";
  g.root = top.value("root", default_root);
  g.log = top.value("log");
  g.json_log = top.value("log-format", "text") == "json";
  g.debug = top.has("debug");
  g.systemd_cgroup = top.has("systemd-cgroup");
  if (g.root.empty() || g.root[0] != '/') g.root = absolute(g.root);

  const std::string command = args[i];
  Parsed a;
  auto parse = [&](const std::vector<Flag>& flags, bool stop) -> hutch::result<void> {
    std::vector<Flag> with_help = flags;
    with_help.push_back({"help", 'h', false});
    if (auto error = parse_flags(args, i + 1, with_help, stop, a)) {
      return usage(fmt::format("{}: {}", command, *error));
    }
    return hutch::success();
  };
  if (command == "create" || command == "run") {
    HUTCH_TRYV(parse(create_flags, false));
    return create(g, a, command == "run");
  }
  if (command == "start") {
    HUTCH_TRYV(parse({}, false));
    return start(g, a);
  }
  if (command == "state") {
    HUTCH_TRYV(parse({}, false));
    return state(g, a);
  }
  if (command == "kill") {
    HUTCH_TRYV(parse({{"all", 'a', false}, {"pid", 0, true}}, false));
    return kill(g, a);
  }
  if (command == "delete") {
    HUTCH_TRYV(parse({{"force", 'f', false}}, false));
    return remove(g, a);
  }
  if (command == "exec") {
    HUTCH_TRYV(parse(exec_flags, true));
    return exec(g, a);
  }
  if (command == "pause" || command == "resume") {
    HUTCH_TRYV(parse({}, false));
    return freeze(g, a, command == "pause");
  }
  if (command == "ps") {
    HUTCH_TRYV(parse({{"format", 'f', true}}, true));
    return ps(g, a);
  }
  if (command == "list") {
    HUTCH_TRYV(parse({{"format", 'f', true}, {"quiet", 'q', false}}, false));
    return list(g, a);
  }
  if (command == "update") {
    HUTCH_TRYV(parse(update_flags, false));
    return update(g, a);
  }
  if (command == "features") return features();
  return usage(fmt::format("{}: not a command\n{}", command, help_text));
}

}  // namespace
}  // namespace hutch_runtime

int main(int argc, char** argv) {
  using namespace hutch_runtime;
  const std::vector<std::string> args(argv, argv + argc);
  Global g;
  const auto result = dispatch(g, args);
  if (result) return *result;
  std::string message = result.error().message();
  // Engines tell "not found" (127) and "cannot execute" (126) from the error's words, as
  // runc words them (docker matches them exactly).
  if (result.error().step == hutch::Step::exec) {
    const int e = result.error().errno_value();
    if (e == ENOENT) message += ": executable file not found in $PATH";
    if (e == EACCES) message += ": permission denied";
  }
  g.write_log("error", message);
  fmt::print(stderr, "hutch-runtime: {}\n", message);
  return 1;
}
