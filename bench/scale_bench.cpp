// Scale and churn, at full isolation (user, pid, mount, uts, ipc and cgroup namespaces, an
// overlay root, a cgroup with limits):
//
//   hutch_scale_bench idle [N]            N (1000) idle containers alive at once: the spawn
//                                         latency of the first and the last, what each live
//                                         Child costs the host program, the memory each
//                                         container is charged with, and the teardown.
//   hutch_scale_bench churn [N] [THREADS] N (10000) containers started and reaped by THREADS
//                                         (2) threads: the rate, and whether the teardown kept
//                                         up (dying cgroups, mounts, scratch dirs afterwards).
//
// Prints `key value` lines (bench/report reads them). Needs root (cgroups).
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <hutch/hutch.hpp>

#include "payload_root.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

/// A field of /proc/self/status or /proc/meminfo, in KiB.
long kib(const char* file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

long open_fds() {
  long n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

/// num_cgroups per v1 controller (/proc/cgroups counts cgroups the kernel has not freed yet,
/// dying ones included).
std::map<std::string, long> cgroup_counts() {
  std::map<std::string, long> counts;
  std::ifstream in("/proc/cgroups");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string name;
    long hierarchy = 0, count = 0;
    if (f >> name >> hierarchy >> count && hierarchy != 0) counts[name] = count;
  }
  return counts;
}

long mount_count() {
  std::ifstream in("/proc/self/mountinfo");
  long n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

long scratch_dirs() {
  long n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/tmp", ec)) {
    if (e.path().filename().string().rfind("hutch-", 0) == 0) ++n;
  }
  return n;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

hutch::Container full_isolation(const PayloadRoot& root, const char* command) {
  return hutch::Container{}
      .command({command})
      .namespaces(hutch::Namespaces::all().without(hutch::Namespace::net))
      .rootfs(hutch::RootFs::directory(root.path()).overlay())
      .cgroup(hutch::CGroup{}.pids_max(16).memory_max(64 << 20));
}

void print(const char* key, double value) {
  std::printf("%-40s %.3f\n", key, value);
}

int idle(int n) {
  const PayloadRoot root{{HUTCH_BENCH_TRUE, "true"}, {HUTCH_BENCH_IDLE, "idle"}};
  const hutch::Container c = full_isolation(root, "/idle");
  const long rss0 = kib("/proc/self/status", "VmRSS"), fds0 = open_fds();
  const long avail0 = kib("/proc/meminfo", "MemAvailable"), slab0 = kib("/proc/meminfo", "Slab");
  const std::size_t heap0 = ::mallinfo2().uordblks;
  std::vector<hutch::Child> children;
  children.reserve(static_cast<std::size_t>(n));
  std::vector<double> latency;
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    auto child = c.spawn();
    latency.push_back(ms_since(t));
    if (!child) {
      std::fprintf(stderr, "container %d: %s\n", i, child.error().message().c_str());
      return 1;
    }
    children.push_back(std::move(*child));
  }
  const double spawn_all = ms_since(start);
  const long rss1 = kib("/proc/self/status", "VmRSS"), fds1 = open_fds();
  const long avail1 = kib("/proc/meminfo", "MemAvailable"), slab1 = kib("/proc/meminfo", "Slab");
  const std::size_t heap1 = ::mallinfo2().uordblks;
  double charged = 0;
  for (const auto& child : children) {
    auto stats = child.stats();
    if (stats) charged += static_cast<double>(stats->memory_current);
  }
  const auto teardown = Clock::now();
  children.clear();
  hutch::settle();
  const double teardown_ms = ms_since(teardown);

  const std::size_t k = std::min<std::size_t>(20, latency.size());
  const double first = median({latency.begin(), latency.begin() + static_cast<long>(k)});
  const double last = median({latency.end() - static_cast<long>(k), latency.end()});
  print("containers", n);
  print("spawn_all_ms", spawn_all);
  print("first_20_median_ms", first);
  print("last_20_median_ms", last);
  print("last_over_first", last / first);
  print("host_rss_per_child_kib", static_cast<double>(rss1 - rss0) / n);
  print("host_heap_per_child_bytes", static_cast<double>(heap1 - heap0) / n);
  print("host_fds_per_child", static_cast<double>(fds1 - fds0) / n);
  print("sizeof_child_bytes", sizeof(hutch::Child));
  print("cgroup_charged_per_container_kib", charged / 1024 / n);
  print("machine_memory_per_container_kib", static_cast<double>(avail0 - avail1) / n);
  print("slab_per_container_kib", static_cast<double>(slab1 - slab0) / n);
  print("teardown_all_ms", teardown_ms);
  return 0;
}

int churn(int n, int threads) {
  const PayloadRoot root{{HUTCH_BENCH_TRUE, "true"}, {HUTCH_BENCH_IDLE, "idle"}};
  const hutch::Container c = full_isolation(root, "/true");
  const auto cgroups0 = cgroup_counts();
  const long mounts0 = mount_count(), scratch0 = scratch_dirs();
  std::atomic<int> next{0}, failed{0};
  const auto start = Clock::now();
  std::vector<std::thread> spawners;
  for (int t = 0; t < threads; ++t) {
    spawners.emplace_back([&] {
      while (next.fetch_add(1) < n) {
        auto status = c.run();
        if (!status || !status->success()) ++failed;
      }
    });
  }
  for (auto& t : spawners) t.join();
  hutch::settle();  // the janitor's last cgroup removals
  const double elapsed = ms_since(start);

  // Right after the last wait: what is still left, then how long the kernel takes to free
  // the cgroups it is still tearing down.
  auto excess = [&] {
    long most = 0;
    for (const auto& [name, count] : cgroup_counts()) {
      auto before = cgroups0.find(name);
      most = std::max(most, count - (before == cgroups0.end() ? 0 : before->second));
    }
    return most;
  };
  const long dying_at_end = excess();
  const auto drain = Clock::now();
  while (excess() > 0 && ms_since(drain) < 60000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  print("containers", n);
  print("threads", threads);
  print("failed", failed.load());
  print("containers_per_second", n / (elapsed / 1000));
  print("dying_cgroups_at_end", static_cast<double>(dying_at_end));
  print("dying_cgroups_drained_ms", ms_since(drain));
  print("dying_cgroups_left", static_cast<double>(excess()));
  print("mounts_left", static_cast<double>(mount_count() - mounts0));
  print("scratch_dirs_left", static_cast<double>(scratch_dirs() - scratch0));
  return failed.load() == 0 && excess() == 0 && mount_count() == mounts0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // One pidfd per live container: lift the soft limit on descriptors to the hard one.
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "idle") return idle(argc > 2 ? std::atoi(argv[2]) : 1000);
  if (mode == "churn") {
    return churn(argc > 2 ? std::atoi(argv[2]) : 10000, argc > 3 ? std::atoi(argv[3]) : 2);
  }
  std::fprintf(stderr, "usage: %s idle [N] | churn [N] [THREADS]\n", argv[0]);
  return 2;
}
