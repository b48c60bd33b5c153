// CGroup: limits enforced on real processes, accounting, placement, and clean removal.
// On this project's CI machines cgroups are v1 (hybrid); the same tests run against v2 on a
// v2 kernel.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>

#include <sys/stat.h>
#include <chrono>

#include <filesystem>
#include <stdexcept>
#include <thread>

#include "support.hpp"

using namespace hutch_test;
using namespace hutch::literals;
using hutch::CGroup;
using hutch::Container;
using hutch::Namespace;
using hutch::Namespaces;
using hutch::Step;
namespace fs = std::filesystem;

namespace {

/// A cgroup name of this test process (ctest runs test processes side by side).
std::string unique(const std::string& name) {
  return fmt::format("hutch-{}-{}", ::getpid(), name);
}

/// Every cgroup directory this test process may have created (named "hutch-<pid>-..."),
/// below the cgroups it is in, in every hierarchy.
std::vector<std::string> hutch_cgroups() {
  const std::string prefix = fmt::format("hutch-{}-", ::getpid());
  std::vector<std::string> found;
  auto layout = hutch::detail::host_layout();
  if (!layout) return found;
  for (const auto& h : layout->hierarchies) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(h.own_dir(), ec)) {
      if (e.is_directory() && e.path().filename().string().rfind(prefix, 0) == 0) {
        found.push_back(e.path());
      }
    }
  }
  return found;
}

class CGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root() && hutch::detail::host_layout() &&
        hutch::detail::host_layout()->kind != hutch::CGroupLayout::unified) {
      GTEST_SKIP() << "cgroup v1 needs root (runs as root in CI)";
    }
    before_ = hutch_cgroups();
  }
  void TearDown() override {
    if (!IsSkipped()) {
      hutch::settle();  // unnamed cgroups are removed on a background thread
      EXPECT_EQ(hutch_cgroups(), before_) << "a cgroup was left behind";
    }
  }
  std::vector<std::string> before_;
};

TEST_F(CGroupTest, PidsMaxStopsAForkLoop) {
  LeakCheck leaks;
  auto out = run_ok(probe_container({"fork", "50"}).cgroup(CGroup{unique("pids")}.pids_max(10)));
  EXPECT_EQ(out, "forked 9 EAGAIN\n");  // PID 1 counts too
}

TEST_F(CGroupTest, MemoryMaxOomKillsAndSaysSo) {
  LeakCheck leaks;
  auto status = probe_container({"alloc", "512"})
                    .std_out(hutch::Stdio::null())
                    .cgroup(CGroup{}.memory_max(32_MiB).memory_swap_max(0))
                    .run();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->signal, SIGKILL) << fmt::format("{}", *status);
  EXPECT_TRUE(status->oom_killed);
  EXPECT_EQ(fmt::format("{}", *status), "killed by signal 9 (SIGKILL) (out of memory)");
  // Within the limit, no OOM.
  auto fine = probe_container({"alloc", "8"}).cgroup(CGroup{}.memory_max(64_MiB)).output();
  ASSERT_TRUE(fine);
  EXPECT_TRUE(fine->status.success());
  EXPECT_FALSE(fine->status.oom_killed);
}

TEST_F(CGroupTest, CpuMaxQuarterGetsAQuarterOfACpu) {
  LeakCheck leaks;
  auto child = probe_container({"spin", "2"}).cgroup(CGroup{}.cpu_max(0.25)).spawn();
  ASSERT_TRUE(child) << child.error().message();
  ASSERT_TRUE(child->wait());
  auto stats = child->stats();
  ASSERT_TRUE(stats);
  // The share of one CPU over the time the limit was enforced, both read from the kernel's
  // own accounting (100 ms periods): under emulation (the v2 run in qemu) the guest's wall
  // clock and its CPU clock drift apart, the kernel's bookkeeping does not.
  ASSERT_GT(stats->cpu_periods, 10u);
  const double share = static_cast<double>(stats->cpu_user_us + stats->cpu_system_us) /
                       (static_cast<double>(stats->cpu_periods) * 100000.0);
  EXPECT_GT(share, 0.15) << stats->cpu_periods << " periods";
  EXPECT_LT(share, 0.35) << stats->cpu_periods << " periods";
  EXPECT_GT(stats->cpu_throttled_periods, 0u);
}

