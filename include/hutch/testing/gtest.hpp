// hutch::gtest — GoogleTest tests that each run in a container of their own.
//
//   HUTCH_ISOLATED_TEST(Suite, Name) { ...a test body with EXPECT/ASSERT... }
//   HUTCH_ISOLATED_TEST_F(Fixture, Name, hutch::testing::Options{}.memory(64_MiB)) { ... }
//
// When such a test runs, the test binary starts itself again in a container (its own pid,
// mount, uts, ipc, net and user namespaces; the host's filesystem read-only with a private
// /tmp, or a root of the caller's; the limits asked) running only that test, fixture SetUp and
// TearDown included. The inner run writes GoogleTest's own JSON report to a descriptor passed
// in, and each of its failures is reported again in the outer run at its own file and line.
// A crash reports the signal; an OOM kill, a timeout and the pids limit each report their
// cause. Whatever the test does to its processes, hostname, /tmp or network stays in its
// container. The test is its pid namespace's first process: a signal it sends itself with
// the default action (raise(SIGTERM)) is ignored, as for any init; faults still kill it.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../hutch.hpp"
#include "sandbox.hpp"

namespace hutch::testing {

/// The options of isolated tests that name none; set them before RUN_ALL_TESTS.
inline Options& default_options() {
  static Options options;
  return options;
}

namespace detail {

/// The variable that tells the inner run which test it is.
inline constexpr const char* inside_variable = "HUTCH_GTEST_ISOLATED";

inline std::string current_test() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info ? std::string(info->test_suite_name()) + "." + info->name() : std::string();
}

/// Whether this process is the inner run of the current test.
inline bool inside() {
  const char* which = std::getenv(inside_variable);
  return which && current_test() == which;
}

inline Options options_of() {
  return default_options();
}
inline Options options_of(Options o) {
  return o;
}

/// One failure of the inner run: where, and what GoogleTest said.
struct Failure {
  std::string file;
  int line = 0;
  std::string message;
};

/// The inner run's outcome, read from GoogleTest's JSON report.
struct Report {
  bool found = false, skipped = false;
  std::string skip_message;
  std::vector<Failure> failures;
};

/// GoogleTest's JSON report: testsuites[].testsuite[] with "result" and failures[].failure,
/// whose text starts "file:line\n" (GoogleTest's own format) and whose "type" is empty or
/// "skip" for GTEST_SKIP's message.
inline Report parse_report(const std::string& text, const std::string& test) {
  Report out;
  try {
    const auto json = nlohmann::json::parse(text);
    for (const auto& suite : json.value("testsuites", nlohmann::json::array())) {
      for (const auto& t : suite.value("testsuite", nlohmann::json::array())) {
        if (suite.value("name", "") + "." + t.value("name", "") != test) continue;
        out.found = true;
        out.skipped = t.value("result", "") == "SKIPPED";
        for (const auto& f : t.value("failures", nlohmann::json::array())) {
          std::string message = f.value("failure", "");
          if (f.value("type", "") == "skip") {
            out.skip_message = message;
            continue;
          }
          Failure failure;
          const auto newline = message.find('\n');
          const std::string where = message.substr(0, newline);
          const auto colon = where.rfind(':');
          if (colon != std::string::npos && colon + 1 < where.size() &&
              where.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
            failure.file = where.substr(0, colon);
            failure.line = std::atoi(where.c_str() + colon + 1);
            message = newline == std::string::npos ? "" : message.substr(newline + 1);
          }
          failure.message = message;
          out.failures.push_back(std::move(failure));
        }
      }
    }
  } catch (const nlohmann::json::exception&) {
    out.found = false;
  }
  return out;
}

/// All of a memfd's contents.
inline std::string read_all(int fd) {
  std::string text;
  char buffer[8192];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buffer, sizeof buffer, at);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    at += n;
  }
  return text;
}

/// The last lines of the inner run's output, for failures it could not report itself.
inline std::string tail(const std::string& text, std::size_t lines = 30) {
  std::size_t at = text.size();
  for (std::size_t n = 0; at > 0 && n <= lines; ++n) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) return text;
  }
  return text.substr(at + 1);
}

