// RootFs: the container sees its own root filesystem, set up as OCI runtimes do.
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "support.hpp"

using namespace hutch_test;
using hutch::Container;
using hutch::Namespace;
using hutch::Namespaces;
using hutch::RootFs;
using hutch::Standard;
using hutch::Step;
namespace fs = std::filesystem;

namespace {

const std::string probe_only = rootfs_dir + "/probe";

/// A private temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/hutch-test-XXXXXX";
    path_ = ::mkdtemp(pattern);
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() { EXPECT_TRUE(hutch::detail::ScratchDir::remove_tree(path_)) << path_; }
  const std::string& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename());
    return out;
  }

 private:
  std::string path_;
};

Container in_busybox(std::vector<std::string> command, RootFs root = RootFs::directory(busybox)) {
  return Container{}.command(std::move(command)).rootfs(std::move(root));
}

Container probe_in(RootFs root, std::vector<std::string> args) {
  args.insert(args.begin(), "/probe");
  return Container{}.command(std::move(args)).rootfs(std::move(root));
}

std::string mountinfo() {
  return read_file("/proc/self/mountinfo");
}

TEST(RootFs, RootIsTheSnapshotAndTheHostIsUnreachable) {
  LeakCheck leaks;
  TempDir canary;
  std::ofstream(canary.path() + "/canary") << "host only";
  const std::string before = mountinfo();

  auto root = lines(run_ok(probe_in(RootFs::directory(probe_only), {"ls", "/"})));
  std::sort(root.begin(), root.end());
  EXPECT_EQ(root, (std::vector<std::string>{"dev", "probe", "proc", "sys"}));

  for (std::string path :
       {canary.path() + "/canary", "/proc/1/root" + canary.path() + "/canary",
        "/proc/self/cwd/.." + canary.path() + "/canary", "/../../.." + canary.path() + "/canary"}) {
    auto out = probe_in(RootFs::directory(probe_only), {"cat", path}).output();
    ASSERT_TRUE(out);
    EXPECT_EQ(out->std_out.rfind("error ", 0), 0u) << path << " was readable: " << out->std_out;
  }
  // Only the container's own mounts are visible: every mount point is one the container set
  // up (the mountinfo "root" field may name the host directory a bind came from; the mount
  // point is what a path can reach).
  auto mounts = run_ok(probe_in(RootFs::directory(probe_only), {"cat", "/proc/self/mountinfo"}));
  for (const auto& line : lines(mounts)) {
    std::istringstream fields(line);
    std::string id, parent, device, root_field, mount_point;
    fields >> id >> parent >> device >> root_field >> mount_point;
    bool ours = mount_point == "/" || mount_point.rfind("/proc", 0) == 0 ||
                mount_point.rfind("/dev", 0) == 0 || mount_point.rfind("/sys", 0) == 0;
    EXPECT_TRUE(ours) << "unexpected mount point " << mount_point << " in\n" << mounts;
  }
  EXPECT_EQ(lines(run_ok(probe_in(RootFs::directory(probe_only), {"procs"}))),
            std::vector<std::string>{"1"});
  EXPECT_EQ(mountinfo(), before) << "the host's mount table changed";
}

TEST(RootFs, ChrootFallbackEntersTheSnapshotToo) {
  LeakCheck leaks;
  auto out = run_ok(in_busybox({"sh", "-c", "cat /etc/marker; ls /proc/1/root/etc/marker"},
                               RootFs::directory(busybox).chroot_fallback()));
  EXPECT_EQ(out, "snapshot\n/proc/1/root/etc/marker\n");
}

TEST(RootFs, BusyboxShellRunsInsideWithCwd) {
  LeakCheck leaks;
  auto out = run_ok(in_busybox({"sh", "-c", "pwd; cat /etc/marker; echo $PATH"}).cwd("/etc"));
  EXPECT_EQ(out, "/etc\nsnapshot\n" + std::string(hutch::default_path) + "\n");
}

