// job_sandbox: a host program that runs untrusted jobs side by side, each in its own
// container with memory, CPU and pids limits, and collects their output, exit status and
// resource use. One job misbehaves on purpose (a fork bomb, a memory hog) to show that the
// limits hold and the others are not disturbed.
#include <fmt/core.h>

#include <string>
#include <thread>
#include <vector>

#include <hutch/hutch.hpp>

using namespace hutch::literals;

struct Job {
  std::string name;
  std::string script;
};

struct Result {
  std::string name;
  hutch::result<hutch::Output> output = hutch::Error{};
  hutch::CGroupStats stats;
};

int main() {
  const std::vector<Job> jobs = {
      {"sum", "seq 1 1000 | awk '{s+=$1} END {printf \"%d\\n\", s}'"},
      {"words", "echo the quick brown fox jumps over the lazy dog | wc -w"},
      {"fork-bomb", "for i in $(seq 100); do sleep 1 & done; echo all started"},
      {"memory-hog", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"},
  };
  // Limits for every job; cgroups need root (v1) or a delegated subtree (v2): without one
  // the jobs still run isolated, without limits.
  const auto limits = hutch::CGroup{}.memory_max(32_MiB).cpu_max(0.5).pids_max(16);
  const bool with_limits = [&] {
    auto probe = hutch::Container{}.command({"/bin/true"}).cgroup(limits).run();
    if (!probe) fmt::print("(running without limits: {})\n", probe.error());
    return bool(probe);
  }();

  std::vector<Result> results(jobs.size());
  std::vector<std::thread> workers;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    workers.emplace_back([&, i] {
      auto container = hutch::Container{}
                           .command({"/bin/sh", "-c", jobs[i].script})
                           .hostname("job-" + std::to_string(i))
                           .std_in(hutch::Stdio::null())
                           .std_out(hutch::Stdio::piped())
                           .std_err(hutch::Stdio::piped());
      if (with_limits) container.cgroup(limits);
      results[i].name = jobs[i].name;
      auto child = container.spawn();
      if (!child) {
        results[i].output = child.error();
        return;
      }
      results[i].output = child->wait_with_output();
      if (auto stats = child->stats()) results[i].stats = *stats;
    });
  }
  for (auto& w : workers) w.join();

  int failures = 0;
  for (const auto& r : results) {
    if (!r.output) {
      fmt::print("{:<11} failed to run: {}\n", r.name, r.output.error());
      ++failures;
      continue;
    }
    std::string out = r.output->std_out;
    if (!out.empty() && out.back() == '\n') out.pop_back();
    fmt::print("{:<11} {:<40} | {} | peak {:.1f} MiB, cpu {} ms\n", r.name, out, r.output->status,
               static_cast<double>(r.stats.memory_peak) / (1 << 20),
               (r.stats.cpu_user_us + r.stats.cpu_system_us) / 1000);
  }
  // The well-behaved jobs must have succeeded whatever the others did.
  const bool good = results[0].output && results[0].output->std_out == "500500\n" &&
                    results[1].output && results[1].output->std_out == "9\n";
  return good && failures == 0 ? 0 : 1;
}
