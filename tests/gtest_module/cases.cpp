// Isolated tests that misbehave on purpose, for tests/gtest_module/module_test.cpp: each one
// fails, crashes, leaks or hangs in its own container, and its cause must come back while the
// next test and the runner see nothing of it. Some are meant to fail; the module test reads
// this binary's report to check each outcome.
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <hutch/testing/gtest.hpp>

using namespace hutch::literals;
using hutch::testing::Options;

HUTCH_ISOLATED_TEST(Cases, Passes) {
  EXPECT_EQ(::getpid(), 1) << "the test is its container's first process";
}

HUTCH_ISOLATED_TEST(Cases, FailsAnExpectEq) {
  const int answer = 41;
  EXPECT_EQ(answer, 42) << "the answer is off by one";
  EXPECT_TRUE(true);
}

HUTCH_ISOLATED_TEST(Cases, Segfaults) {
  // A fault, delivered even to a pid namespace's first process (a page no one maps; not a
  // null pointer, which UBSan would catch first).
  volatile std::uintptr_t nowhere = 8;
  *reinterpret_cast<volatile int*>(nowhere) = 1;
}

HUTCH_ISOLATED_TEST(Cases, ExhaustsMemory, Options{}.memory(32_MiB)) {
  std::vector<std::vector<char>> hog;
  for (int i = 0; i < 1024; ++i) hog.emplace_back(1 << 20, 'x');
  EXPECT_GT(hog.size(), 1024u);  // never reached: the OOM killer ends it first
}

HUTCH_ISOLATED_TEST(Cases, HangsPastItsTimeout, Options{}.timeout(std::chrono::milliseconds(500))) {
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

HUTCH_ISOLATED_TEST(Cases, ForkBombs, Options{}.pids(16)) {
  int made = 0;
  for (int i = 0; i < 64; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
    if (pid > 0) ++made;
  }
  EXPECT_EQ(made, 64) << "forks were refused";
}

HUTCH_ISOLATED_TEST(Cases, LeavesProcessesBehindAndChangesItsHostname,
                    Options{}.capabilities(hutch::Capabilities::all())) {
  for (int i = 0; i < 4; ++i) {
    if (::fork() == 0) {
      ::setsid();
      ::sleep(60);
      ::_exit(0);
    }
  }
  ASSERT_EQ(::sethostname("changed-by-a-test", 17), 0);
  // Fills its /tmp (a 64 MiB tmpfs by default) to the last byte.
  std::ofstream fill("/tmp/left-by-a-test");
  const std::string block(1 << 20, 'x');
  for (int i = 0; i < 128 && fill; ++i) fill << block << std::flush;
  EXPECT_FALSE(fill) << "/tmp never filled up";
}

HUTCH_ISOLATED_TEST(Cases, SeesNothingTheOthersLeft) {
  char name[256] = {};
  ::gethostname(name, sizeof name);
  EXPECT_STREQ(name, "isolated-test");
  EXPECT_FALSE(std::filesystem::exists("/tmp/left-by-a-test"));
  int processes = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string n = e.path().filename();
    processes += n.find_first_not_of("0123456789") == std::string::npos;
  }
  EXPECT_EQ(processes, 1) << "only the test itself runs in its container";
}

HUTCH_ISOLATED_TEST(Cases, SkipsItself) {
  GTEST_SKIP() << "skipped from inside";
}

HUTCH_ISOLATED_TEST(Cases, CannotWriteTheHost) {
  const char* marker = std::getenv("HUTCH_GTEST_MARKER");
  ASSERT_NE(marker, nullptr);
  EXPECT_FALSE(std::ofstream(marker).is_open()) << "the host's filesystem is read-only";
  EXPECT_TRUE(std::ofstream("/tmp/private").is_open()) << "/tmp is the test's own";
}

class Counter : public ::testing::Test {
 protected:
  void SetUp() override { set_up_in = ::getpid(); }
  void TearDown() override { EXPECT_EQ(::getpid(), set_up_in) << "TearDown runs where SetUp ran"; }
  pid_t set_up_in = 0;
};

HUTCH_ISOLATED_TEST_F(Counter, FixtureRunsInside) {
  EXPECT_EQ(set_up_in, 1) << "SetUp ran in the test's container";
}

TEST_F(Counter, PlainTestsShareTheSuite) {
  EXPECT_NE(set_up_in, 1) << "a plain TEST_F runs in the runner, as usual";
}
