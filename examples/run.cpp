// hutch-run: a small `docker run` on the library, with no daemon.
//
//   hutch-run (--rootfs DIR | --image OCI-DIR[:TAG] | --image ARCHIVE.tar[:TAG]) [--memory 64M]
//   [--cpus 0.5] [--pids 64] [--net none|host]
//             [--hostname H] [--env K=V]... [--volume HOST:CTR[:ro]]... [--read-only]
//             [--workdir D] [--user U[:G]] [--cap-add C]... [--cap-drop C]...
//             [--ulimit NAME=SOFT[:HARD]]... [--security-opt seccomp=unconfined]
//             [--rm] [-i] [-t] [--] CMD [ARGS...]
//
// Security as docker's defaults: Docker's 14 capabilities, no_new_privs, and hutch's default
// seccomp profile (hutch/seccomp.hpp).
//
// The root filesystem is used through a copy-on-write overlay: the directory itself is
// never written. With --rm the writable layer is thrown away; without it, it is kept and its
// path printed, as `docker run` without --rm keeps the stopped container.
// Exit status as docker's: the command's own, 128+N when killed by signal N, 125 when
// hutch-run itself fails, 126 when the command cannot be executed, 127 when it is not found.
//
// Built twice: `hutch-run` starts fast (no libarchive or OpenSSL to load, libstdc++ linked in,
// the default seccomp profile compiled at build time) and hands --image runs to
// `hutch-run-image` next to it, the same program built with hutch::image.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hutch/hutch.hpp>
#if HUTCH_RUN_IMAGE
#include <hutch/image.hpp>
#endif

#include "default_seccomp.inc"