TEST_F(CGroupTest, FreezeStopsAndThawResumes) {
  LeakCheck leaks;
  auto child = probe_container({"spin", "30"}).cgroup(CGroup{}).spawn();
  ASSERT_TRUE(child) << child.error().message();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(child->freeze());
  auto frozen_a = child->stats().value();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto frozen_b = child->stats().value();
  EXPECT_EQ(frozen_a.cpu_user_us + frozen_a.cpu_system_us,
            frozen_b.cpu_user_us + frozen_b.cpu_system_us);
  ASSERT_TRUE(child->thaw());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto thawed = child->stats().value();
  EXPECT_GT(thawed.cpu_user_us + thawed.cpu_system_us,
            frozen_b.cpu_user_us + frozen_b.cpu_system_us + 50000);
}

TEST_F(CGroupTest, KillAllEndsProcessesThatDoubleForkedAway) {
  LeakCheck leaks;
  // No pid namespace: the daemons outlive the shell unless the cgroup takes them down.
  auto child = Container{}
                   .command({"/bin/sh", "-c",
                             "for i in $(seq 20); do (sleep 1000 &) ; done; echo started; "
                             "sleep 1000"})
                   .namespaces(Namespaces::all().without(Namespace::pid))
                   .std_out(hutch::Stdio::piped())
                   .cgroup(CGroup{})
                   .spawn();
  ASSERT_TRUE(child) << child.error().message();
  char buffer[16] = {};
  ASSERT_GT(::read(child->stdout_pipe().get(), buffer, sizeof buffer), 0);
  EXPECT_GE(child->stats().value().pids_current, 21u);
  ASSERT_TRUE(child->kill_all());
  auto status = child->wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(status && status->has_value());
  // Every process is gone from the cgroup (pids.current may still count zombies until the
  // host's init reaps the orphans; cgroup.procs lists only live processes).
  auto live = [&] {
    std::string all;
    for (const auto& dir : child->cgroup()->paths()) all += read_file(dir + "/cgroup.procs");
    return all;
  };
  for (int i = 0; i < 100 && !live().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(live(), "");
}

TEST_F(CGroupTest, MemoryAccountingSeesAnAllocation) {
  LeakCheck leaks;
  auto child =
      probe_container({"hold", "64"}).std_out(hutch::Stdio::piped()).cgroup(CGroup{}).spawn();
  ASSERT_TRUE(child) << child.error().message();
  char buffer[32] = {};
  ASSERT_GT(::read(child->stdout_pipe().get(), buffer, sizeof buffer), 0);
  auto stats = child->stats().value();
  EXPECT_GE(stats.memory_current, 64_MiB);
  EXPECT_LT(stats.memory_current, 96_MiB);
  EXPECT_GE(stats.memory_peak, stats.memory_current);
  EXPECT_EQ(stats.pids_current, 1u);
}

TEST_F(CGroupTest, ContainerIsInItsCgroupFromTheFirstInstruction) {
  LeakCheck leaks;
  // With a cgroup namespace, its own cgroup is "/" in every hierarchy we created.
  auto seen = lines(run_ok(probe_container({"cat", "/proc/self/cgroup"}).cgroup(CGroup{})));
  ASSERT_FALSE(seen.empty());
  for (const auto& line : seen) {
    if (line.find(":memory:") != std::string::npos || line.find(":pids:") != std::string::npos ||
        line.rfind("0::", 0) == 0) {
      EXPECT_EQ(line.substr(line.rfind(':')), ":/") << line;
    }
  }
  // Without one, the path ends in the cgroup's name.
  auto named = run_ok(probe_container({"cat", "/proc/self/cgroup"})
                          .namespaces(Namespaces::all().without(Namespace::cgroup))
                          .cgroup(CGroup{unique("placement")}));
  const bool v1 = named.find("pids:/" + unique("placement") + "\n") != std::string::npos;
  const bool v2 = named.find("0::/" + unique("placement") + "\n") != std::string::npos;
  EXPECT_TRUE(v1 || v2) << named;
}

/// A root filesystem holding only the probe, in /tmp (the v2 run in qemu has the build tree on
/// a read-only share), removed with the object.
class ProbeRoot {
 public:
  ProbeRoot() {
    char pattern[] = "/tmp/hutch-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = pattern;
    fs::copy_file(probe, path_ + "/probe");
    ::chmod(path_.c_str(), 0755);
  }
  ~ProbeRoot() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_F(CGroupTest, TheContainerReadsItsOwnLimitsUnderSysFsCgroup) {
  LeakCheck leaks;
  const ProbeRoot probe_root;
  const std::string& root = probe_root.path();
  const bool v2 = hutch::detail::host_layout()->kind == hutch::CGroupLayout::unified;
  auto out = run_ok(Container{}
                        .command({"/probe", "cat",
                                  v2 ? "/sys/fs/cgroup/memory.max"
                                     : "/sys/fs/cgroup/memory/memory.limit_in_bytes"})
                        .rootfs(hutch::RootFs::directory(root))
                        .cgroup(CGroup{}.memory_max(48_MiB).pids_max(12)));
  EXPECT_EQ(out, std::to_string(48_MiB) + "\n");
  auto pids = run_ok(Container{}
                         .command({"/probe", "cat",
                                   v2 ? "/sys/fs/cgroup/pids.max" : "/sys/fs/cgroup/pids/pids.max"})
                         .rootfs(hutch::RootFs::directory(root))
                         .cgroup(CGroup{}.pids_max(12)));
  EXPECT_EQ(pids, "12\n");
  auto write =
      run_ok(Container{}
                 .command({"/probe", "write",
                           v2 ? "/sys/fs/cgroup/pids.max" : "/sys/fs/cgroup/pids/pids.max"})
                 .rootfs(hutch::RootFs::directory(root))
                 .cgroup(CGroup{}.pids_max(12)));
  EXPECT_EQ(write, "open_write EROFS\n") << "the container may not raise its own limits";
  if (!v2) {  // v1: a tmpfs holds one mount per hierarchy, and it is read-only too
    auto create = run_ok(Container{}
                             .command({"/probe", "create", "/sys/fs/cgroup/new", "x"})
                             .rootfs(hutch::RootFs::directory(root))
                             .cgroup(CGroup{}.pids_max(12)));
    EXPECT_EQ(create, "create EROFS\n");
  }
}

TEST_F(CGroupTest, BadInputFailsBeforeAnythingIsCreated) {
  LeakCheck leaks;
  std::vector<std::pair<CGroup, std::string>> cases = {
      {CGroup{"a/b"}, "one path component"},
      {CGroup{".."}, "one path component"},
      {CGroup{}.memory_max(0), "memory_max"},
      {CGroup{}.cpu_max(0.0), "cpu_max"},
      {CGroup{}.cpu_max(100, 100000), "cpu_max"},
      {CGroup{}.cpu_weight(0), "cpu_weight"},
      {CGroup{}.pids_max(0), "pids_max"},
      {CGroup{}.io_weight(20000), "io_weight"},
      {CGroup{}.cpuset_cpus("0-999"), "subset"},
      {CGroup{}.cpuset_cpus("x"), "cpuset_cpus"},
      {CGroup{}.io_max({.device = "/dev/nonexistent-disk", .read_bps = 1}), "I/O limit device"},
      {CGroup{}.io_max({.device = "/dev/null", .read_bps = 1}), "block device"},
      {CGroup{}.device_write_bps("/proc/self", 1), "it is on proc"},
      {CGroup{}.device_read_iops("4095:1048575", 1), "no block device 4095:1048575"},
      {CGroup{}.device_write_bps("/dev/null", 0), "a rate above 0"},
      {CGroup{}.io_max({.device = "7:0"}), "a rate above 0"},
  };
  for (auto& [spec, text] : cases) {
    auto r = probe_container({"pid"}).cgroup(spec).spawn();
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().step, Step::validate) << r.error().message();
    EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
  }
}

TEST_F(CGroupTest, ANameThatExistsIsNotAdopted) {
  LeakCheck leaks;
  auto first = probe_container({"sleep", "30"})
                   .std_out(hutch::Stdio::null())
                   .cgroup(CGroup{unique("taken")})
                   .spawn();
  ASSERT_TRUE(first) << first.error().message();
  auto second = probe_container({"pid"}).cgroup(CGroup{unique("taken")}).spawn();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().step, Step::cgroup_create);
  EXPECT_EQ(second.error().errno_value(), EEXIST);
  EXPECT_NE(second.error().message().find("only uses cgroups it creates"), std::string::npos);
}

