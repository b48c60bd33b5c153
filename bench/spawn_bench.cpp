// Spawn latency: fork+exec, vfork+exec, posix_spawn and Container::spawn at several isolation
// levels, each spawning the same static `true` and reaping it. Compare medians within one run
// (the machine is shared and noisy); ratios to fork+exec are what to read.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <hutch/hutch.hpp>

extern char** environ;

namespace {

const char* const payload = HUTCH_BENCH_TRUE;

void reap(pid_t pid, benchmark::State& state) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    state.SkipWithError("payload failed");
  }
}

void fork_exec(benchmark::State& state) {
  char* const argv[] = {const_cast<char*>(payload), nullptr};
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execve(payload, argv, environ);
      ::_exit(127);
    }
    reap(pid, state);
  }
}
BENCHMARK(fork_exec)->UseRealTime();

void vfork_exec(benchmark::State& state) {
  char* const argv[] = {const_cast<char*>(payload), nullptr};
  for (auto _ : state) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    pid_t pid = ::vfork();
#pragma GCC diagnostic pop
    if (pid == 0) {
      ::execve(payload, argv, environ);
      ::_exit(127);
    }
    reap(pid, state);
  }
}
BENCHMARK(vfork_exec)->UseRealTime();

void posix_spawn(benchmark::State& state) {
  char* const argv[] = {const_cast<char*>(payload), nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawn(&pid, payload, nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawn failed");
      break;
    }
    reap(pid, state);
  }
}
BENCHMARK(posix_spawn)->UseRealTime();

void container(benchmark::State& state, hutch::Namespaces namespaces) {
  const hutch::Container c = hutch::Container{}.command({payload}).namespaces(namespaces);
  for (auto _ : state) {
    auto status = c.run();
    if (!status || !status->success()) {
      state.SkipWithError(status ? "payload failed" : status.error().message().c_str());
      break;
    }
  }
}

using hutch::Namespace;
using hutch::Namespaces;
BENCHMARK_CAPTURE(container, no_namespaces, Namespaces::none())->UseRealTime();
BENCHMARK_CAPTURE(container, user, Namespaces::of({Namespace::user}))->UseRealTime();
BENCHMARK_CAPTURE(container, user_pid_mount_uts_ipc,
                  Namespaces::of({Namespace::user, Namespace::pid, Namespace::mount, Namespace::uts,
                                  Namespace::ipc}))
    ->UseRealTime();
BENCHMARK_CAPTURE(container, all_but_net, Namespaces::all().without(Namespace::net))->UseRealTime();
BENCHMARK_CAPTURE(container, all, Namespaces::all())->UseRealTime();

/// A root filesystem holding only the payload, made once in /tmp for the run and removed at
/// exit.
char payload_root_path[64];

const char* payload_root() {
  if (payload_root_path[0] == '\0') {
    std::snprintf(payload_root_path, sizeof payload_root_path, "/tmp/hutch-bench-XXXXXX");
    ::mkdtemp(payload_root_path);
    std::string dir = payload_root_path;
    std::filesystem::copy_file(payload, dir + "/true");
    ::chmod((dir + "/true").c_str(), 0755);
    ::chmod(payload_root_path, 0755);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(payload_root_path, ec);
    });
  }
  return payload_root_path;
}

void container_rootfs(benchmark::State& state, bool overlay, bool cgroup) {
  hutch::RootFs root = hutch::RootFs::directory(payload_root());
  if (overlay) root.overlay();
  hutch::Container c = hutch::Container{}
                           .command({"/true"})
                           .namespaces(Namespaces::all().without(Namespace::net))
                           .rootfs(root);
  if (cgroup) c.cgroup(hutch::CGroup{}.pids_max(64).memory_max(64 << 20));
  for (auto _ : state) {
    auto status = c.run();
    if (!status || !status->success()) {
      state.SkipWithError(status ? "payload failed" : status.error().message().c_str());
      break;
    }
  }
}
BENCHMARK_CAPTURE(container_rootfs, all_but_net_rootfs, false, false)->UseRealTime();
BENCHMARK_CAPTURE(container_rootfs, all_but_net_overlay, true, false)->UseRealTime();
BENCHMARK_CAPTURE(container_rootfs, all_but_net_overlay_cgroup, true, true)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
