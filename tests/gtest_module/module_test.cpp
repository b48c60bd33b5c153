// hutch::gtest, checked from outside: runs the misbehaving isolated tests of cases.cpp and
// reads the runner's own GoogleTest report: each outcome with its cause, each failure at its
// file and line, nothing left on the host, and GoogleTest's shuffle, repeat and sharding.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include <hutch/cgroup.hpp>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string cases =
    std::getenv("HUTCH_GTEST_CASES") ? std::getenv("HUTCH_GTEST_CASES") : HUTCH_GTEST_CASES;

struct Outcome {
  std::string result;    // "COMPLETED", "SKIPPED"
  std::string failures;  // every failure's text, one after another
  int runs = 0;
  double seconds = 0;
};

struct CasesRun {
  int exit_code = -1;
  std::map<std::string, Outcome> tests;  // "Suite.Name"
};

class GTestModule : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/hutch-gtest-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    scratch_ = dir;
  }
  void TearDown() override { fs::remove_all(scratch_); }

  /// The cases binary with `args` and `env` ("K=V ..."); its report read back.
  CasesRun run(const std::string& args, const std::string& env = "") {
    const std::string report = scratch_ + "/report.json";
    const std::string command = fmt::format(
        "cd {} && env HUTCH_GTEST_MARKER={}/marker {} {} --gtest_output=json:{} {} "
        ">{}/output 2>&1",
        scratch_, scratch_, env, cases, report, args, scratch_);
    CasesRun out;
    const int status = std::system(command.c_str());
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(report);
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    for (const auto& suite : j.value("testsuites", json::array())) {
      for (const auto& t : suite.value("testsuite", json::array())) {
        Outcome& o = out.tests[suite.value("name", "") + "." + t.value("name", "")];
        o.result = t.value("result", "");
        o.runs += 1;
        o.seconds = std::atof(t.value("time", "0").c_str());
        for (const auto& f : t.value("failures", json::array()))
          o.failures += f.value("failure", "") + "\n";
      }
    }
    return out;
  }

  std::string output() const {
    std::ifstream in(scratch_ + "/output");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string scratch_;
};

bool can_limit() {
  auto layout = hutch::detail::host_layout();
  return ::geteuid() == 0 || (layout && layout->kind == hutch::CGroupLayout::unified);
}

/// The line of `text` in cases.cpp.
int line_of(const std::string& text) {
  std::ifstream in(HUTCH_GTEST_CASES_SOURCE);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.find(text) != std::string::npos) return n;
  }
  return 0;
}

}  // namespace

TEST_F(GTestModule, EachOutcomeComesBackWithItsCause) {
  char host_name_before[256] = {}, host_name_after[256] = {};
  ::gethostname(host_name_before, sizeof host_name_before);
  const CasesRun r = run("");
  ::gethostname(host_name_after, sizeof host_name_after);
  SCOPED_TRACE(output());
  EXPECT_EQ(r.exit_code, 1) << "some cases fail on purpose";
  auto passed = [&](const std::string& name) {
    ASSERT_TRUE(r.tests.count(name)) << name << " did not run";
    EXPECT_EQ(r.tests.at(name).failures, "") << name;
    EXPECT_EQ(r.tests.at(name).result, "COMPLETED") << name;
  };
  auto failed = [&](const std::string& name, const std::string& why) {
    ASSERT_TRUE(r.tests.count(name)) << name << " did not run";
    EXPECT_NE(r.tests.at(name).failures.find(why), std::string::npos)
        << name << ": " << r.tests.at(name).failures;
  };
  passed("Cases.Passes");
  // The inner failure, reported at its own file and line with GoogleTest's own message.
  failed("Cases.FailsAnExpectEq",
         fmt::format("{}:{}\n", HUTCH_GTEST_CASES_SOURCE, line_of("EXPECT_EQ(answer, 42)")));
  failed("Cases.FailsAnExpectEq", "Expected equality of these values");
  failed("Cases.FailsAnExpectEq", "the answer is off by one");
  failed("Cases.Segfaults", "SEGV");  // "SIGSEGV"; ASan's own report says "SEGV on"
  failed("Cases.HangsPastItsTimeout", "timed out after 500 ms");
  EXPECT_LT(r.tests.at("Cases.HangsPastItsTimeout").seconds, 10);
  if (can_limit()) {
    failed("Cases.ExhaustsMemory", "killed by the OOM killer");
    failed("Cases.ForkBombs", "the pids limit (16) refused");
    failed("Cases.ForkBombs", "forks were refused");
  } else {  // rootless on cgroup v1: limits cannot be had, and the test says so
    failed("Cases.ExhaustsMemory", "could not start");
    failed("Cases.ForkBombs", "could not start");
  }
  passed("Cases.LeavesProcessesBehindAndChangesItsHostname");
  passed("Cases.SeesNothingTheOthersLeft");
  passed("Cases.CannotWriteTheHost");
  EXPECT_FALSE(fs::exists(scratch_ + "/marker"));
  EXPECT_EQ(r.tests.at("Cases.SkipsItself").result, "SKIPPED");
  passed("Counter.FixtureRunsInside");
  passed("Counter.PlainTestsShareTheSuite");
  EXPECT_STREQ(host_name_after, host_name_before);
}

TEST_F(GTestModule, ShuffleAndRepeatKeepEachTestApart) {
  const CasesRun r =
      run("--gtest_shuffle --gtest_repeat=3 --gtest_filter=Cases.Leaves*:Cases.Sees*");
  SCOPED_TRACE(output());
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_TRUE(r.tests.count("Cases.SeesNothingTheOthersLeft"));
  EXPECT_EQ(r.tests.at("Cases.SeesNothingTheOthersLeft").failures, "");
}

TEST_F(GTestModule, ShardsSplitTheIsolatedTestsBetweenThem) {
  std::map<std::string, int> seen;
  for (int shard = 0; shard < 2; ++shard) {
    const CasesRun r = run("--gtest_filter=Cases.Passes:Cases.Sees*:Cases.Cannot*:Counter.*",
                           fmt::format("GTEST_TOTAL_SHARDS=2 GTEST_SHARD_INDEX={}", shard));
    EXPECT_EQ(r.exit_code, 0) << output();
    for (const auto& [name, outcome] : r.tests) {
      if (outcome.result != "SUPPRESSED") seen[name] += 1;
    }
  }
  EXPECT_EQ(seen.size(), 5u);
  for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << name << " ran in both shards";
}
