// hutch-run: a small `docker run` on the library, with no daemon.
//
//   hutch-run (--rootfs DIR | --image IMAGE) [OPTIONS] [--] CMD [ARG...]
//   hutch-run pull [--store DIR] [--tls-verify BOOL] [--cert-dir DIR] IMAGE
//
// IMAGE is a path (an OCI layout directory or a docker save archive, PATH[:TAG]) or, when no
// such path exists, a reference pulled from its registry (--pull missing|always|never).
//
// Security as docker's defaults: Docker's 14 capabilities, no_new_privs, and hutch's default
// seccomp profile (hutch/seccomp.hpp). The root filesystem is used through a copy-on-write
// overlay: the directory itself is never written. With --rm the writable layer is thrown
// away; without it, it is kept and its path printed, as `docker run` without --rm keeps the
// stopped container. Exit status as docker's: the command's own, 128+N when killed by signal
// N, 125 when hutch-run itself fails, 126 when the command cannot be executed, 127 when it is
// not found.
//
// Built twice: `hutch-run` starts fast (static, no libarchive or OpenSSL to load, the default
// seccomp profile compiled at build time) and hands --image runs and pulls to
// `hutch-run-image` next to it, the same program built with hutch::image and hutch::registry.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <hutch/hutch.hpp>
#if HUTCH_RUN_IMAGE
#include <hutch/image.hpp>
#endif
#if HUTCH_RUN_REGISTRY
#include <hutch/registry.hpp>
#endif

#include "container.hpp"
#include "default_seccomp.inc"
#include "options.hpp"

