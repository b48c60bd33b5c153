// gtest_isolation: run a GoogleTest test body in a container of its own, so a test that
// forks, leaks processes, changes its hostname, eats memory or crashes cannot touch the
// others or the test runner.
//
//   HUTCH_ISOLATED_TEST(Suite, Name) { ...a normal test body with EXPECT/ASSERT... }
//
// defines the test Suite.Name. When it runs, the test binary starts itself again inside a
// container (user, pid, mount, uts, ipc, net and cgroup namespaces; a cgroup with a pids and
// memory limit where the user may create one) running only the hidden test that holds the
// body. Its assertion failures come back as failures of Suite.Name; a crash comes back as a
// failure that names the signal. Use hutch_gtest::main() as the test binary's main().
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include <hutch/hutch.hpp>

namespace hutch_gtest {

inline constexpr const char* inside_marker = "HUTCH_GTEST_ISOLATED";

struct IsolatedRun {
  hutch::ExitStatus status;
  std::string output;  // the inner run's gtest output
};

/// Runs the (disabled) test `full_name` of this binary in its own container.
inline hutch::result<IsolatedRun> run_isolated(const std::string& full_name) {
  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof self - 1) < 0) {
    return hutch::last_error(hutch::Step::validate, "/proc/self/exe");
  }
  using namespace hutch::literals;
  auto container = hutch::Container{}
                       .command({self, "--gtest_filter=" + full_name,
                                 "--gtest_also_run_disabled_tests", "--gtest_color=no"})
                       .env(inside_marker, "1")
                       .hostname("isolated-test");
  auto limits = hutch::CGroup{}.pids_max(256).memory_max(512_MiB);
  auto out = hutch::Container(container).cgroup(limits).output();
  if (!out && out.error().step == hutch::Step::cgroup_create) out = container.output();
  if (!out) return out.error();
  return IsolatedRun{out->status, out->std_out + out->std_err};
}

/// Fails the current test with the inner run's failures unless it passed.
inline void expect_isolated_success(const std::string& full_name) {
  auto run = run_isolated(full_name);
  if (!run) {
    ADD_FAILURE() << "could not run " << full_name << " isolated: " << run.error().message();
    return;
  }
  if (run->status.success()) return;
  std::string failures;
  for (std::size_t at = 0; at < run->output.size();) {
    auto end = run->output.find('\n', at);
    std::string line = run->output.substr(at, end == std::string::npos ? end : end - at);
    if (line.find("Failure") != std::string::npos || line.rfind("  ", 0) == 0 ||
        line.rfind("Expected", 0) == 0 || line.rfind("Which is", 0) == 0 ||
        line.rfind("Value of", 0) == 0 || line.rfind("Actual", 0) == 0) {
      failures += line + "\n";
    }
    if (end == std::string::npos) break;
    at = end + 1;
  }
  ADD_FAILURE() << "isolated test " << fmt::format("{}", run->status) << ":\n"
                << (failures.empty() ? run->output : failures);
}

/// main() for a test binary with isolated tests.
inline int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

}  // namespace hutch_gtest

#define HUTCH_ISOLATED_TEST(Suite, Name)                                     \
  static void Suite##_##Name##_isolated_body();                              \
  TEST(Suite, DISABLED_##Name##_Body) {                                      \
    Suite##_##Name##_isolated_body();                                        \
  }                                                                          \
  TEST(Suite, Name) {                                                        \
    hutch_gtest::expect_isolated_success(#Suite ".DISABLED_" #Name "_Body"); \
  }                                                                          \
  static void Suite##_##Name##_isolated_body()