namespace {

constexpr int exit_hutch_failed = 125;

int fail(const std::string& message) {
  fmt::print(stderr, "hutch-run: {}\n", message);
  return exit_hutch_failed;
}

/// "64M", "1g", "512k", "1048576" -> bytes.
std::optional<std::uint64_t> parse_size(std::string text) {
  if (text.empty()) return std::nullopt;
  std::uint64_t unit = 1;
  switch (std::tolower(static_cast<unsigned char>(text.back()))) {
    case 'k':
      unit = 1ull << 10;
      break;
    case 'm':
      unit = 1ull << 20;
      break;
    case 'g':
      unit = 1ull << 30;
      break;
    default:
      break;
  }
  if (unit != 1) text.pop_back();
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoull(text) * unit;
}

/// "nofile=1024:2048" (docker's --ulimit) -> an rlimit.
std::optional<hutch::Rlimit> parse_ulimit(const std::string& spec) {
  static const std::pair<const char*, int> names[] = {
      {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},         {"fsize", RLIMIT_FSIZE},
      {"locks", RLIMIT_LOCKS},       {"memlock", RLIMIT_MEMLOCK},
      {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},
      {"rss", RLIMIT_RSS},           {"rtprio", RLIMIT_RTPRIO},
      {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}};
  auto eq = spec.find('=');
  if (eq == std::string::npos) return std::nullopt;
  const std::string name = spec.substr(0, eq), values = spec.substr(eq + 1);
  auto colon = values.find(':');
  auto number = [](const std::string& s) -> std::optional<rlim_t> {
    if (s == "unlimited" || s == "-1") return RLIM_INFINITY;
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return static_cast<rlim_t>(std::stoull(s));
  };
  auto soft = number(values.substr(0, colon));
  auto hard = colon == std::string::npos ? soft : number(values.substr(colon + 1));
  for (const auto& [known, resource] : names) {
    if (name == known && soft && hard) return hutch::Rlimit{resource, *soft, *hard};
  }
  return std::nullopt;
}

/// Puts the terminal on stdin in raw mode for the lifetime of the object.
class RawTerminal {
 public:
  RawTerminal() {
    if (::tcgetattr(0, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

void copy_window_size(hutch::Child& child) {
  winsize size{};
  if (::ioctl(0, TIOCGWINSZ, &size) == 0 || ::ioctl(1, TIOCGWINSZ, &size) == 0) {
    (void)child.resize(size.ws_row, size.ws_col);
  }
}

/// Waits for the container while passing on signals (and, with a terminal, its bytes).
hutch::result<hutch::ExitStatus> supervise(hutch::Child& child, int signals, bool tty) {
  std::optional<RawTerminal> raw;
  if (tty && ::isatty(0)) raw.emplace();
  bool stdin_open = tty;
  for (;;) {
    pollfd fds[4] = {{child.pidfd(), POLLIN, 0},
                     {signals, POLLIN, 0},
                     {tty ? child.pty().get() : -1, POLLIN, 0},
                     {stdin_open ? 0 : -1, POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signals, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGWINCH) {
          copy_window_size(child);
        } else {
          (void)child.kill(static_cast<int>(info.ssi_signo));
        }
      }
    }
    char buffer[65536];
    if (fds[2].revents & (POLLIN | POLLHUP)) {
      ssize_t n = ::read(child.pty().get(), buffer, sizeof buffer);
      if (n > 0) {
        (void)!::write(1, buffer, static_cast<std::size_t>(n));
      } else {
        tty = false;  // EIO: every process inside closed the terminal
      }
    }
    if (fds[3].revents & (POLLIN | POLLHUP)) {
      ssize_t n = ::read(0, buffer, sizeof buffer);
      if (n > 0) {
        (void)!::write(child.pty().get(), buffer, static_cast<std::size_t>(n));
      } else {
        stdin_open = false;
      }
    }
    if (fds[0].revents & POLLIN) {
      // Drain what the terminal still holds, then reap. The kernel moves what the container
      // wrote to the master asynchronously, so wait for the end (EIO once the last writer
      // is gone), not just for what is there now.
      while (tty) {
        pollfd p{child.pty().get(), POLLIN, 0};
        if (::poll(&p, 1, 500) <= 0) break;
        ssize_t n = ::read(child.pty().get(), buffer, sizeof buffer);
        if (n <= 0) break;
        (void)!::write(1, buffer, static_cast<std::size_t>(n));
      }
      break;
    }
  }
  raw.reset();
  return child.wait();
}

#if !HUTCH_RUN_IMAGE
/// --image: run hutch-run-image, the build of this program with image support, from the
/// directory this one is in, with the same arguments.
int run_image_build(char** argv) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return fail(fmt::format("--image: cannot find hutch-run-image: {}", ec.message()));
  const std::string helper = (self.parent_path() / "hutch-run-image").string();
  argv[0] = const_cast<char*>(helper.c_str());
  ::execv(helper.c_str(), argv);
  return fail(fmt::format("--image needs {}: {}", helper, std::strerror(errno)));
}
#endif

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run a command in a new container, like `docker run`, with no daemon.", "hutch-run"};
  std::string rootfs, image_ref, store_dir, memory, net = "none", hostname, workdir, user;
  double cpus = 0;
  std::uint64_t pids = 0;
  std::vector<std::string> env, volumes;
  std::vector<std::string> cap_add, cap_drop, ulimits, security_opts;
  bool read_only = false, remove = false, interactive = false, tty = false;
  app.set_help_flag("--help", "Print this help and exit");  // -h is --hostname, as in docker
  auto* rootfs_option =
      app.add_option("--rootfs", rootfs, "Directory holding the container's root filesystem")
          ->check(CLI::ExistingDirectory);
  auto* image_option = app.add_option(
      "--image", image_ref,
      "OCI image layout directory or docker save archive, with :TAG to pick an image");
  rootfs_option->excludes(image_option);
  app.add_option("--store", store_dir,
                 "Where image layers are unpacked (default ~/.cache/hutch, /var/cache/hutch "
                 "for root)");
  app.add_option("--memory,-m", memory, "Memory limit, e.g. 64M or 1G");
  app.add_option("--cpus", cpus, "CPU limit as a number of CPUs, e.g. 0.5")
      ->check(CLI::PositiveNumber);
  app.add_option("--pids", pids, "Limit on the number of processes")->check(CLI::PositiveNumber);
  app.add_option("--net", net, "Network: none (own namespace with loopback) or host")
      ->check(CLI::IsMember({"none", "host"}));
  app.add_option("--hostname,-h", hostname, "Hostname inside the container");
  app.add_option("--env,-e", env, "Set an environment variable KEY=VALUE (repeatable)");
  app.add_option("--volume,-v", volumes, "Bind mount HOST:CONTAINER[:ro] (repeatable)");
  app.add_flag("--read-only", read_only, "Mount the root filesystem read-only");
  app.add_option("--workdir,-w", workdir, "Working directory inside the container");
  app.add_option("--user,-u", user,
                 "User to run as: UID[:GID] or a name from the root's "
                 "/etc/passwd");
  app.add_option("--cap-add", cap_add, "Add a capability, e.g. NET_ADMIN, or ALL (repeatable)");
  app.add_option("--cap-drop", cap_drop, "Drop a capability, or ALL (repeatable)");
  app.add_option("--ulimit", ulimits, "Resource limit NAME=SOFT[:HARD], e.g. nofile=1024:2048");
  app.add_option("--security-opt", security_opts,
                 "seccomp=unconfined (no filter) or no-new-privileges=false");
  app.add_flag("--rm", remove, "Throw the container's writes away when it exits");
  app.add_flag("--interactive,-i", interactive, "Keep stdin open (otherwise /dev/null)");
  app.add_flag("--tty,-t", tty, "Give the container a terminal (window size forwarded)");
  app.prefix_command();  // everything after the command is the command's own
  app.footer(
      "Exit status: the command's, 128+N if killed by signal N, 125 if hutch-run "
      "failed, 126 if the command cannot run, 127 if it is not found.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "hutch-run: {}\nTry 'hutch-run --help' for more information.\n", e.what());
    return exit_hutch_failed;
  }
  std::vector<std::string> command = app.remaining();
  if (!command.empty() && command.front() == "--") command.erase(command.begin());
  const bool separated = std::find(argv, argv + argc, std::string_view("--")) != argv + argc;
  if (!command.empty() && command.front().size() > 1 && command.front()[0] == '-' && !separated) {
    return fail(fmt::format("unknown option {}\nTry 'hutch-run --help' for more information.",
                            command.front()));
  }
  if (rootfs.empty() && image_ref.empty()) {
    return fail("--rootfs or --image is required\nTry 'hutch-run --help' for more information.");
  }

  // An image gives the root (its layers), the command and its environment; flags override.
  std::vector<std::string> layers;
  hutch::Container container;
  const bool image = !image_ref.empty();
#if !HUTCH_RUN_IMAGE
  if (image) return run_image_build(argv);
#else
  if (image) {
    // PATH[:REF]: the path is the longest prefix that exists ("saved.tar:name:tag" gives
    // the archive and "name:tag").
    std::string path = image_ref, tag;
    for (auto colon = image_ref.rfind(':'); colon != std::string::npos && colon > 0;
         colon = image_ref.rfind(':', colon - 1)) {
      if (std::filesystem::exists(image_ref)) break;
      if (std::filesystem::exists(image_ref.substr(0, colon))) {
        path = image_ref.substr(0, colon);
        tag = image_ref.substr(colon + 1);
        break;
      }
    }
    hutch::ImageStore store =
        store_dir.empty() ? hutch::ImageStore::default_store() : hutch::ImageStore(store_dir);
    auto opened = hutch::Image::open(path, tag, {.store = store});
    if (!opened) return fail(opened.error().message());
    const hutch::Image& opened_image = *opened;
    bool drawn = false;
    auto progress = [&](const hutch::LayerProgress& p) {
      if (!::isatty(2)) return;
      fmt::print(stderr, "\runpacking layer {}/{}: {} / {} KiB", p.layer + 1, p.layers,
                 p.done / 1024, p.total / 1024);
      drawn = true;
    };
    auto unpacked = opened_image.unpack(store, progress);
    if (drawn) fmt::print(stderr, "\n");
    if (!unpacked) return fail(unpacked.error().message());
    layers = *unpacked;
    auto from_image = hutch::Container::from_image(opened_image, store);
    if (!from_image) return fail(from_image.error().message());
    container = std::move(*from_image);
    if (!command.empty()) container.command(opened_image.command(command));
  } else
#endif
  {
    if (command.empty()) {
      return fail("no command given\nTry 'hutch-run --help' for more information.");
    }
    container.command(command);
  }

  hutch::RootFs root = image ? hutch::RootFs::layers(layers) : hutch::RootFs::directory(rootfs);
  std::string keep_parent;
  if (remove) {
    root.overlay();
  } else {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    keep_parent = fmt::format("{}/hutch-run", runtime && *runtime ? runtime : "/tmp");
    std::error_code ec;
    std::filesystem::create_directories(keep_parent, ec);
    root.overlay(keep_parent, /*keep=*/true);
  }
  if (read_only) root.read_only();
  for (const auto& volume : volumes) {
    std::vector<std::string> parts;
    std::stringstream in(volume);
    for (std::string p; std::getline(in, p, ':');) parts.push_back(p);
    if (parts.size() < 2 || parts.size() > 3 ||
        (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw")) {
      return fail(fmt::format("--volume {}: expected HOST:CONTAINER[:ro]", volume));
    }
    std::error_code ec;
    auto host = std::filesystem::absolute(parts[0], ec);
    root.bind(host.string(), parts[1],
              parts.size() == 3 && parts[2] == "ro" ? hutch::read_only : hutch::read_write);
  }

  hutch::Namespaces namespaces = hutch::Namespaces::all();
  if (net == "host") namespaces = namespaces.without(hutch::Namespace::net);
  container.namespaces(namespaces)
      .rootfs(root)
      .std_in(interactive ? hutch::Stdio::inherit() : hutch::Stdio::null())
      .tty(tty);
  if (tty) {
    container.env("TERM", std::getenv("TERM") ? std::getenv("TERM") : "xterm");
    // The caller's window size from the first instruction; changes follow by SIGWINCH.
    winsize size{};
    if (::ioctl(0, TIOCGWINSZ, &size) == 0 || ::ioctl(1, TIOCGWINSZ, &size) == 0) {
      container.tty_size(size.ws_row, size.ws_col);
    }
  }
  if (!hostname.empty()) container.hostname(hostname);
  for (const auto& e : env) {
    auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) return fail(fmt::format("--env {}: expected K=V", e));
    container.env(e.substr(0, eq), e.substr(eq + 1));
  }
  if (!workdir.empty()) container.cwd(workdir);
  if (!user.empty()) {
    // Through the container's own /etc/passwd (an image's: its layers, top first).
    auto ids = hutch::resolve_user(image ? std::vector<std::string>(layers.rbegin(), layers.rend())
                                         : std::vector<std::string>{rootfs},
                                   user);
    if (!ids) return fail(fmt::format("--user {}: {}", user, ids.error().message()));
    // The user's id must be mapped in the user namespace. As root, map ids 0-65535 onto
    // themselves, as docker does without userns-remap, so the root filesystem's owners
    // stay who they are; rootless, only the caller's own id can be mapped (it is 0 inside).
    if (::geteuid() == 0) {
      container.uid_map({{0, 0, 65536}}).gid_map({{0, 0, 65536}});
    }
    container.user(ids->first, ids->second);
  }
  // Security: docker's rules for --cap-add/--cap-drop (drops apply first, ALL means every).
  hutch::Capabilities caps = hutch::Capabilities::defaults();
  auto apply_caps = [&](const std::vector<std::string>& names, bool add) -> std::optional<int> {
    for (const auto& name : names) {
      if (name == "ALL" || name == "all") {
        caps = add ? hutch::Capabilities::all() : hutch::Capabilities::none();
        continue;
      }
      auto cap = hutch::parse_capability(name);
      if (!cap)
        return fail(fmt::format("--cap-{} {}: not a capability name", add ? "add" : "drop", name));
      caps = add ? caps.add(*cap) : caps.drop(*cap);
    }
    return std::nullopt;
  };
  if (auto failed = apply_caps(cap_drop, false)) return *failed;
  if (auto failed = apply_caps(cap_add, true)) return *failed;
  container.capabilities(caps);
  for (const auto& spec : ulimits) {
    auto limit = parse_ulimit(spec);
    if (!limit) return fail(fmt::format("--ulimit {}: expected NAME=SOFT[:HARD]", spec));
    container.rlimit(limit->resource, limit->soft, limit->hard);
  }
  bool seccomp = true;
  for (const auto& opt : security_opts) {
    if (opt == "seccomp=unconfined") {
      seccomp = false;
    } else if (opt == "no-new-privileges=false") {
      container.no_new_privs(false);
    } else if (opt != "no-new-privileges" && opt != "no-new-privileges=true") {
      return fail(
          fmt::format("--security-opt {}: expected seccomp=unconfined or "
                      "no-new-privileges[=true|false]",
                      opt));
    }
  }
  if (seccomp) {
    container.seccomp(hutch::SeccompProgram(
        {std::begin(default_seccomp_program), std::end(default_seccomp_program)}));
  }

  if (!memory.empty() || cpus > 0 || pids > 0) {
    hutch::CGroup limits;
    if (!memory.empty()) {
      auto bytes = parse_size(memory);
      if (!bytes || *bytes == 0) return fail(fmt::format("--memory {}: expected e.g. 64M", memory));
      limits.memory_max(*bytes);
    }
    if (cpus > 0) limits.cpu_max(cpus);
    if (pids > 0) limits.pids_max(pids);
    container.cgroup(limits);
  }

  // Signals for the container: read through a signalfd, passed on with pidfd_send_signal.
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    sigaddset(&forwarded, sig);
  }
  sigprocmask(SIG_BLOCK, &forwarded, nullptr);
  hutch::Fd signals(::signalfd(-1, &forwarded, SFD_CLOEXEC));

  auto child = container.spawn();
  if (!child) {
    const auto& e = child.error();
    fmt::print(stderr, "hutch-run: {}\n", e);
    if (e.step == hutch::Step::exec && e.errno_value() == ENOENT) return 127;
    if (e.step == hutch::Step::exec) return 126;
    return exit_hutch_failed;
  }
  auto status = supervise(*child, signals.get(), tty);
  if (!keep_parent.empty() && !child->scratch_dir().empty()) {
    fmt::print(stderr, "hutch-run: the container's writes are kept in {}/upper\n",
               child->scratch_dir());
  }
  if (!status) return fail(status.error().message());
  if (status->oom_killed) fmt::print(stderr, "hutch-run: the container ran out of memory\n");
  if (status->signal) return 128 + *status->signal;
  return status->code.value_or(exit_hutch_failed);
}