TEST(RootFs, OverlayKeepsContainersApartAndTheSnapshotUnchanged) {
  LeakCheck leaks;
  TempDir runtime;
  ::setenv("XDG_RUNTIME_DIR", runtime.path().c_str(), 1);
  auto start = [&](const std::string& name) {
    return in_busybox({"sh", "-c",
                       "echo " + name + " > /etc/marker; echo new > /etc/" + name +
                           "; sleep 0.3; cat /etc/marker; ls /etc"},
                      RootFs::directory(busybox).overlay())
        .std_out(hutch::Stdio::piped())
        .spawn();
  };
  auto a = start("a");
  auto b = start("b");
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(runtime.entries().size(), 2u) << "one scratch directory per container";
  auto out_a = a->wait_with_output();
  auto out_b = b->wait_with_output();
  ASSERT_TRUE(out_a && out_b);
  EXPECT_EQ(out_a->std_out, "a\na\ngroup\nmarker\npasswd\n");
  EXPECT_EQ(out_b->std_out, "b\nb\ngroup\nmarker\npasswd\n");
  EXPECT_EQ(read_file(busybox + "/etc/marker"), "snapshot\n");
  EXPECT_FALSE(fs::exists(busybox + "/etc/a"));
  *a = hutch::Child();  // destroying the handles removes the scratch directories
  *b = hutch::Child();
  EXPECT_TRUE(runtime.entries().empty()) << "scratch directories left behind";
  ::unsetenv("XDG_RUNTIME_DIR");
}

TEST(RootFs, OverlayInANamedScratchDirectoryCanBeKept) {
  LeakCheck leaks;
  TempDir scratch;
  ASSERT_TRUE(in_busybox({"sh", "-c", "echo kept > /written"},
                         RootFs::directory(busybox).overlay(scratch.path()))
                  .run());
  EXPECT_TRUE(scratch.entries().empty());
  ASSERT_TRUE(in_busybox({"sh", "-c", "echo kept > /written"},
                         RootFs::directory(busybox).overlay(scratch.path(), /*keep=*/true))
                  .run());
  auto kept = scratch.entries();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(read_file(scratch.path() + "/" + kept[0] + "/upper/written"), "kept\n");
}

TEST(RootFs, LayersStackBottomToTop) {
  LeakCheck leaks;
  TempDir top;
  fs::create_directories(top.path() + "/etc");
  std::ofstream(top.path() + "/etc/marker") << "top layer\n";
  std::ofstream(top.path() + "/only-top") << "t\n";
  auto out = run_ok(in_busybox({"sh", "-c", "cat /etc/marker /only-top; ls /bin/busybox"},
                               RootFs::layers({busybox, top.path()})));
  EXPECT_EQ(out, "top layer\nt\n/bin/busybox\n");
}

TEST(RootFs, ReadOnlyRootWithWritableTmpfsAndBinds) {
  LeakCheck leaks;
  TempDir rw, ro;
  auto root = RootFs::directory(busybox)
                  .read_only()
                  .tmpfs("/scratch", 1 << 20)
                  .bind(rw.path(), "/rw")
                  .bind(ro.path(), "/ro", hutch::read_only);
  auto out = run_ok(in_busybox({"sh", "-c",
                                "/bin/probe create /etc/new x; /bin/probe create /scratch/f x; "
                                "/bin/probe create /rw/f written; /bin/probe create /ro/f x"},
                               root));
  EXPECT_EQ(out, "create EROFS\ncreate ok\ncreate ok\ncreate EROFS\n");
  EXPECT_EQ(read_file(rw.path() + "/f"), "written");
  EXPECT_TRUE(ro.entries().empty());
}

TEST(RootFs, TmpfsHasItsSizeAndMode) {
  LeakCheck leaks;
  auto out = run_ok(in_busybox({"sh", "-c", "stat -c %a /t; df -k /t | tail -1"},
                               RootFs::directory(busybox).tmpfs("/t", 4 << 20, 0700)));
  auto l = lines(out);
  ASSERT_EQ(l.size(), 2u) << out;
  EXPECT_EQ(l[0], "700");
  EXPECT_NE(l[1].find(" 4096 "), std::string::npos) << out;
}

