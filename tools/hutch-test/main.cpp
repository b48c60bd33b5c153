// hutch-test: runs one test command in a container of its own, for CTest (TEST_LAUNCHER, or
// CROSSCOMPILING_EMULATOR before CMake 3.29; see hutch_isolate_tests() in
// cmake/hutchTesting.cmake). The command sees the host's filesystem read-only, a private
// /tmp, its own pid, uts, ipc, mount, user and network namespaces, and the limits given; its
// stdio, exit code and death by a signal pass through as CTest expects.
//
//   hutch-test [--memory SIZE] [--pids N] [--cpus N] [--timeout SECONDS] [--network none|host]
//              [--tmp SIZE] [--writable] [--bind HOST:CTR[:ro]] [--] COMMAND [ARG...]
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <hutch/hutch.hpp>
#include <hutch/testing/sandbox.hpp>

#include "../hutch-run/values.hpp"

namespace {

constexpr int failed = 125;  // hutch-test itself could not run the test (docker's code)

int usage(const std::string& why) {
  std::fprintf(stderr,
               "hutch-test: %s\nusage: hutch-test [--memory SIZE] [--pids N] [--cpus N] "
               "[--timeout SECONDS] [--network none|host] [--tmp SIZE] [--writable] "
               "[--bind HOST:CTR[:ro]] [--] COMMAND [ARG...]\n",
               why.c_str());
  return failed;
}

/// COMMAND as an absolute path: as given when it has a '/', else found in PATH; "" if not.
std::string absolute_command(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    char* real = ::realpath(name.c_str(), nullptr);
    std::string out = real ? real : name;
    std::free(real);
    return out;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const std::string candidate = std::string(dirs.substr(0, colon)) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return absolute_command(candidate);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
  }
  return {};
}

/// Dies as the command died, so CTest reports the same signal; no core of our own.
[[noreturn]] void die_by(int signal) {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::signal(signal, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(signal);
  ::_exit(128 + signal);
}

/// The outcome to pass on: an exit code, or a signal to die by.
struct Outcome {
  Outcome(int exit_code) : code(exit_code) {}  // NOLINT: every return of run() is one
  int code = failed;
  int signal = 0;
  static Outcome killed_by(int signal_number) {
    Outcome o(failed);
    o.signal = signal_number;
    return o;
  }
};

Outcome run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  const Outcome outcome = run(argc, argv);  // the container and its root are gone after this
  if (outcome.signal) {
    hutch::settle();
    die_by(outcome.signal);
  }
  return outcome.code;
}

namespace {

Outcome run(int argc, char** argv) {
  using hutch::testing::Options;
  Options options;
  std::optional<std::chrono::milliseconds> timeout;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--") {
      ++i;
      break;
    }
    if (!flag.starts_with("--")) break;
    if (flag == "--writable") {
      options.host_writable();
      continue;
    }
    if (i + 1 >= argc) return usage(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--memory") {
      auto bytes = hutch_run::parse_size(value);
      if (!bytes || *bytes < (std::uint64_t{6} << 20)) {
        return usage("--memory " + std::string(value) + ": expected a size of at least 6M");
      }
      options.memory(*bytes);
    } else if (flag == "--pids") {
      auto count = hutch_run::parse_count(value);
      if (!count) return usage("--pids " + std::string(value) + ": " + count.error().note);
      options.pids(*count);
    } else if (flag == "--cpus") {
      auto cpus = hutch_run::parse_cpus(value);
      if (!cpus) return usage("--cpus " + std::string(value) + ": " + cpus.error().note);
      options.cpus(*cpus);
    } else if (flag == "--timeout") {
      auto seconds = hutch_run::parse_decimal(value);
      if (!seconds || *seconds <= 0 || *seconds > 1e6) {
        return usage("--timeout " + std::string(value) + ": expected seconds above 0");
      }
      timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*seconds * 1000));
      options.timeout(*timeout);
    } else if (flag == "--network") {
      if (value != "none" && value != "host") return usage("--network is none or host");
      options.host_network(value == "host");
    } else if (flag == "--tmp") {
      auto bytes = hutch_run::parse_size(value);
      if (!bytes) return usage("--tmp " + std::string(value) + ": expected a size, or 0");
      options.private_tmp(*bytes);
    } else if (flag == "--bind") {
      auto volume = hutch_run::parse_volume(value);
      if (!volume) return usage("--bind " + std::string(value) + ": " + volume.error().note);
      char* host = ::realpath(volume->host.c_str(), nullptr);
      if (!host) return usage("--bind " + std::string(value) + ": the host path does not exist");
      volume->host = host;
      std::free(host);
      options.bind(volume->host, volume->inside,
                   volume->read_only ? hutch::read_only : hutch::read_write);
    } else {
      return usage("unknown option " + std::string(flag));
    }
  }
  if (i >= argc) return usage("no command given");
  std::vector<std::string> command(argv + i, argv + argc);
  command[0] = absolute_command(command[0]);
  if (command[0].empty()) {
    std::fprintf(stderr, "hutch-test: %s: command not found\n", argv[i]);
    return 127;
  }

  const hutch::testing::HostView view;
  auto container = hutch::testing::sandbox(options, command, view);
  if (!container) {
    std::fprintf(stderr, "hutch-test: %s\n", container.error().message().c_str());
    return failed;
  }
  container->std_in(hutch::Stdio::inherit())
      .std_out(hutch::Stdio::inherit())
      .std_err(hutch::Stdio::inherit());
  auto child = container->spawn();
  if (!child) {
    std::fprintf(stderr, "hutch-test: %s\n", child.error().message().c_str());
    const int e = child.error().errno_value();
    return child.error().step == hutch::Step::exec ? (e == ENOENT ? 127 : 126) : failed;
  }
  if (timeout) {
    auto done = child->wait_for(*timeout);
    if (done && !*done) {
      std::fprintf(stderr, "hutch-test: %s timed out after %.3g s\n", command[0].c_str(),
                   static_cast<double>(timeout->count()) / 1000);
      (void)child->kill(SIGKILL);
      (void)child->wait();
      return 124;  // timeout(1)'s code
    }
  }
  auto status = child->wait();
  if (!status) {
    std::fprintf(stderr, "hutch-test: %s\n", status.error().message().c_str());
    return failed;
  }
  if (status->oom_killed) {
    std::fprintf(stderr, "hutch-test: %s was killed by the OOM killer (--memory)\n",
                 command[0].c_str());
  }
  if (!status->success()) {
    if (auto stats = child->stats(); stats && stats->pids_limit_hits) {
      std::fprintf(stderr, "hutch-test: the pids limit refused %llu fork(s)\n",
                   static_cast<unsigned long long>(stats->pids_limit_hits));
    }
  }
  if (status->signal) return Outcome::killed_by(*status->signal);
  return status->code.value_or(failed);
}

}  // namespace
