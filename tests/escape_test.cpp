// The escape suite: from inside the default container (every namespace, Docker's default
// capabilities, no_new_privs, the default seccomp profile, a read-only snapshot), each test
// tries one way out with tests/escape.cpp. Every attempt must fail, and the host must be as it
// was. The attempts do no harm if they work (see escape.cpp).
#include <pty.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "support.hpp"

using namespace hutch_test;
namespace fs = std::filesystem;

namespace {

/// The container the suite attacks from: the library's defaults plus the default seccomp
/// profile, a read-only root and a small writable /tmp.
hutch::Container default_container(std::vector<std::string> command,
                                   hutch::RootFs root = hutch::RootFs::directory(busybox)) {
  return hutch::Container{}
      .command(std::move(command))
      .rootfs(std::move(root.read_only().tmpfs("/tmp", 1 << 20)))
      .seccomp(default_seccomp());
}

std::string hostname() {
  utsname u{};
  ::uname(&u);
  return u.nodename;
}

/// Records what the host looks like before an attempt and checks it after.
class Escape : public ::testing::Test {
 protected:
  void SetUp() override {
    hostname_ = hostname();
    mounts_ = read_file("/proc/self/mountinfo");
    canary_dir_ = fs::temp_directory_path() / fmt::format("hutch-canary-{}", ::getpid());
    fs::create_directories(canary_dir_);
    canary_ = (canary_dir_ / "secret").string();
    std::ofstream(canary_) << "host only\n";
  }
  void TearDown() override {
    EXPECT_EQ(hostname(), hostname_) << "the host's hostname changed";
    EXPECT_EQ(read_file("/proc/self/mountinfo"), mounts_) << "the host's mounts changed";
    EXPECT_EQ(read_file(canary_), "host only\n");
    fs::remove_all(canary_dir_);
  }

  /// Runs `attempt` in `c` and expects it blocked.
  void expect_blocked(const hutch::Container& c) {
    auto out = c.output();
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_TRUE(out->status.success()) << out->std_out << out->std_err;
    EXPECT_EQ(out->std_out.rfind("blocked: ", 0), 0u) << out->std_out << out->std_err;
  }
  void expect_blocked(std::vector<std::string> attempt) {
    attempt.insert(attempt.begin(), "escape");
    expect_blocked(default_container(std::move(attempt)));
  }

