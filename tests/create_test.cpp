// Container::create() and Created::start(): set up ahead, run on demand.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>

#include <filesystem>

#include "support.hpp"

using namespace hutch_test;
using hutch::Container;
using hutch::RootFs;
using hutch::Step;
namespace fs = std::filesystem;

namespace {

/// Whether `fd` has something to read (or end of file) within `ms` milliseconds.
bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0;
}

}  // namespace

// The command runs at start(), not before, in the container create() set up.
TEST(Create, TheCommandRunsAtStartInTheContainerCreateMade) {
  LeakCheck leaks;
  auto created = busybox_container({"sh", "-c", "echo pid $$; hostname; cat /etc/marker; cat"})
                     .hostname("made-ahead")
                     .std_in(hutch::Stdio::piped())
                     .std_out(hutch::Stdio::piped())
                     .create();
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_TRUE(alive(created->pid()));
  EXPECT_FALSE(readable(created->stdout_pipe().get(), 200)) << "nothing runs before start()";
  EXPECT_EQ(::prctl(PR_GET_DUMPABLE), 1) << "a waiting container leaves the host dumpable";
  // Input written before start() is there for the command.
  ASSERT_EQ(::write(created->stdin_pipe().get(), "early\n", 6), 6);
  created->stdin_pipe().reset();
  auto child = created->start();
  ASSERT_TRUE(child) << child.error().message();
  auto out = child->wait_with_output();
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_TRUE(out->status.success());
  EXPECT_EQ(out->std_out, "pid 1\nmade-ahead\nsnapshot\nearly\n");
}

// Spawns and runs go on while a created container waits; it starts afterwards.
TEST(Create, AWaitingContainerHoldsNothingUp) {
  LeakCheck leaks;
  auto created = busybox_container({"true"}).create();
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_EQ(run_ok(busybox_container({"echo", "meanwhile"})), "meanwhile\n");
  auto second = busybox_container({"echo", "second"}).std_out(hutch::Stdio::piped()).create();
  ASSERT_TRUE(second) << second.error().message();
  auto child = created->start();
  ASSERT_TRUE(child) << child.error().message();
  auto status = child->wait();
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->success());
  auto other = second->start();
  ASSERT_TRUE(other) << other.error().message();
  auto out = other->wait_with_output();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->std_out, "second\n");
}

// A failed setup step is create()'s error, and nothing is left.
TEST(Create, SetupFailuresComeFromCreateAndLeaveNothing) {
  LeakCheck leaks;
  auto created = busybox_container({"true"}).cwd("/no/such/dir").create();
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().step, Step::chdir) << created.error().message();
  EXPECT_EQ(created.error().errno_value(), ENOENT);
}

// exec's own failures are start()'s, the container is gone then, and it starts only once.
TEST(Create, ExecFailuresComeFromStartAndItStartsOnce) {
  LeakCheck leaks;
  // A command that is not there fails at once (as `runc create` fails).
  auto missing = busybox_container({"/no/such/command"}).create();
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().step, Step::exec) << missing.error().message();
  // One that is there but cannot run (its interpreter is missing) fails at start().
  char script[] = "/tmp/hutch-script-XXXXXX";
  const int fd = ::mkstemp(script);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "#!/no/such/interpreter\n", 23), 23);
  ::close(fd);
  ::chmod(script, 0755);
  auto created =
      Container{}
          .command({"/script"})
          .rootfs(RootFs::directory(busybox).overlay().bind(script, "/script", hutch::read_only))
          .create();
  ::unlink(script);
  ASSERT_TRUE(created) << created.error().message();
  const pid_t pid = created->pid();
  auto child = created->start();
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().step, Step::exec) << child.error().message();
  EXPECT_EQ(child.error().errno_value(), ENOENT);
  EXPECT_FALSE(alive(pid)) << "reaped";
  auto again = created->start();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().errno_value(), EALREADY) << again.error().message();
}

// Destroying a created container that never started kills it and removes its overlay
// scratch directory and its cgroup.
TEST(Create, DestroyingAnUnstartedContainerLeavesNothing) {
  LeakCheck leaks;
  const std::string name = fmt::format("hutch-{}-created", ::getpid());
  Container c = busybox_container({"true"});
  const bool with_cgroup =
      is_root() || (hutch::detail::host_layout() &&
                    hutch::detail::host_layout()->kind == hutch::CGroupLayout::unified);
  if (with_cgroup) c.cgroup(hutch::CGroup{name}.pids_max(16));
  auto created = c.create();
  if (!created && created.error().step >= Step::cgroup_detect &&
      created.error().step <= Step::cgroup_remove) {
    GTEST_SKIP() << "no cgroup here: " << created.error().message();
  }
  ASSERT_TRUE(created) << created.error().message();
  const pid_t pid = created->pid();
  const std::string scratch = created->scratch_dir();
  EXPECT_TRUE(fs::exists(scratch)) << scratch;
  std::vector<std::string> cgroups;
  if (with_cgroup) {
    for (const auto& h : hutch::detail::host_layout()->hierarchies) {
      if (fs::exists(h.own_dir() + "/" + name)) cgroups.push_back(h.own_dir() + "/" + name);
    }
    EXPECT_FALSE(cgroups.empty());
  }
  { auto gone = std::move(*created); }
  EXPECT_FALSE(alive(pid));
  EXPECT_FALSE(fs::exists(scratch)) << scratch;
  for (const auto& dir : cgroups) EXPECT_FALSE(fs::exists(dir)) << dir;
}

// A created container killed while it waited: start() fails, or (the kill still under way)
// gives a Child whose status says so. Nothing is left either way.
TEST(Create, AContainerKilledWhileItWaitedEndsCleanly) {
  LeakCheck leaks;
  auto created = busybox_container({"true"}).create();
  ASSERT_TRUE(created) << created.error().message();
  ASSERT_EQ(::kill(created->pid(), SIGKILL), 0);
  auto child = created->start();
  if (!child) {
    EXPECT_TRUE(child.error().step == Step::release_child ||
                child.error().step == Step::read_child_report)
        << child.error().message();
    return;
  }
  auto status = child->wait();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->signal, SIGKILL);
}
