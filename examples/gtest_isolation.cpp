// gtest_isolation: tests that would spoil a shared test process, each run in a container of
// its own with hutch::gtest (hutch/testing/gtest.hpp). Link hutch::gtest and GTest::gtest_main.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include <hutch/testing/gtest.hpp>

using namespace std::chrono_literals;

// Leaves a daemon behind: in its own pid namespace it dies with the test.
HUTCH_ISOLATED_TEST(Isolation, LeavesAProcessBehind) {
  pid_t daemon = ::fork();
  if (daemon == 0) {
    ::setsid();
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(daemon, 0);
  EXPECT_EQ(::getpid(), 1) << "the test body runs as PID 1 of its own pid namespace";
}

// Changes process-wide state (environment, working directory, umask) and fills its /tmp,
// within a timeout.
HUTCH_ISOLATED_TEST(Isolation, ChangesGlobalState, hutch::testing::Options{}.timeout(10s)) {
  ::setenv("SPOILED", "yes", 1);
  ASSERT_EQ(::chdir("/"), 0);
  ::umask(0);
  EXPECT_EQ(std::system("dd if=/dev/zero of=/tmp/filler bs=1M count=8 2>/dev/null"), 0);
}

// Sees nothing of the other tests: no stray processes, its own hostname, a clean /tmp.
HUTCH_ISOLATED_TEST(Isolation, StartsClean) {
  char name[64] = {};
  ::gethostname(name, sizeof name - 1);
  EXPECT_STREQ(name, "isolated-test");
  EXPECT_EQ(std::getenv("SPOILED"), nullptr);
  EXPECT_NE(::access("/tmp/filler", F_OK), 0);
  int others = 0;
  for (int pid = 2; pid < 64; ++pid) others += ::kill(pid, 0) == 0;
  EXPECT_EQ(others, 0) << "processes from other tests are visible";
}