/// Runs the current test in its own container and reports its outcome as the current test's.
inline void run_outside(const Options& options) {
  const std::string test = current_test();
  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof self - 1) < 0) {
    ADD_FAILURE() << "hutch: cannot find this test binary (/proc/self/exe)";
    return;
  }
  // The report and the output go to memory files: nothing to drain while the test runs,
  // so a test that writes much never blocks on a full pipe.
  Fd report(::memfd_create("hutch-gtest-report", MFD_CLOEXEC));
  Fd output(::memfd_create("hutch-gtest-output", MFD_CLOEXEC));
  if (!report || !output) {
    ADD_FAILURE() << "hutch: memfd_create for the test's report failed: " << std::strerror(errno);
    return;
  }
  std::vector<std::string> command = {self, "--gtest_filter=" + test,
                                      "--gtest_output=json:/proc/self/fd/3", "--gtest_color=no"};
  if (test.find(".DISABLED_") != std::string::npos) {
    command.push_back("--gtest_also_run_disabled_tests");
  }
  // The inner GoogleTest must not shard, write reports elsewhere or pick other tests.
  auto gtest_variable = [](std::string_view key) {
    return key.starts_with("GTEST_") || key == "XML_OUTPUT_FILE" || key == "TEST_SHARD_INDEX" ||
           key == "TEST_TOTAL_SHARDS" || key == "TEST_SHARD_STATUS_FILE" || key == inside_variable;
  };
  const HostView view;
  auto sandboxed = sandbox(options, std::move(command), view, gtest_variable);
  if (!sandboxed) {
    ADD_FAILURE() << "hutch: could not prepare " << test << ": " << sandboxed.error().message();
    return;
  }
  Container& c = *sandboxed;
  c.env(inside_variable, test)
      .pass_fd(report.get(), 3)
      .std_in(Stdio::null())
      .std_out(Stdio::fd(output.get()))
      .std_err(Stdio::fd(output.get()));
  auto child = c.spawn();
  if (!child) {
    ADD_FAILURE() << "hutch: could not start " << test
                  << " in its container: " << child.error().message();
    return;
  }
  bool timed_out = false;
  if (auto limit = options.timeout()) {
    auto done = child->wait_for(*limit);
    if (done && !*done) {
      timed_out = true;
      (void)child->kill(SIGKILL);
    }
  }
  auto waited = child->wait();
  if (!waited) {
    ADD_FAILURE() << "hutch: waiting for " << test << ": " << waited.error().message();
    return;
  }
  const ExitStatus status = *waited;
  const auto stats = child->stats();
  const Report result = parse_report(read_all(report.get()), test);

  std::vector<std::string> causes;
  if (timed_out) causes.push_back(fmt::format("timed out after {} ms", options.timeout()->count()));
  if (status.oom_killed) causes.push_back("killed by the OOM killer (the memory limit)");
  if (stats && stats->pids_limit_hits > 0) {
    causes.push_back(fmt::format("the pids limit ({}) refused {} fork(s)",
                                 options.pids().value_or(0), stats->pids_limit_hits));
  }
  for (const Failure& f : result.failures) {
    if (f.file.empty()) {
      ADD_FAILURE() << f.message;
    } else {
      ADD_FAILURE_AT(f.file.c_str(), f.line) << f.message;
    }
  }
  if (status.success() && result.found) {
    if (result.skipped) {
      GTEST_SKIP() << (result.skip_message.empty() ? "skipped in its container"
                                                   : result.skip_message);
    }
    return;
  }
  if (!status.success() && !timed_out && !status.oom_killed && status.signaled()) {
    causes.insert(causes.begin(), fmt::format("{}", status));
  }
  if (!result.failures.empty() && causes.empty()) return;
  if (causes.empty()) causes.push_back(fmt::format("{} without a report", status));
  std::string why;
  for (const auto& cause : causes) why += (why.empty() ? "" : "; ") + cause;
  ADD_FAILURE() << "isolated test " << test << ": " << why << "\n" << tail(read_all(output.get()));
}

}  // namespace detail
}  // namespace hutch::testing

#define HUTCH_ISOLATED_CLASS_(Suite, Name) Suite##_##Name##_HutchIsolated

// The class derives from the fixture; its SetUp and TearDown run only in the inner run, and
// its body either runs the test's (inside) or the container (outside). RegisterTest keeps
// the fixture's type, so isolated and plain TEST_Fs may share a suite.
#define HUTCH_ISOLATED_TEST_(Suite, Name, Parent, ...)                                            \
  class HUTCH_ISOLATED_CLASS_(Suite, Name) : public Parent {                                      \
   public:                                                                                        \
    void SetUp() override {                                                                       \
      if (::hutch::testing::detail::inside()) Parent::SetUp();                                    \
    }                                                                                             \
    void TearDown() override {                                                                    \
      if (::hutch::testing::detail::inside()) Parent::TearDown();                                 \
    }                                                                                             \
    void TestBody() override {                                                                    \
      if (::hutch::testing::detail::inside()) {                                                   \
        isolated_body();                                                                          \
      } else {                                                                                    \
        ::hutch::testing::detail::run_outside(::hutch::testing::detail::options_of(__VA_ARGS__)); \
      }                                                                                           \
    }                                                                                             \
    void isolated_body();                                                                         \
  };                                                                                              \
  [[maybe_unused]] static const bool Suite##_##Name##_hutch_registered =                          \
      (::testing::RegisterTest(                                                                   \
           #Suite, #Name, nullptr, nullptr, __FILE__, __LINE__,                                   \
           []() -> Parent* { return new HUTCH_ISOLATED_CLASS_(Suite, Name); }),                   \
       true);                                                                                     \
  void HUTCH_ISOLATED_CLASS_(Suite, Name)::isolated_body()

/// A test whose body runs in a container of its own; an optional third argument gives its
/// hutch::testing::Options (default_options() otherwise).
#define HUTCH_ISOLATED_TEST(Suite, Name, ...) \
  HUTCH_ISOLATED_TEST_(Suite, Name, ::testing::Test, __VA_ARGS__)

/// The same for a fixture: its SetUp and TearDown (protected or public) run inside too.
#define HUTCH_ISOLATED_TEST_F(Fixture, Name, ...) \
  HUTCH_ISOLATED_TEST_(Fixture, Name, Fixture, __VA_ARGS__)