  std::string hostname_, mounts_, canary_;
  fs::path canary_dir_;
  LeakCheck leaks_;
};

TEST_F(Escape, CannotSeeOrSignalAHostProcess) {
  expect_blocked({"signal-host", std::to_string(::getpid())});
}

TEST_F(Escape, CannotPtraceAHostProcess) {
  expect_blocked({"ptrace-host", std::to_string(::getpid())});
}

TEST_F(Escape, CannotReadAHostFileByAnyPath) {
  // Through /proc/1/root, /proc/self/cwd, ".." out of a bind mount, /proc/self/fd/N and a
  // cwd on an open directory.
  auto root = hutch::RootFs::directory(busybox).bind(canary_dir_.string() + "/..", "/mnt",
                                                     hutch::read_only);
  std::string inside_path = "/" + canary_dir_.filename().string() + "/secret";
  expect_blocked(default_container({"escape", "read-host-file", canary_, "/mnt"}, root));
  // The bind itself shows what it should, and only there.
  EXPECT_EQ(run_ok(default_container({"cat", "/mnt" + inside_path}, root)), "host only\n");
}

TEST_F(Escape, NoHostDescriptorSurvivesExec) {
  // A directory descriptor the host leaks on purpose (no O_CLOEXEC): the container must not
  // get it, nor anything else past stdio.
  int leaked = ::open(canary_dir_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(leaked, 0);
  expect_blocked({"leaked-fds"});
  expect_blocked({"read-host-file", canary_, "/"});
  ::close(leaked);
}

TEST_F(Escape, CannotMount) {
  expect_blocked({"mount"});
}

TEST_F(Escape, CannotMountACgroupV1HierarchyForItsReleaseAgent) {
  expect_blocked({"mount-cgroup-v1"});
}

TEST_F(Escape, CannotRemountTheRootReadWrite) {
  expect_blocked({"remount-rw", "/", "/etc/marker"});
}

TEST_F(Escape, CannotRemountProcSysReadWrite) {
  expect_blocked({"remount-rw", "/proc/sys", "/proc/sys/kernel/core_pattern"});
}

TEST_F(Escape, CannotRemountSysReadWrite) {
  expect_blocked({"remount-rw", "/sys"});
}

TEST_F(Escape, CannotMakeADeviceNodeForTheHostDisk) {
  expect_blocked({"mknod-disk"});
}

TEST_F(Escape, CannotLoadAKernelModule) {
  expect_blocked({"load-module"});
}

TEST_F(Escape, CannotReboot) {
  expect_blocked({"reboot"});
}

TEST_F(Escape, CannotChangeTheHostname) {
  expect_blocked({"hostname"});
}

TEST_F(Escape, CannotSetTheClock) {
  expect_blocked({"clock"});
}

TEST_F(Escape, CannotWriteSysrqTriggerCorePatternOrModprobe) {
  expect_blocked({"open-for-writing", "/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern",
                  "/proc/sys/kernel/modprobe", "/proc/sys/vm/drop_caches"});
}

TEST_F(Escape, CannotReachACgroupReleaseAgent) {
  expect_blocked({"release-agent"});
}

TEST_F(Escape, CannotCreateAUserNamespaceToRegainCapabilities) {
  expect_blocked({"new-userns"});
}

TEST_F(Escape, CannotUseKeyctl) {
  expect_blocked({"keyctl"});
}

TEST_F(Escape, CannotUseBpf) {
  expect_blocked({"bpf"});
}

TEST_F(Escape, CannotOpenByHandle) {
  expect_blocked({"open-by-handle"});
}

TEST_F(Escape, CannotRaiseItsRlimits) {
  expect_blocked({"raise-rlimit"});
}

TEST_F(Escape, CannotRaiseItsCapabilities) {
  expect_blocked({"raise-capabilities"});
}

TEST_F(Escape, CannotReachTheHostProgramThroughProcExe) {
  struct stat self {};
  ASSERT_EQ(::stat("/proc/self/exe", &self), 0);
  auto c =
      default_container({"sh", "-c",
                         "sleep 5 & escape host-exe " + std::to_string(self.st_dev) + ":" +
                             std::to_string(self.st_ino) + "; status=$?; kill %1; exit $status"});
  expect_blocked(c);
}

TEST_F(Escape, ASetuidBinaryInsideGivesNoPrivilege) {
  HUTCH_REQUIRE_ROOT();
  struct stat st {};
  ASSERT_EQ(::stat((busybox + "/bin/suid-probe").c_str(), &st), 0);
  ASSERT_TRUE(st.st_mode & S_ISUID) << "the snapshot's suid-probe lost its setuid bit";
  auto as_user = default_container({"/bin/suid-probe", "ids"})
                     .uid_map({{0, 0, 1}, {1000, 101000, 1}})
                     .gid_map({{0, 0, 1}, {1000, 101000, 1}})
                     .user(1000, 1000);
  auto ids = parse(run_ok(as_user));
  EXPECT_EQ(ids["euid"], "1000");
  EXPECT_EQ(ids["uid"], "1000");
  // The control: without no_new_privs (and so without the filter, which needs it), the same
  // binary does make its caller root.
  auto unguarded = parse(run_ok(as_user.no_new_privs(false).seccomp(hutch::SeccompProgram())));
  EXPECT_EQ(unguarded["euid"], "0");
}

/// TIOCSTI into a terminal the container inherited as stdin, where that terminal is the
/// controlling terminal of the host process (a session made for the test in a forked
/// process): the typed byte must never reach the terminal's input.
int tiocsti_from_a_container(hutch::Container c) {
  int master = -1, slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return 3;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(master);
    if (::setsid() < 0 || ::ioctl(slave, TIOCSCTTY, 0) != 0) ::_exit(3);
    ::dup2(slave, 0);
    auto out = c.std_in(hutch::Stdio::inherit()).std_out(hutch::Stdio::piped()).spawn();
    if (!out) ::_exit(3);
    auto done = out->wait_with_output();
    if (!done || done->std_out.rfind("blocked: ", 0) != 0) ::_exit(1);
    ::fcntl(slave, F_SETFL, O_NONBLOCK);
    char byte;
    ::_exit(::read(slave, &byte, 1) == 1 ? 1 : 0);
  }
  ::close(slave);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}

TEST_F(Escape, CannotPushInputIntoTheHostTerminal) {
  EXPECT_EQ(tiocsti_from_a_container(default_container({"escape", "tiocsti"})), 0);
  // Each defence alone holds: the filter, and the container's own session.
  EXPECT_EQ(tiocsti_from_a_container(
                default_container({"escape", "tiocsti"}).seccomp(hutch::SeccompProgram())),
            0);
  EXPECT_EQ(tiocsti_from_a_container(default_container({"escape", "tiocsti"}).new_session(false)),
            0);
}

TEST_F(Escape, InsideHoldsExactlyTheDefaultPrivileges) {
  auto status = run_ok(default_container({"probe", "status"}));
  EXPECT_EQ(status_field(status, "CapInh"), "0000000000000000");
  EXPECT_EQ(status_field(status, "CapAmb"), "0000000000000000");
  EXPECT_EQ(status_field(status, "CapBnd"), "00000000a80425fb");
  EXPECT_EQ(status_field(status, "NoNewPrivs"), "1");
  EXPECT_EQ(status_field(status, "Seccomp"), "2");
  EXPECT_EQ(run_ok(default_container({"probe", "fds"})), "0\n1\n2\n");
}

// A mount target in the snapshot swapped for a symlink to a host path while setup runs, many
// times over: the bind lands inside the container's root or the spawn fails cleanly, and
// nothing is ever created or mounted on the host path.
TEST_F(Escape, ASymlinkSwappedInDuringSetupNeverReachesTheHost) {
  const fs::path base = canary_dir_ / "race";
  const fs::path root = base / "root", host = base / "host", volume = base / "volume";
  fs::create_directories(root / "bin");
  fs::create_directories(root / "data");
  fs::create_directories(host);
  fs::create_directories(volume);
  fs::copy_file(probe, root / "bin/probe");
  std::ofstream(volume / "marker") << "volume\n";
  // The swap partner: a symlink to an absolute host path that does not exist yet.
  fs::create_symlink(host / "escaped", root / "data-link");

  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    while (!stop) {
      ::renameat2(AT_FDCWD, (root / "data").c_str(), AT_FDCWD, (root / "data-link").c_str(),
                  RENAME_EXCHANGE);
    }
  });
  int landed = 0;
  for (int i = 0; i < 200; ++i) {
    auto out = hutch::Container{}
                   .command({"/bin/probe", "cat", "/data/marker"})
                   .rootfs(hutch::RootFs::directory(root.string())
                               .bind(volume.string(), "/data", hutch::read_only))
                   .output();
    if (out && out->status.success()) {
      EXPECT_EQ(out->std_out, "volume\n");
      ++landed;
    }
    ASSERT_TRUE(fs::is_empty(host)) << "setup created something on the host, run " << i;
  }
  stop = true;
  swapper.join();
  EXPECT_GT(landed, 0);
  fs::remove_all(base);
}

}  // namespace