TEST_F(CGroupTest, AChildThatFailsWhileItsCgroupIsMadeReportsItsOwnError) {
  LeakCheck leaks;
  // On v1 the host makes the cgroup while the child sets up; a child that fails first
  // (here: a mount target below a regular file) must be reported, not the host's step that
  // found it gone, and leave no cgroup.
  const ProbeRoot probe_root;
  const std::string& root = probe_root.path();
  const Container c = Container{}
                          .command({"/probe", "pid"})
                          .rootfs(hutch::RootFs::directory(root).tmpfs("/probe/below", 4096))
                          .cgroup(CGroup{}.pids_max(8).memory_max(16_MiB));
  for (int i = 0; i < 50; ++i) {
    auto r = c.spawn();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), ENOTDIR) << r.error().message();
    EXPECT_NE(r.error().message().find("/probe/below"), std::string::npos) << r.error().message();
  }
}

TEST_F(CGroupTest, ANamedCgroupIsFreeAgainOnceItsChildIsGone) {
  LeakCheck leaks;
  // Unnamed cgroups are removed in the background; a name the caller chose is free for the
  // next container as soon as the Child is destroyed.
  for (int i = 0; i < 3; ++i) {
    auto status = probe_container({"exit", "0"}).cgroup(CGroup{unique("again")}).run();
    ASSERT_TRUE(status) << status.error().message();
    EXPECT_TRUE(status->success());
  }
}