namespace {

constexpr int exit_hutch_failed = 125;

int fail(std::string_view message) {
  fmt::print(stderr, "hutch-run: {}\n", message);
  return exit_hutch_failed;
}

int fail(const hutch::Error& e) {
  if (e.step == hutch::Step::validate && e.errno_value() == EINVAL) {
    if (e.subject.empty()) {
      fmt::print(stderr, "hutch-run: {}\n", e.note);
    } else {
      fmt::print(stderr, "hutch-run: {}: {}\n", e.subject, e.note);
    }
    return exit_hutch_failed;
  }
  return fail(e.message());
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

void copy(int from, int to, bool& open) {
  char buffer[65536];
  ssize_t n = ::read(from, buffer, sizeof buffer);
  if (n > 0) {
    (void)!::write(to, buffer, static_cast<std::size_t>(n));
  } else {
    open = false;  // EOF, or EIO: every process inside closed the terminal
  }
}

/// Drains what the terminal still holds. The kernel moves what the container wrote to the
/// master asynchronously, so wait for the end (EIO once the last writer is gone), not just
/// for what is there now.
void drain(hutch::Child& child) {
  for (bool open = true; open;) {
    pollfd p{child.pty().get(), POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) break;
    copy(child.pty().get(), 1, open);
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
    if (fds[2].revents & (POLLIN | POLLHUP)) copy(child.pty().get(), 1, tty);
    if (fds[3].revents & (POLLIN | POLLHUP)) copy(0, child.pty().get(), stdin_open);
    if (fds[0].revents & POLLIN) {
      if (tty) drain(child);
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
#else
/// PATH[:REF]: the path is the longest prefix that exists ("saved.tar:name:tag" gives the
/// archive and "name:tag").
std::pair<std::string, std::string> split_image(const std::string& ref) {
  std::error_code ec;
  if (std::filesystem::exists(ref, ec)) return {ref, ""};
  for (auto colon = ref.rfind(':'); colon != std::string::npos && colon > 0;
       colon = ref.rfind(':', colon - 1)) {
    if (std::filesystem::exists(ref.substr(0, colon), ec)) {
      return {ref.substr(0, colon), ref.substr(colon + 1)};
    }
  }
  return {ref, ""};
}

#if HUTCH_RUN_REGISTRY
/// docker's pull output: a line per layer, redrawn in place on a terminal ("a1b2c3d4e5f6:
/// Downloading [=====>     ] 1.2MB/3.4MB"), one plain line per finished layer otherwise.
class PullProgress {
 public:
  PullProgress() : tty_(::isatty(2) == 1) {}
  void operator()(const hutch::LayerProgress& p) {
    if (layers_.size() < p.layers) layers_.resize(p.layers);
    Layer& l = layers_[p.layer];
    const bool finished = p.done == p.total;
    l = {p.digest.substr(7, 12), p.done, p.total, p.cached, finished};
    if (!tty_) {
      if (finished && !l.printed) {
        fmt::print(stderr, "{}: {}\n", l.id, p.cached ? "Already exists" : "Pull complete");
        l.printed = true;
      }
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (!finished && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    draw();
  }
  void finish() {
    if (tty_ && drawn_ > 0) draw();
  }

 private:
  struct Layer {
    std::string id;
    std::uint64_t done = 0, total = 0;
    bool cached = false, finished = false, printed = false;
  };
  static std::string size(std::uint64_t n) {
    if (n >= 1000000) return fmt::format("{:.1f}MB", static_cast<double>(n) / 1e6);
    return fmt::format("{:.1f}kB", static_cast<double>(n) / 1e3);
  }
  void draw() {
    std::string out;
    if (drawn_ > 0) out += fmt::format("\x1b[{}A", drawn_);
    for (const Layer& l : layers_) {
      out += "\x1b[2K";
      if (l.id.empty()) {
        out += "\n";
        continue;
      }
      if (l.cached) {
        out += fmt::format("{}: Already exists\n", l.id);
      } else if (l.finished) {
        out += fmt::format("{}: Pull complete\n", l.id);
      } else {
        const std::size_t width = 50;
        const std::size_t filled = l.total ? static_cast<std::size_t>(l.done * width / l.total) : 0;
        out += fmt::format("{}: Downloading [{}>{}] {}/{}\n", l.id, std::string(filled, '='),
                           std::string(width - filled, ' '), size(l.done), size(l.total));
      }
    }
    drawn_ = layers_.size();
    fmt::print(stderr, "{}", out);
  }
  bool tty_;
  std::vector<Layer> layers_;
  std::size_t drawn_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

/// The image `reference` names: from the store, or pulled into it, as --pull says.
hutch::result<hutch::Image> pulled_image(const hutch_run::RunOptions& o,
                                         const hutch::ImageStore& store) {
  HUTCH_TRY(const hutch::registry::Reference ref, hutch::registry::parse_reference(o.image));
  if (o.pull != "always") {
    auto stored = hutch::Image::stored(ref.str(), store);
    if (stored && stored->unpacked_in(store)) return stored;
    if (o.pull == "never") {
      if (stored) return stored;  // its layers are unpacked when it runs, or say what is missing
      return hutch::make_error(hutch::image_step::open, ENOENT, ref.str(),
                               "the image is not in the store and --pull never was given");
    }
  }
  hutch::registry::PullOptions options;
  options.transport.tls_verify = o.tls_verify;
  options.transport.cert_dir = o.cert_dir;
  PullProgress progress;
  options.progress = std::ref(progress);
  fmt::print(stderr, "{}: Pulling from {}\n", ref.tag.empty() ? ref.digest : ref.tag, ref.name());
  auto pulled = hutch::registry::pull_into(o.image, store, options);
  progress.finish();
  HUTCH_TRY(const hutch::registry::PullResult result, std::move(pulled));
  fmt::print(stderr, "Digest: {}\nStatus: {} for {}\n", result.manifest_digest,
             result.layers_fetched ? "Downloaded newer image" : "Image is up to date", ref.str());
  if (o.pull_only) fmt::print("{}\n", result.manifest_digest);
  return hutch::Image::stored(ref.str(), store);
}
#endif

/// An image gives the root (its layers), the command and its environment; flags override.
hutch::result<hutch::Container> from_image(const hutch_run::RunOptions& o,
                                           std::vector<std::string>& layers) {
  const auto [path, tag] = split_image(o.image);
  hutch::ImageStore store(o.store);
  if (o.store.empty()) {
    HUTCH_TRY(store, hutch::ImageStore::default_store());
  }
  std::error_code ec;
  std::optional<hutch::Image> opened;
  if (std::filesystem::exists(path, ec)) {
    HUTCH_TRY(opened, hutch::Image::open(path, tag, {.store = store}));
  } else {
#if HUTCH_RUN_REGISTRY
    HUTCH_TRY(opened, pulled_image(o, store));
#else
    return hutch::make_error(
        hutch::image_step::open, ENOENT, o.image,
        "no such image path (this hutch-run was built without hutch::registry, "
        "so it pulls no images)");
#endif
  }
  if (o.pull_only) return hutch::Container{};
  const hutch::Image& image = *opened;
  bool drawn = false;
  auto progress = [&](const hutch::LayerProgress& p) {
    if (!::isatty(2)) return;
    fmt::print(stderr, "\runpacking layer {}/{}: {} / {} KiB", p.layer + 1, p.layers, p.done / 1024,
               p.total / 1024);
    drawn = true;
  };
  auto unpacked = image.unpack(store, progress);
  if (drawn) fmt::print(stderr, "\n");
  HUTCH_TRY(layers, std::move(unpacked));
  HUTCH_TRY(hutch::Container container, image.container(store));
  if (!o.command.empty()) container.command(image.command(o.command));
  return container;
}
#endif

/// The container's exit status as docker gives it.
int exit_code(const hutch::ExitStatus& status) {
  if (status.oom_killed) fmt::print(stderr, "hutch-run: the container ran out of memory\n");
  if (status.signal) return 128 + *status.signal;
  return status.code.value_or(exit_hutch_failed);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  auto parsed = hutch_run::parse_args(args);
  if (!parsed) {
    fail(parsed.error());
    fmt::print(stderr, "Try 'hutch-run --help' for more information.\n");
    return exit_hutch_failed;
  }
  const hutch_run::RunOptions& o = *parsed;
  if (o.help) {
    fmt::print("{}", hutch_run::usage());
    return 0;
  }

  std::vector<std::string> layers;
  hutch::Container container;
#if !HUTCH_RUN_IMAGE
  if (!o.image.empty()) return run_image_build(argv);
  container.command(o.command);
#else
  if (!o.image.empty()) {
    auto made = from_image(o, layers);
    if (!made) return fail(made.error());
    if (o.pull_only) return 0;
    container = std::move(*made);
  } else {
    container.command(o.command);
  }
#endif
  std::string keep_parent;
  auto root = hutch_run::root_filesystem(o, layers, keep_parent);
  if (!root) return fail(root.error());
  container.rootfs(std::move(*root));
  const std::vector<std::string> roots =
      layers.empty() ? std::vector<std::string>{o.rootfs}
                     : std::vector<std::string>(layers.rbegin(), layers.rend());
  auto configured = hutch_run::configure(
      container, o, roots,
      {std::begin(default_seccomp_program), std::end(default_seccomp_program)});
  if (!configured) return fail(configured.error());

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
  auto status = supervise(*child, signals.get(), o.tty);
  if (!keep_parent.empty() && !child->scratch_dir().empty()) {
    fmt::print(stderr, "hutch-run: the container's writes are kept in {}/upper\n",
               child->scratch_dir());
  }
  if (!status) return fail(status.error());
  return exit_code(*status);
}
