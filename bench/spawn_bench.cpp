// Spawn latency and throughput: fork+exec, vfork+exec, posix_spawn and Container::spawn at
// each isolation level, each starting the same static payload and reaping it.
//
// Two payloads: a static glibc `true` and a no-libc one that only calls exit (what is left
// is the cost of starting a process). The host-size sweep runs with 0, 1 and 4 GiB of
// touched memory in this process (fork copies its page tables; a CLONE_VM spawn does not),
// kept from the first run that asks for it to the end of the process.
// The throughput benchmarks run 1, 2 and 8 spawning threads. The threaded_host rows measure
// fork+exec and a full-isolation spawn from a process that has run threads: glibc keeps their
// malloc arenas and stacks mapped, and fork copies them (a CLONE_VM spawn does not). Both
// leave the process changed for good, so bench/run-all gives each group a process of its own.
//
// The machine is shared and noisy: read ratios to fork_exec from the same run, and run with
// repetitions and random interleaving (bench/run-all does). bench/report turns the JSON into
// the tables and plots of BENCHMARKS.md.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <hutch/hutch.hpp>

#include "payload_root.hpp"

extern char** environ;

namespace {

using hutch::Namespace;
using hutch::Namespaces;

struct Payload {
  const char* name;
  const char* host;    // the binary on the host
  const char* inside;  // the same binary in the benchmark's root filesystem
};
const Payload glibc{"glibc", HUTCH_BENCH_TRUE, "/true"};
const Payload nolibc{"nolibc", HUTCH_BENCH_TRUE_NOLIBC, "/true-nolibc"};

/// The benchmarks' root filesystem, made at first use and removed at exit.
const std::string& payload_root() {
  static const PayloadRoot root{{glibc.host, glibc.inside + 1}, {nolibc.host, nolibc.inside + 1}};
  return root.path();
}

/// Makes this process hold `gib` GiB of touched anonymous memory in small pages (what a large
/// host program holds) and keeps it to the end of the process: touched once, as a host holds
/// its heap, not freed and touched again before every run, which measured the machine's
/// handling of gigabytes of fresh pages along with the spawn. False when a run asks for less
/// than the process already holds.
bool hold_host_memory(std::int64_t gib) {
  static std::int64_t held = 0;
  if (gib < held) return false;
  const std::size_t more = static_cast<std::size_t>(gib - held) << 30;
  if (more > 0) {
    void* base = ::mmap(nullptr, more, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) std::abort();
    ::madvise(base, more, MADV_NOHUGEPAGE);
    std::memset(base, 1, more);
    held = gib;
  }
  return true;
}

/// Skips a run whose host size this process cannot give any more.
bool host_size_ok(benchmark::State& state) {
  if (hold_host_memory(state.range(0))) return true;
  state.SkipWithError("this process already holds more memory: run the host_size rows alone");
  return false;
}

bool reap(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void fork_exec(benchmark::State& state, const Payload& p) {
  if (!host_size_ok(state)) return;
  char* const argv[] = {const_cast<char*>(p.host), nullptr};
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execve(p.host, argv, environ);
      ::_exit(127);
    }
    if (!reap(pid)) state.SkipWithError("payload failed");
  }
  state.SetItemsProcessed(state.iterations());
}

void vfork_exec(benchmark::State& state, const Payload& p) {
  char* const argv[] = {const_cast<char*>(p.host), nullptr};
  for (auto _ : state) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    pid_t pid = ::vfork();
#pragma GCC diagnostic pop
    if (pid == 0) {
      ::execve(p.host, argv, environ);
      ::_exit(127);
    }
    if (!reap(pid)) state.SkipWithError("payload failed");
  }
}

void posix_spawn_exec(benchmark::State& state, const Payload& p) {
  char* const argv[] = {const_cast<char*>(p.host), nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawn(&pid, p.host, nullptr, nullptr, argv, environ) != 0 || !reap(pid)) {
      state.SkipWithError("posix_spawn failed");
      break;
    }
  }
}

/// One isolation level: namespaces, then what is added on top of them.
struct Level {
  std::string name;
  Namespaces namespaces;
  bool rootfs = false, overlay = false, cgroup = false;
  bool network_made_ahead = false;  // Container::network_made_ahead: from hutch's reserve

  hutch::Container container(const Payload& p) const {
    hutch::Container c =
        hutch::Container{}.namespaces(namespaces).network_made_ahead(network_made_ahead);
    if (rootfs) {
      hutch::RootFs root = hutch::RootFs::directory(payload_root());
      if (overlay) root.overlay();
      c.rootfs(root).command({p.inside});
    } else {
      c.command({p.host});
    }
    if (cgroup) c.cgroup(hutch::CGroup{}.pids_max(64).memory_max(64 << 20));
    return c;
  }
};