TEST_F(CGroupTest, TwoHundredSpawnsLeaveNoCgroup) {
  LeakCheck leaks;
  const Container c = probe_container({"exit", "0"}).cgroup(CGroup{}.pids_max(16));
  for (int i = 0; i < 200; ++i) {
    auto child = c.spawn();
    ASSERT_TRUE(child) << child.error().message();
    if (i % 2) {
      ASSERT_TRUE(child->wait());
    }
  }
}

TEST(CGroupRootless, WithoutDelegationTheErrorSaysWhy) {
  HUTCH_REQUIRE_ROOTLESS();
  LeakCheck leaks;
  auto r = probe_container({"pid"}).cgroup(CGroup{}.pids_max(8)).spawn();
  if (r) GTEST_SKIP() << "this machine delegates a cgroup subtree to this user";
  EXPECT_EQ(r.error().step, Step::cgroup_create) << r.error().message();
  EXPECT_TRUE(r.error().message().find("delegat") != std::string::npos ||
              r.error().message().find("only by root") != std::string::npos)
      << r.error().message();
}

TEST(CGroupLayout, DetectsTheHostLayout) {
  auto& layout = hutch::detail::host_layout();
  ASSERT_TRUE(layout) << layout.error().message();
  std::string cgroup = read_file("/proc/self/cgroup");
  if (cgroup.find(":memory:") != std::string::npos) {
    EXPECT_NE(layout->kind, hutch::CGroupLayout::unified);
  } else {
    EXPECT_EQ(layout->kind, hutch::CGroupLayout::unified);
  }
  fmt::print("cgroup layout: {}\n", layout->kind);
}

}  // namespace

namespace {

/// Every scratch directory below `parent` named for this process.
std::vector<std::string> own_scratch(const std::string& parent) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(parent, ec)) {
    if (e.path().filename().string().rfind(fmt::format("hutch-{}-", ::getpid()), 0) == 0) {
      found.push_back(e.path());
    }
  }
  return found;
}

}  // namespace