TEST(RootFs, MaskedAndReadOnlyPathsAndDev) {
  LeakCheck leaks;
  auto root = RootFs::directory(busybox);
  // Masked files read empty, masked directories list empty (those this kernel has).
  for (std::string path : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"}) {
    if (!fs::exists(path)) continue;
    EXPECT_EQ(run_ok(in_busybox({"cat", path}, root)), "") << path;
  }
  for (std::string path : {"/proc/acpi", "/proc/scsi", "/sys/firmware"}) {
    if (!fs::exists(path)) continue;
    EXPECT_EQ(run_ok(in_busybox({"ls", path}, root)), "") << path;
    EXPECT_EQ(run_ok(in_busybox({"/bin/probe", "create", path + "/x", "x"}, root)),
              "create EROFS\n")
        << path;
  }
  // Read-only paths refuse writes even to root inside.
  for (std::string path : {"/proc/sys/kernel/hostname", "/proc/sysrq-trigger",
                           "/proc/sys/kernel/core_pattern", "/sys/kernel/profiling"}) {
    if (!fs::exists(path)) continue;
    // Rootless, the host's root owns these files and permission fails first (EACCES).
    auto result = run_ok(in_busybox({"/bin/probe", "write", path}, root));
    if (is_root()) {
      EXPECT_EQ(result, "open_write EROFS\n") << path;
    } else {
      EXPECT_TRUE(result == "open_write EROFS\n" || result == "open_write EACCES\n") << path;
    }
  }
  auto dev = lines(run_ok(in_busybox({"ls", "-A", "/dev"}, root)));
  std::sort(dev.begin(), dev.end());
  EXPECT_EQ(
      dev, (std::vector<std::string>{"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm",
                                     "stderr", "stdin", "stdout", "tty", "urandom", "zero"}));
  EXPECT_EQ(run_ok(in_busybox(
                {"sh", "-c", "grep -c ' /dev/mqueue .* - mqueue ' /proc/self/mountinfo"}, root)),
            "1\n")
      << "the container's own message queues";
  EXPECT_EQ(run_ok(in_busybox({"sh", "-c",
                               "echo gone > /dev/null && echo ok; "
                               "head -c 4 /dev/zero | wc -c; readlink /dev/fd"},
                              root)),
            "ok\n4\n/proc/self/fd\n");
  // Each default can be turned off by name.
  EXPECT_EQ(run_ok(in_busybox({"ls", "/dev"}, RootFs::directory(busybox).without(Standard::dev))),
            "");
  EXPECT_EQ(run_ok(in_busybox({"ls", "/sys"}, RootFs::directory(busybox).without(Standard::sys))),
            "");
  EXPECT_EQ(run_ok(in_busybox({"/bin/probe", "write", "/proc/sys/kernel/hostname"},
                              RootFs::directory(busybox).without(Standard::readonly_paths))),
            is_root() ? "open_write ok\n" : "open_write EACCES\n");
  if (fs::exists("/proc/acpi")) {
    auto unmasked = in_busybox({"sh", "-c", "grep -c ' /proc/acpi ' /proc/self/mountinfo"},
                               RootFs::directory(busybox).without(Standard::masked_paths))
                        .output();
    ASSERT_TRUE(unmasked);
    EXPECT_EQ(unmasked->std_out, "0\n");
  }
}

// Lines of the container's mountinfo for mounts at or below `dir` that are not read-only.
std::string writable_mounts_under(const Container& c, const std::string& dir) {
  return run_ok(Container(c).command({"sh", "-c",
                                      "awk '$5 == \"" + dir + "\" || index($5, \"" + dir +
                                          "/\") == 1' /proc/self/mountinfo"
                                          " | grep -v ' ro,\\| ro ' || true"}));
}

