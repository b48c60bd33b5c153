// gtest_isolation: tests that would spoil a shared test process, each run in a container of
// its own (see gtest_isolation.hpp).
#include "gtest_isolation.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

namespace {

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

// Changes process-wide state: an environment variable, the working directory, the umask.
HUTCH_ISOLATED_TEST(Isolation, ChangesGlobalState) {
  ::setenv("SPOILED", "yes", 1);
  ASSERT_EQ(::chdir("/"), 0);
  ::umask(0);
  EXPECT_STREQ(std::getenv("SPOILED"), "yes");
}

// Sees nothing of the other tests: no stray processes, its own hostname, a clean state.
HUTCH_ISOLATED_TEST(Isolation, StartsClean) {
  char name[64] = {};
  ::gethostname(name, sizeof name - 1);
  EXPECT_STREQ(name, "isolated-test");
  EXPECT_EQ(std::getenv("SPOILED"), nullptr);
  int others = 0;
  for (int pid = 2; pid < 64; ++pid) others += ::kill(pid, 0) == 0;
  EXPECT_EQ(others, 0) << "processes from other tests are visible";
}

// A body that crashes, and one that fails an assertion; run by the checks below, not as
// tests of their own.
// (A body runs as PID 1 of its namespace, which the kernel shields from signals it sends
// itself without a handler, such as abort()'s SIGABRT; a fault still ends it.)
TEST(Isolation, DISABLED_Crashes_Body) {
  volatile int* nowhere = nullptr;
  *nowhere = 1;
}
TEST(Isolation, DISABLED_Fails_Body) {
  EXPECT_EQ(1 + 1, 3) << "arithmetic";
}

TEST(Isolation, ACrashComesBackAsAFailureNotAsADeadRunner) {
  auto run = hutch_gtest::run_isolated("Isolation.DISABLED_Crashes_Body");
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_EQ(run->status.signal, SIGSEGV);
}

TEST(Isolation, AssertionFailuresComeBack) {
  auto run = hutch_gtest::run_isolated("Isolation.DISABLED_Fails_Body");
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_EQ(run->status.code, 1);
  EXPECT_NE(run->output.find("arithmetic"), std::string::npos) << run->output;
}

}  // namespace

int main(int argc, char** argv) {
  return hutch_gtest::main(argc, argv);
}