// 4. A memory limit too small for a container's own setup (16 KiB; anything up to 48 KiB
// did it) ended in the OOM killer while the child still shared the host's memory, which
// killed the host too. It is refused, before anything is made.
TEST_F(CGroupTest, AMemoryLimitTooSmallToStartIsRefusedAndTheHostLives) {
  LeakCheck leaks;
  const auto scratch = own_scratch("/dev/shm");
  // The attempts run in a process of their own: if the killer came back, it would take that
  // one, and the test would say so.
  pid_t host = ::fork();
  if (host == 0) {
    int refused = 0;
    for (std::uint64_t tiny : {std::uint64_t{1}, 16_KiB, 48_KiB, 6_MiB - 1}) {
      for (bool high : {false, true}) {
        CGroup limits;
        if (high) {
          limits.memory_high(tiny);
        } else {
          limits.memory_max(tiny);
        }
        auto r = Container{}
                     .command({"/bin/true"})
                     .rootfs(hutch::RootFs::directory(busybox).overlay())
                     .cgroup(limits)
                     .spawn();
        refused += !r && r.error().step == Step::validate &&
                   r.error().message().find("at least 6 MiB") != std::string::npos;
      }
    }
    hutch::settle();
    std::_Exit(refused == 8 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(host, &status, 0);
  ASSERT_FALSE(WIFSIGNALED(status)) << "the host was killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a limit below 6 MiB was not refused";
  EXPECT_EQ(own_scratch("/dev/shm"), scratch) << "a scratch directory was left";
  // At the floor the container starts, and this process is still here to see it.
  EXPECT_EQ(run_ok(Container{}
                       .command({"/bin/sh", "-c", "echo alive"})
                       .rootfs(hutch::RootFs::directory(busybox).overlay())
                       .cgroup(CGroup{}.memory_max(6_MiB))),
            "alive\n");
}

// One spawn at EMFILE used to keep the failed layout detection for the process's life (every
// later cgroup spawn failed, and containers got an empty /sys/fs/cgroup). In a fresh process
// (the test binary again) the layout is read at EMFILE, then again with descriptors to spare.
TEST(CGroupLayout, AFailedDetectionIsTriedAgain) {
  if (const char* helper = std::getenv("HUTCH_TEST_EMFILE"); helper && *helper) {
    rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit few = saved;
    few.rlim_cur = 256;
    ::setrlimit(RLIMIT_NOFILE, &few);
    std::vector<int> taken;  // every descriptor left: /proc/self/mountinfo cannot be opened
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) taken.push_back(fd);
    const bool failed = !hutch::LiveCGroup::check(CGroup{});
    for (int fd : taken) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    const bool works = static_cast<bool>(hutch::LiveCGroup::check(CGroup{}));
    std::fprintf(stderr, "at EMFILE: %s; afterwards: %s\n", failed ? "failed" : "worked",
                 works ? "works" : "still fails");
    std::_Exit(failed && works ? 0 : 1);
  }
  const std::string self = fs::read_symlink("/proc/self/exe");
  const std::string command = fmt::format(
      "HUTCH_TEST_EMFILE=1 {} --gtest_filter='CGroupLayout.AFailedDetectionIsTriedAgain' "
      ">/dev/null 2>&1",
      self);
  EXPECT_EQ(std::system(command.c_str()), 0) << "the failure was kept";
}

// A host killed with SIGKILL mid-run leaves its containers' cgroups and scratch directories;
// the next run reclaims them (once they are a minute old, and only those of hosts that are
// gone), and never another live process's.
TEST_F(CGroupTest, WhatAHostKilledMidRunLeftIsReclaimedByTheNextRun) {
  LeakCheck leaks;
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t host = ::fork();
  if (host == 0) {
    ::close(report[0]);
    auto child = Container{}
                     .command({"/bin/sleep", "60"})
                     .rootfs(hutch::RootFs::directory(busybox).overlay())
                     .cgroup(CGroup{}.pids_max(8))
                     .spawn();
    if (!child) std::_Exit(1);
    std::string paths = child->scratch_dir();
    for (const auto& p : child->cgroup()->paths()) paths += "\n" + p;
    (void)!::write(report[1], paths.data(), paths.size());
    ::kill(::getpid(), SIGKILL);
  }
  ::close(report[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(report[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  ::close(report[0]);
  int status = 0;
  ::waitpid(host, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the host did not run";
  const auto left = lines(text);
  ASSERT_GE(left.size(), 2u) << text;
  // Its container dies with it (the parent-death signal); what it had stays.
  for (int i = 0; i < 200; ++i) {
    bool empty = true;
    for (std::size_t k = 1; k < left.size(); ++k) {
      empty &= read_file(left[k] + "/cgroup.procs").empty();
    }
    if (empty) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& path : left) EXPECT_TRUE(fs::exists(path)) << path << " went by itself";
  // A live process's look-alike, and one too young, are left alone.
  const std::string live =
      fmt::format("{}/hutch-{}-{}-XXXXXX", fs::path(left[0]).parent_path().string(), ::getpid(),
                  hutch::detail::own_start_time());
  std::string live_dir = live;
  ASSERT_NE(::mkdtemp(live_dir.data()), nullptr);
  const timespec old[2] = {{std::time(nullptr) - 120, 0}, {std::time(nullptr) - 120, 0}};
  for (const auto& path : left) ::utimensat(AT_FDCWD, path.c_str(), old, 0);
  ::utimensat(AT_FDCWD, live_dir.c_str(), old, 0);
  // A new process (reclaim runs once per process): the test binary again, with one container.
  if (std::getenv("HUTCH_TEST_RECLAIM") == nullptr) {
    const std::string self = fs::read_symlink("/proc/self/exe");
    const std::string command = fmt::format(
        "HUTCH_TEST_RECLAIM=1 {} --gtest_filter='CGroupTest.ReclaimHelper' >/dev/null 2>&1", self);
    EXPECT_EQ(std::system(command.c_str()), 0);
  }
  for (const auto& path : left) EXPECT_FALSE(fs::exists(path)) << path << " was not reclaimed";
  EXPECT_TRUE(fs::exists(live_dir)) << "a live process's directory was taken";
  ::rmdir(live_dir.c_str());
}

// Run by the test above in a process of its own: one container with a cgroup and an overlay,
// then the reclaim it set off.
TEST_F(CGroupTest, ReclaimHelper) {
  if (std::getenv("HUTCH_TEST_RECLAIM") == nullptr) GTEST_SKIP() << "run by the test above";
  run_ok(Container{}
             .command({"/bin/true"})
             .rootfs(hutch::RootFs::directory(busybox).overlay())
             .cgroup(CGroup{}.pids_max(8)));
  hutch::settle();
}

// A process exec'd into a container is in the container's cgroup, under its limits.
TEST_F(CGroupTest, AnExecdProcessJoinsTheContainersCgroup) {
  LeakCheck leaks;
  auto box = Container{}
                 .command({"/bin/sh", "-c", "echo up; cat"})
                 .rootfs(hutch::RootFs::directory(busybox).overlay())
                 .cgroup(CGroup{}.pids_max(4))
                 .std_in(hutch::Stdio::piped())
                 .std_out(hutch::Stdio::piped())
                 .spawn();
  ASSERT_TRUE(box) << box.error().message();
  char up[3];
  ASSERT_EQ(::read(box->stdout_pipe().get(), up, 3), 3);
  auto joined =
      box->exec(hutch::Process{}
                    .command({"sh", "-c",
                              "[ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] "
                              "&& echo same; cat /sys/fs/cgroup/pids.max "
                              "/sys/fs/cgroup/pids/pids.max 2>/dev/null"})
                    .std_out(hutch::Stdio::piped()));
  ASSERT_TRUE(joined) << joined.error().message();
  auto out = joined->wait_with_output();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->std_out, "same\n4\n");
  box->stdin_pipe().reset();
  ASSERT_TRUE(box->wait());
}

// Device rules hold inside: everything denied but what they allow (v1 devices.allow; v2 an
// eBPF program), even for root with every capability.
TEST_F(CGroupTest, DeviceRulesDecideWhatTheContainerMayOpen) {
  if (!is_root()) GTEST_SKIP() << "device rules take privilege to set (v2: loading eBPF)";
  LeakCheck leaks;
  const std::vector<hutch::DeviceRule> rules = {
      {.allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwm"}};  // /dev/null
  auto out = run_ok(Container{}
                        .command({"/bin/sh", "-c",
                                  "echo x > /dev/null && echo null-ok; "
                                  "head -c 1 /dev/zero >/dev/null 2>&1 || echo zero-denied"})
                        .rootfs(hutch::RootFs::directory(busybox).overlay())
                        .capabilities(hutch::Capabilities::all())
                        .cgroup(CGroup{}.devices(rules)));
  EXPECT_EQ(out, "null-ok\nzero-denied\n");
}
