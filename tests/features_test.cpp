// What an OCI runtime needs of the library: a start by FIFO from another process, joined
// namespaces (a pod's), sysctls, a domain name, all five capability sets, executing a host
// file by descriptor.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>

#include "support.hpp"

using namespace hutch_test;
using hutch::Capabilities;
using hutch::Capability;
using hutch::Container;
using hutch::Namespace;
using hutch::RootFs;
using hutch::Stdio;

namespace {

std::string inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? std::to_string(st.st_ino) : "?";
}

}  // namespace

// The created container waits on a FIFO; another process (a fork here, `hutch-runtime start`
// in use) starts it by path, after the creating handle let it go.
TEST(Features, ACreatedContainerIsStartedByItsFifoFromAnotherProcess) {
  LeakCheck leaks;
  char dir[] = "/tmp/hutch-fifo-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/exec.fifo";
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  auto created = busybox_container({"sh", "-c", "echo started $$"})
                     .std_out(Stdio::fd(out[1]))
                     .start_fifo(fifo)
                     .die_with_parent(false)
                     .create();
  ::close(out[1]);
  ASSERT_TRUE(created) << created.error().message();
  const pid_t pid = created->detach();
  pid_t starter = ::fork();
  if (starter == 0) std::_Exit(hutch::start_created(fifo, pid) ? 0 : 1);
  int status = 0;
  ASSERT_EQ(::waitpid(starter, &status, 0), starter);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char text[64] = {};
  ASSERT_GT(::read(out[0], text, sizeof text - 1), 0);
  EXPECT_STREQ(text, "started 1\n");
  ::close(out[0]);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);  // still our child: we reap it
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Gone before anyone starts it: the starter says so rather than wait.
  auto lost = busybox_container({"true"}).start_fifo(fifo).die_with_parent(false).create();
  ASSERT_TRUE(lost) << lost.error().message();
  const pid_t lost_pid = lost->detach();
  ::kill(lost_pid, SIGKILL);
  ::waitpid(lost_pid, &status, 0);
  auto never = hutch::start_created(fifo, lost_pid, std::chrono::seconds(5));
  EXPECT_FALSE(never);
  // A command that is not there fails at create, not at start.
  auto missing = busybox_container({"no-such-command"}).start_fifo(fifo).create();
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().step, hutch::Step::exec) << missing.error().message();
  std::filesystem::remove_all(dir);
}

// A second container joins the first one's network, uts and pid namespaces, as a pod's do.
TEST(Features, JoinedNamespacesAreShared) {
  // A container's own user namespace owns its other namespaces: another container, in a user
  // namespace of its own, may not enter them. Pods share one user namespace (the host's, as
  // root; rootless engines run every container in theirs).
  HUTCH_REQUIRE_ROOT();
  LeakCheck leaks;
  const auto no_user = hutch::Namespaces::all().without(Namespace::user);
  auto infra = busybox_container({"sh", "-c", "echo up; cat"})
                   .namespaces(no_user)
                   .hostname("pod")
                   .std_in(Stdio::piped())
                   .std_out(Stdio::piped())
                   .spawn();
  ASSERT_TRUE(infra) << infra.error().message();
  char up[3];
  ASSERT_EQ(::read(infra->stdout_pipe().get(), up, 3), 3);
  const std::string ns = fmt::format("/proc/{}/ns/", infra->pid());
  auto out =
      run_ok(busybox_container({"sh", "-c",
                                "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/pid; "
                                "echo $$"})
                 .namespaces(no_user)
                 .join_namespace(Namespace::net, ns + "net")
                 .join_namespace(Namespace::uts, ns + "uts")
                 .join_namespace(Namespace::pid, ns + "pid"));
  const auto got = lines(out);
  ASSERT_EQ(got.size(), 4u) << out;
  EXPECT_EQ(got[0], "pod");
  EXPECT_EQ(got[1], fmt::format("net:[{}]", inode(ns + "net")));
  EXPECT_EQ(got[2], fmt::format("pid:[{}]", inode(ns + "pid")));
  EXPECT_NE(got[3], "1") << "a joined pid namespace already has its PID 1";
  auto refused = busybox_container({"true"}).join_namespace(Namespace::mount, ns + "mnt").spawn();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("not supported"), std::string::npos);
  infra->stdin_pipe().reset();
  ASSERT_TRUE(infra->wait());
}

TEST(Features, SysctlsAndTheDomainNameAreTheContainersOwn) {
  LeakCheck leaks;
  const std::string host_start = read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  auto out = run_ok(busybox_container({"sh", "-c",
                                       "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; "
                                       "cat /proc/sys/kernel/domainname"})
                        .sysctl("net.ipv4.ip_unprivileged_port_start", "0")
                        .domainname("example.test"));
  EXPECT_EQ(out, "0\nexample.test\n");
  EXPECT_EQ(read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start"), host_start);
  for (const char* key : {"vm.overcommit_memory", "kernel.panic", "net..x", "../../etc"}) {
    auto r = busybox_container({"true"}).sysctl(key, "1").spawn();
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().step, hutch::Step::validate);
  }
  auto no_net = busybox_container({"true"})
                    .namespaces(hutch::Namespaces::all().without(Namespace::net))
                    .sysctl("net.ipv4.ip_forward", "1")
                    .spawn();
  EXPECT_FALSE(no_net) << "a net.* sysctl without a network namespace would be the host's";
}

TEST(Features, EachCapabilitySetIsItsOwn) {
  // For root, execve makes the permitted and effective sets the bounding set: the sets show
  // for another user (mapped as is, which only root may).
  HUTCH_REQUIRE_ROOT();
  LeakCheck leaks;
  const auto net_raw = Capabilities::of({Capability::net_raw});
  const auto both = Capabilities::of({Capability::net_raw, Capability::kill});
  auto out = run_ok(probe_container({"status"})
                        .rootfs(RootFs::directory(busybox).overlay())
                        .command({"/bin/probe", "status"})
                        .uid_map({{0, 0, 65536}})
                        .gid_map({{0, 0, 65536}})
                        .user(1000, 1000)
                        .capability_sets({both, net_raw, both, net_raw, net_raw}));
  EXPECT_EQ(status_field(out, "CapBnd"), "0000000000002020");
  EXPECT_EQ(status_field(out, "CapEff"), "0000000000002000");
  EXPECT_EQ(status_field(out, "CapPrm"), "0000000000002000");
  EXPECT_EQ(status_field(out, "CapInh"), "0000000000002000");
  EXPECT_EQ(status_field(out, "CapAmb"), "0000000000002000");
}

TEST(Features, AHostFileRunsInsideByItsDescriptor) {
  LeakCheck leaks;
  hutch::Fd probe(::open(hutch_test::probe.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(probe);
  auto out = run_ok(Container{}
                        .command({"probe-by-fd", "hostname"})
                        .rootfs(RootFs::directory(rootfs_dir + "/probe").overlay())
                        .hostname("byfd")
                        .executable_fd(probe.get()));
  EXPECT_EQ(out, "byfd\n");
}