std::vector<Level> levels() {
  const Namespaces all_but_net = Namespaces::all().without(Namespace::net);
  std::vector<Level> l = {{"none", Namespaces::none()}};
  for (auto [ns, name] : {std::pair{Namespace::user, "user"},
                          {Namespace::pid, "pid"},
                          {Namespace::mount, "mount"},
                          {Namespace::uts, "uts"},
                          {Namespace::ipc, "ipc"},
                          {Namespace::net, "net"},
                          {Namespace::cgroup, "cgroup"},
                          {Namespace::time, "time"}}) {
    l.push_back({name, Namespaces::of({ns})});
  }
  l.push_back({"all_but_net", all_but_net});
  l.push_back({"all", Namespaces::all()});
  l.push_back({"all_but_net+rootfs", all_but_net, true});
  l.push_back({"all_but_net+overlay", all_but_net, true, true});
  l.push_back({"full", all_but_net, true, true, true});
  l.push_back({"full+net", Namespaces::all(), true, true, true});
  // The network namespace made ahead on hutch's thread (it then belongs to the host's user
  // namespace): alone, and with full isolation.
  l.push_back({"net_made_ahead", Namespaces::of({Namespace::net}), false, false, false, true});
  l.push_back({"full+net_made_ahead", Namespaces::all(), true, true, true, true});
  return l;
}

Level level_named(const std::string& name) {
  for (const Level& l : levels()) {
    if (l.name == name) return l;
  }
  std::abort();
}

/// The level the targets name: user, pid, mount, uts, ipc and cgroup namespaces, id maps,
/// a new cgroup with limits, pivot_root into an overlay, /proc and /dev.
Level full_isolation() {
  return level_named("full");
}