// A read-only bind brings the source's submounts along: they are read-only too. The host's
// /dev has its /dev/shm and /dev/pts; its /sys has tracefs, cgroupfs, ... (files there are
// only opened for writing, never written).
TEST(RootFs, ReadOnlyBindsAreReadOnlyWithTheirSubmounts) {
  LeakCheck leaks;
  auto root = RootFs::directory(busybox).bind("/dev", "/host-dev", hutch::read_only);
  const Container c = in_busybox({}, root);
  EXPECT_NE(run_ok(Container(c).command({"grep", " /host-dev/", "/proc/self/mountinfo"})), "")
      << "the host's /dev has submounts";
  EXPECT_EQ(writable_mounts_under(c, "/host-dev"), "");
  // /sys without a network namespace: with a user namespace, the host's /sys (bound with
  // its submounts, all read-only); without one, a sysfs of its own (no host submounts).
  for (Namespaces ns : {Namespaces::all().without(Namespace::net),
                        Namespaces::all().without(Namespace::net).without(Namespace::user)}) {
    if (!is_root() && !ns.contains(Namespace::user)) continue;
    const Container host_net = in_busybox({}).namespaces(ns);
    EXPECT_EQ(writable_mounts_under(host_net, "/sys"), "");
    for (std::string path :
         {"/sys/kernel/tracing/tracing_on", "/sys/kernel/debug/tracing/tracing_on",
          "/sys/fs/cgroup/cgroup.procs", "/sys/kernel/profiling"}) {
      auto result = run_ok(in_busybox({"/bin/probe", "write", path}).namespaces(ns));
      EXPECT_TRUE(result == "open_write EROFS\n" || result == "open_write ENOENT\n" ||
                  (!is_root() && result == "open_write EACCES\n"))
          << path << ": " << result;
    }
  }
}

