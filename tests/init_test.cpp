// Container::init: a tiny init as PID 1 that forwards signals, reaps orphans and exits with
// the command's status.
#include <signal.h>

#include <chrono>
#include <thread>

#include "support.hpp"

using namespace hutch_test;
using hutch::Container;
using hutch::RootFs;
using hutch::Stdio;

namespace {

Container with_init(std::vector<std::string> command) {
  return Container{}
      .command(std::move(command))
      .rootfs(RootFs::directory(busybox).overlay())
      .init();
}

/// The init's sealed copy is made once per process and kept: make it before a leak check.
void warm_up() {
  static const bool done = [] {
    (void)with_init({"true"}).run();
    return true;
  }();
  (void)done;
}

}  // namespace

TEST(Init, TheInitIsPid1AndTheCommandItsChild) {
  warm_up();
  LeakCheck leaks;
  auto out = run_ok(with_init({"sh", "-c", "echo $$ $PPID; tr '\\0' ' ' < /proc/1/cmdline"}));
  const auto got = lines(out);
  ASSERT_EQ(got.size(), 2u) << out;
  EXPECT_EQ(got[0], "2 1");
  EXPECT_EQ(got[1].rfind("hutch-init ", 0), 0u) << got[1];
}

TEST(Init, SignalsReachTheCommand) {
  warm_up();
  LeakCheck leaks;
  auto child =
      with_init({"sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done"})
          .std_out(Stdio::piped())
          .spawn();
  ASSERT_TRUE(child) << child.error().message();
  char ready[6];
  ASSERT_EQ(::read(child->stdout_pipe().get(), ready, 6), 6);
  ASSERT_TRUE(child->kill(SIGTERM));
  auto status = child->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 42) << fmt::format("{}", *status);
}

TEST(Init, OrphansAreReapedAndASignalDeathIs128PlusN) {
  warm_up();
  LeakCheck leaks;
  // The inner shell leaves a sleep behind: reparented to PID 1, which must reap it.
  auto out = run_ok(with_init({"sh", "-c",
                               "sh -c 'sleep 0.1 & exit'; sleep 0.5; "
                               "cat /proc/[0-9]*/stat | cut -d' ' -f3 | grep -c Z || true"}));
  EXPECT_EQ(out, "0\n") << "a zombie was left";
  auto killed = with_init({"sh", "-c", "kill -KILL $$"}).run();
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->code, 137) << fmt::format("{}", *killed);
}

TEST(Init, TheCommandsExecFailureIsReportedThroughTheInit) {
  warm_up();
  LeakCheck leaks;
  auto missing = with_init({"no-such-command"}).spawn();
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().step, hutch::Step::exec) << missing.error().message();
  EXPECT_NE(missing.error().message().find("not found in PATH"), std::string::npos)
      << missing.error().message();
  auto no_init = Container{}.command({"true"}).init("/no/such/init").spawn();
  ASSERT_FALSE(no_init);
  EXPECT_NE(no_init.error().message().find("/no/such/init"), std::string::npos)
      << no_init.error().message();
}