void container(benchmark::State& state, const Level& level, const Payload& p) {
  if (!host_size_ok(state)) return;
  const hutch::Container c = level.container(p);
  for (auto _ : state) {
    auto status = c.run();
    if (!status || !status->success()) {
      state.SkipWithError(status ? "payload failed" : status.error().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

/// Makes this process one that has run threads, once: eight threads that allocate and end,
/// as the throughput rows' threads do (and as most host programs' do).
void become_threaded_host() {
  static const bool done = [] {
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([] {
        std::vector<char> buffer(64 << 10);
        benchmark::DoNotOptimize(buffer.data());
      });
    }
    for (auto& t : threads) t.join();
    return true;
  }();
  (void)done;
}

/// Container::create() ahead (not timed), then start() + wait: what a host that prepares its
/// containers before it needs them waits for.
void created(benchmark::State& state, const Level& level, const Payload& p) {
  const hutch::Container c = level.container(p);
  for (auto _ : state) {
    state.PauseTiming();
    auto prepared = c.create();
    state.ResumeTiming();
    if (!prepared) {
      state.SkipWithError(prepared.error().message().c_str());
      break;
    }
    auto child = prepared->start();
    auto status = child ? child->wait() : hutch::result<hutch::ExitStatus>(child.error());
    if (!status || !status->success()) {
      state.SkipWithError(status ? "payload failed" : status.error().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

/// Spawn + wait with the machine left idle for a few milliseconds between spawns (not timed):
/// a host that starts a sandbox now and then. What is made ahead has had the time to be made
/// and the last container's teardown is over, unlike in the back-to-back rows, where the
/// kernel's work for the next and the last container runs beside each spawn. A null level is
/// fork + exec, spaced alike.
void spaced(benchmark::State& state, const Level* level, const Payload& p) {
  std::optional<hutch::Container> c;
  if (level) c = level->container(p);
  char* const argv[] = {const_cast<char*>(p.host), nullptr};
  for (auto _ : state) {
    state.PauseTiming();
    std::this_thread::sleep_for(std::chrono::milliseconds(4));
    state.ResumeTiming();
    if (!c) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::execve(p.host, argv, environ);
        ::_exit(127);
      }
      if (!reap(pid)) state.SkipWithError("payload failed");
      continue;
    }
    auto status = c->run();
    if (!status || !status->success()) {
      state.SkipWithError(status ? "payload failed" : status.error().message().c_str());
      break;
    }
  }
}

/// hutch::Pool, one per level and payload, of `pool_size` kept full on hutch's pool thread;
/// a row's threads share it. Made at first use, kept to the end of the process (the pool
/// thread then lives in it: bench/run-all runs these rows in a process of their own).
constexpr std::size_t pool_size = 4;
hutch::Pool& pool_for(const Level& level, const Payload& p) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<hutch::Pool>> pools;
  std::lock_guard lock(mutex);
  auto& slot = pools[level.name + "/" + p.name];
  if (!slot) slot = std::make_unique<hutch::Pool>(level.container(p), pool_size);
  return *slot;
}

/// Pool::spawn + wait with a spare ready (the pool is let fill between runs, not timed): what
/// a host with hot spares waits for. `sustained`: no pause, so the rate is also bounded by
/// how fast the pool thread makes containers (the throughput rows).
void pooled(benchmark::State& state, const Level& level, const Payload& p, bool sustained) {
  hutch::Pool& pool = pool_for(level, p);
  if (auto filled = pool.fill(); !filled) {
    state.SkipWithError(filled.error().message().c_str());
    return;
  }
  for (auto _ : state) {
    if (!sustained) {
      state.PauseTiming();
      (void)pool.fill();
      state.ResumeTiming();
    }
    auto child = pool.spawn();
    auto status = child ? child->wait() : hutch::result<hutch::ExitStatus>(child.error());
    if (!status || !status->success()) {
      state.SkipWithError(status ? "payload failed" : status.error().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  auto time = [](benchmark::internal::Benchmark* b) {
    return b->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  for (const Payload* p : {&glibc, &nolibc}) {
    const std::string suffix = std::string("/") + p->name;
    time(benchmark::RegisterBenchmark(("fork_exec" + suffix).c_str(), fork_exec, *p))
        ->ArgName("host_gib")
        ->Arg(0);
    time(benchmark::RegisterBenchmark(("vfork_exec" + suffix).c_str(), vfork_exec, *p));
    time(benchmark::RegisterBenchmark(("posix_spawn" + suffix).c_str(), posix_spawn_exec, *p));
    for (const Level& level : levels()) {
      time(benchmark::RegisterBenchmark(("container/" + level.name + suffix).c_str(), container,
                                        level, *p))
          ->ArgName("host_gib")
          ->Arg(0);
    }
    for (const Level& level : {levels().front(), full_isolation(), level_named("full+net"),
                               level_named("full+net_made_ahead")}) {
      time(benchmark::RegisterBenchmark(("created/" + level.name + suffix).c_str(), created, level,
                                        *p));
    }
  }
  // Spaced spawns (their own process in bench/run-all: the reserve's thread stays).
  static const std::vector<Level> spaced_levels = {full_isolation(), level_named("full+net"),
                                                   level_named("full+net_made_ahead")};
  time(benchmark::RegisterBenchmark("spaced/fork_exec/glibc", spaced, nullptr, glibc));
  for (const Level& level : spaced_levels) {
    time(benchmark::RegisterBenchmark(("spaced/container/" + level.name + "/glibc").c_str(), spaced,
                                      &level, glibc));
  }
  // Throughput by the number of spawning threads.
  for (int threads : {1, 2, 8}) {
    time(benchmark::RegisterBenchmark("throughput/fork_exec/glibc", fork_exec, glibc))
        ->Arg(0)
        ->Threads(threads);
    time(benchmark::RegisterBenchmark("throughput/container/full/glibc", container,
                                      full_isolation(), glibc))
        ->Arg(0)
        ->Threads(threads);
  }
  // hutch::Pool: take + start + wait, and sustained throughput by spawning threads (their
  // own process in bench/run-all: the pool thread stays).
  for (const Level& level :
       {full_isolation(), level_named("full+net"), level_named("full+net_made_ahead")}) {
    time(benchmark::RegisterBenchmark(("pool/" + level.name + "/glibc").c_str(), pooled, level,
                                      glibc, false));
  }
  for (int threads : {1, 2, 8}) {
    time(benchmark::RegisterBenchmark("pool_throughput/full/glibc", pooled, full_isolation(), glibc,
                                      true))
        ->Threads(threads);
  }
  // From a process that has run threads (their own process in bench/run-all).
  for (const Payload* p : {&glibc, &nolibc}) {
    const std::string suffix = std::string("/") + p->name;
    time(benchmark::RegisterBenchmark(("threaded_host/fork_exec" + suffix).c_str(),
                                      [](benchmark::State& state, const Payload& payload) {
                                        become_threaded_host();
                                        fork_exec(state, payload);
                                      },
                                      *p))
        ->Arg(0);
    time(benchmark::RegisterBenchmark(("threaded_host/container/full" + suffix).c_str(),
                                      [](benchmark::State& state, const Payload& payload) {
                                        become_threaded_host();
                                        container(state, full_isolation(), payload);
                                      },
                                      *p))
        ->Arg(0);
  }
  // Latency by the host's size, smallest first: memory once held is kept, so these rows run
  // last, or one size per process (bench/run-all). The container before fork+exec: a fork of
  // a large host leaves the kernel freeing the page tables it copied.
  for (int gib : {0, 1, 4}) {
    time(benchmark::RegisterBenchmark("host_size/container/full/glibc", container, full_isolation(),
                                      glibc))
        ->ArgName("host_gib")
        ->Arg(gib);
    time(benchmark::RegisterBenchmark("host_size/fork_exec/glibc", fork_exec, glibc))
        ->ArgName("host_gib")
        ->Arg(gib);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