// A kernel without mount_setattr (before 5.12) cannot make a bind read-only with its
// submounts: the spawn fails and says why, rather than leave them writable. Played by this
// test binary run again with a seccomp filter that answers mount_setattr with ENOSYS (the
// filter, inherited by the container's setup, cannot be lifted from the test process).
TEST(RootFs, WithoutMountSetattrAReadOnlyBindFailsAndSaysWhy) {
  const char* marker = "HUTCH_TEST_NO_MOUNT_SETATTR";
  if (std::getenv(marker)) {
    auto filter = hutch::Seccomp::allow_by_default().deny("mount_setattr", ENOSYS).compile();
    ASSERT_TRUE(filter) << filter.error().message();
    sock_fprog program{static_cast<unsigned short>(filter->size()),
                       const_cast<sock_filter*>(filter->data())};
    ASSERT_EQ(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ASSERT_EQ(::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program), 0);
    LeakCheck leaks;
    auto r = in_busybox({"true"}, RootFs::directory(busybox).bind(busybox + "/etc", "/host-etc",
                                                                  hutch::read_only))
                 .run();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().step, Step::mount) << r.error().message();
    EXPECT_EQ(r.error().errno_value(), ENOSYS);
    EXPECT_NE(r.error().message().find("/host-etc"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("Linux >= 5.12"), std::string::npos) << r.error().message();
    return;
  }
  const std::string filter =
      "--gtest_filter=" +
      std::string(::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()) +
      "." + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv(marker, "1", 1);
    ::execl("/proc/self/exe", "hutch_tests", filter.c_str(), "--gtest_brief=1",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the run with mount_setattr failing (see its output above)";
}

// A mount of the user's under /proc: the masked and read-only paths still apply around it.
TEST(RootFs, MasksStillApplyWithAUserMountUnderProc) {
  LeakCheck leaks;
  TempDir source;
  std::ofstream(source.path() + "/cmdline") << "replaced\n";
  auto root = RootFs::directory(busybox).bind(source.path() + "/cmdline", "/proc/cmdline",
                                              hutch::read_only);
  EXPECT_EQ(run_ok(in_busybox({"cat", "/proc/cmdline"}, root)), "replaced\n");
  for (std::string path : {"/proc/keys", "/proc/acpi", "/proc/sys"}) {
    if (!fs::exists(path)) continue;
    EXPECT_EQ(
        run_ok(in_busybox({"sh", "-c", "grep -c ' " + path + " ' /proc/self/mountinfo"}, root)),
        "1\n")
        << path << " is masked or read-only: a mount of its own";
  }
  EXPECT_EQ(run_ok(in_busybox({"/bin/probe", "write", "/proc/sys/kernel/core_pattern"}, root)),
            is_root() ? "open_write EROFS\n" : "open_write EACCES\n");
}

TEST(RootFs, SymlinksInTheSnapshotCannotSendMountsToTheHost) {
  LeakCheck leaks;
  TempDir snapshot, host_target, source;
  fs::copy(probe_only, snapshot.path(), fs::copy_options::recursive);
  // Links that would lead a naive runtime out of the root, onto a host directory.
  fs::create_directory_symlink(host_target.path(), snapshot.path() + "/absolute");
  fs::create_directory_symlink("../../../../../../.." + host_target.path(),
                               snapshot.path() + "/relative");
  fs::create_directory_symlink("/", snapshot.path() + "/slash");
  // A dangling link as the mount target itself: created inside the root, where it points.
  fs::create_directory_symlink(host_target.path() + "/dangling", snapshot.path() + "/dangling");
  std::ofstream(source.path() + "/payload") << "bound";
  auto root = RootFs::directory(snapshot.path())
                  .bind(source.path(), "/absolute/mnt")
                  .bind(source.path(), "/relative/mnt2")
                  .bind(source.path(), "/dangling")
                  .tmpfs("/slash" + host_target.path() + "/mnt3", 1 << 20);
  auto out = run_ok(probe_in(root, {"cat", host_target.path() + "/mnt/payload"}));
  EXPECT_EQ(out, "bound") << "the bind should land inside the root";
  EXPECT_EQ(run_ok(probe_in(root, {"cat", host_target.path() + "/dangling/payload"})), "bound");
  EXPECT_TRUE(host_target.entries().empty()) << "a mount point was created on the host";
}

TEST(RootFs, BadInputFailsClearlyAndLeavesNothing) {
  LeakCheck leaks;
  TempDir runtime;
  ::setenv("XDG_RUNTIME_DIR", runtime.path().c_str(), 1);
  const std::string before = mountinfo();
  struct Case {
    RootFs root;
    Step step;
    int error;
    std::string text;
  };
  std::vector<Case> cases = {
      {RootFs::directory("/no/such/rootfs"), Step::prepare_rootfs, ENOENT, "/no/such/rootfs"},
      {RootFs::directory(busybox + "/bin/busybox").overlay(), Step::prepare_rootfs, ENOTDIR,
       "busybox"},
      {RootFs::directory(busybox).bind("/no/such/source", "/x"), Step::prepare_rootfs, ENOENT,
       "bind source"},
      {RootFs::directory(busybox).overlay().bind("/tmp", "/../../escape"), Step::validate, EINVAL,
       "'..'"},
      {RootFs::directory(busybox).bind("/tmp", "relative"), Step::validate, EINVAL, "absolute"},
      {RootFs::directory(busybox).overlay().tmpfs("/t", 0), Step::validate, EINVAL, "size"},
      {RootFs::directory(busybox).overlay("/no/such/scratch"), Step::prepare_rootfs, ENOENT,
       "scratch"},
      {RootFs::directory(busybox).overlay("/proc/sys"), Step::prepare_rootfs, 0, "scratch"},
  };
  for (auto& c : cases) {
    auto r = in_busybox({"true"}, c.root).spawn();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().step, c.step) << r.error().message();
    if (c.error) {
      EXPECT_EQ(r.error().errno_value(), c.error) << r.error().message();
    }
    EXPECT_NE(r.error().message().find(c.text), std::string::npos) << r.error().message();
  }
  auto no_mount_ns =
      in_busybox({"true"}).namespaces(Namespaces::all().without(Namespace::mount)).spawn();
  ASSERT_FALSE(no_mount_ns);
  EXPECT_NE(no_mount_ns.error().message().find("Namespace::mount"), std::string::npos);
  // A failure inside the container, after the overlay is up: a mount over a file that is
  // not a directory.
  auto inside = in_busybox({"true"}, RootFs::directory(busybox).overlay().tmpfs(
                                         "/bin/busybox/below", 1 << 20))
                    .spawn();
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().errno_value(), ENOTDIR) << inside.error().message();
  EXPECT_NE(inside.error().message().find("/bin/busybox/below"), std::string::npos);
  EXPECT_TRUE(runtime.entries().empty()) << "scratch directory left behind";
  EXPECT_EQ(mountinfo(), before);
  ::unsetenv("XDG_RUNTIME_DIR");
}

TEST(RootFs, OverlayScratchMountPointIsOnATmpfsAndGoesWithTheChild) {
  LeakCheck leaks;
  struct statfs shm {};
  if (::statfs("/dev/shm", &shm) != 0 || shm.f_type != TMPFS_MAGIC) {
    GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  }
  ::unsetenv("XDG_RUNTIME_DIR");
  auto child = probe_in(RootFs::directory(probe_only).overlay(), {"create", "/written", "x"})
                   .std_out(hutch::Stdio::null())
                   .spawn();
  ASSERT_TRUE(child) << child.error().message();
  const std::string scratch = child->scratch_dir();
  EXPECT_EQ(scratch.rfind("/dev/shm/hutch-", 0), 0u) << scratch;
  ASSERT_TRUE(child->wait());
  EXPECT_TRUE(fs::is_empty(scratch)) << "the writable layer lives in the container's namespace";
  *child = hutch::Child();
  EXPECT_FALSE(fs::exists(scratch));
}

TEST(RootFs, TheHostHoldsAMountNamespaceFromTheFirstWaitUntilTheReap) {
  LeakCheck leaks;
  // Which mount namespaces this process holds descriptors of.
  auto held = [] {  // one entry per descriptor
    std::multiset<std::string> namespaces;
    for (auto& e : fs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      auto target = fs::read_symlink(e.path(), ec).string();
      if (!ec && target.rfind("mnt:[", 0) == 0) namespaces.insert(target);
    }
    return namespaces;
  };
  auto child = probe_in(RootFs::directory(probe_only).overlay(), {"sleep", "30"}).spawn();
  ASSERT_TRUE(child) << child.error().message();
  const std::string ns = fs::read_symlink(fmt::format("/proc/{}/ns/mnt", child->pid())).string();
  EXPECT_EQ(held().count(ns), 0u) << "a container no one waits for costs only its pidfd";
  ASSERT_TRUE(child->kill());
  EXPECT_EQ(held().count(ns), 1u) << "held from the first signal, so the exit is quick";
  ASSERT_TRUE(child->wait());
  hutch::settle();
  EXPECT_EQ(held().count(ns), 0u) << "released once reaped";

  // The first wait or poll takes the hold too; a second one takes no other.
  const Container sleeper = probe_in(RootFs::directory(probe_only), {"sleep", "30"});
  auto waited = sleeper.spawn();
  ASSERT_TRUE(waited) << waited.error().message();
  auto polled = sleeper.spawn();
  ASSERT_TRUE(polled) << polled.error().message();
  auto ns_of = [](const hutch::Child& c) {
    return fs::read_symlink(fmt::format("/proc/{}/ns/mnt", c.pid())).string();
  };
  const std::string waited_ns = ns_of(*waited), polled_ns = ns_of(*polled);
  auto still = waited->wait_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(still && !*still);
  EXPECT_EQ(held().count(waited_ns), 1u) << "held from the first wait";
  EXPECT_EQ(held().count(polled_ns), 0u);
  pollfd p{polled->pidfd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  (void)polled->pidfd();
  EXPECT_EQ(held().count(polled_ns), 1u) << "held once the host polls the pidfd";
  const std::size_t fds = held().size();
  ASSERT_TRUE(waited->kill());
  ASSERT_TRUE(polled->kill());
  EXPECT_EQ(held().size(), fds) << "one hold per container";
  *waited = hutch::Child();
  *polled = hutch::Child();
  hutch::settle();
  EXPECT_TRUE(held().empty()) << "every hold released";

  auto detached = probe_in(RootFs::directory(probe_only), {"exit", "0"}).spawn();
  ASSERT_TRUE(detached) << detached.error().message();
  const pid_t pid = detached->detach();
  EXPECT_TRUE(held().empty()) << "a detached container is not held";
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
}

TEST(RootFs, HundredOverlayContainersLeaveNoMountsOrScratch) {
  LeakCheck leaks;
  TempDir runtime;
  ::setenv("XDG_RUNTIME_DIR", runtime.path().c_str(), 1);
  const std::string before = mountinfo();
  const Container c = probe_in(RootFs::directory(probe_only).overlay(), {"exit", "0"});
  for (int i = 0; i < 100; ++i) {
    auto child = c.spawn();
    ASSERT_TRUE(child) << child.error().message();
  }  // each destroyed while running or just after: killed, reaped, cleaned
  for (int i = 0; i < 20; ++i) {
    auto status = c.run();
    ASSERT_TRUE(status && status->success());
  }
  EXPECT_TRUE(runtime.entries().empty());
  EXPECT_EQ(mountinfo(), before);
  ::unsetenv("XDG_RUNTIME_DIR");
}

}  // namespace
