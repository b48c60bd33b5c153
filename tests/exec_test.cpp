// Child::exec and hutch::exec_in: a process run inside a running container sees what the
// container's own processes see — its root, hostname, pid namespace, cgroup — and is set up
// as they are.
#include <poll.h>
#include <signal.h>

#include <filesystem>

#include "support.hpp"

using namespace hutch_test;
using hutch::Container;
using hutch::Process;
using hutch::RootFs;
using hutch::Stdio;

namespace {

/// A container that waits (reads its stdin) until the test closes it.
hutch::Child waiting_container(Container c = Container{}) {
  auto child = c.command({"/bin/sh", "-c", "echo up; cat"})
                   .rootfs(RootFs::directory(busybox).overlay())
                   .hostname("inside")
                   .std_in(Stdio::piped())
                   .std_out(Stdio::piped())
                   .spawn();
  EXPECT_TRUE(child) << child.error().message();
  char up[3];
  EXPECT_EQ(::read(child->stdout_pipe().get(), up, 3), 3);
  return std::move(*child);
}

std::string exec_output(const hutch::Child& c, Process p) {
  auto child = c.exec(p.std_out(Stdio::piped()).std_err(Stdio::piped()));
  EXPECT_TRUE(child) << child.error().message();
  if (!child) return {};
  auto out = child->wait_with_output();
  EXPECT_TRUE(out && out->status.success())
      << (out ? fmt::format("{} {}", out->status, out->std_err) : out.error().message());
  return out ? out->std_out : std::string();
}

}  // namespace

TEST(Exec, AProcessRunsInsideTheContainersNamespacesRootAndCgroup) {
  LeakCheck leaks;
  auto box = waiting_container();
  const std::string out = exec_output(
      box, Process{}.command(
               {"sh", "-c",
                "hostname; cat /etc/marker; echo pid $$; "
                "[ $(readlink /proc/self/ns/pid) = $(readlink /proc/1/ns/pid) ] && echo same-pid; "
                "[ $(readlink /proc/self/ns/mnt) = $(readlink /proc/1/ns/mnt) ] && echo same-mnt; "
                "[ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo same-cgroup; "
                "id -u"}));
  const auto got = lines(out);
  ASSERT_EQ(got.size(), 7u) << out;
  EXPECT_EQ(got[0], "inside");
  EXPECT_EQ(got[1], "snapshot");
  EXPECT_NE(got[2], "pid 1") << "the exec'd process is not the container's init";
  EXPECT_LT(std::stoi(got[2].substr(4)), 100) << "its pid is the container's, not the host's";
  EXPECT_EQ(got[3], "same-pid");
  EXPECT_EQ(got[4], "same-mnt");
  EXPECT_EQ(got[5], "same-cgroup");
  EXPECT_EQ(got[6], "0");
  box.stdin_pipe().reset();
  ASSERT_TRUE(box.wait());
}

TEST(Exec, ItTakesItsOwnSettingsOrTheContainers) {
  LeakCheck leaks;
  Container c;
  c.capabilities(hutch::Capabilities::none()).env("FROM", "container").cwd("/etc");
  auto box = waiting_container(c);
  auto caps = [](const std::string& status) { return status_field(status, "CapEff"); };
  const std::string own =
      exec_output(box, Process{}.command({"sh", "-c", "cat /proc/self/status; echo $FROM; pwd"}));
  EXPECT_EQ(caps(own), "00000000a80425fb") << "a Process has Docker's capabilities by default";
  const std::string theirs = exec_output(
      box, Process::of(c.spec()).command({"sh", "-c", "cat /proc/self/status; echo $FROM; pwd"}));
  EXPECT_EQ(caps(theirs), "0000000000000000");
  EXPECT_NE(theirs.find("container\n/etc\n"), std::string::npos) << theirs;
  EXPECT_EQ(status_field(theirs, "NoNewPrivs"), "1");
  box.stdin_pipe().reset();
  ASSERT_TRUE(box.wait());
}

TEST(Exec, ATerminalAndExitStatusesComeBack) {
  LeakCheck leaks;
  auto box = waiting_container();
  auto tty = box.exec(Process{}.command({"sh", "-c", "test -t 0 && echo tty; exit 5"}).tty());
  ASSERT_TRUE(tty) << tty.error().message();
  std::string seen;
  char buffer[256];
  for (int i = 0; i < 50 && seen.find("tty") == std::string::npos; ++i) {
    pollfd p{tty->pty().get(), POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      ssize_t n = ::read(tty->pty().get(), buffer, sizeof buffer);
      if (n > 0) seen.append(buffer, static_cast<std::size_t>(n));
    }
  }
  EXPECT_NE(seen.find("tty"), std::string::npos) << seen;
  auto status = tty->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 5);
  box.stdin_pipe().reset();
  ASSERT_TRUE(box.wait());
}

TEST(Exec, FailuresNameTheirCauseAndLeaveNothing) {
  LeakCheck leaks;
  auto box = waiting_container();
  auto missing = box.exec(Process{}.command({"no-such-command"}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().step, hutch::Step::exec) << missing.error().message();
  auto cwd = box.exec(Process{}.command({"true"}).cwd("/no/such/dir"));
  ASSERT_FALSE(cwd);
  EXPECT_EQ(cwd.error().step, hutch::Step::chdir) << cwd.error().message();
  EXPECT_FALSE(box.exec(Process{}));
  box.stdin_pipe().reset();
  ASSERT_TRUE(box.wait());
  auto gone = box.exec(Process{}.command({"true"}));
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message().find("not running"), std::string::npos);
  EXPECT_FALSE(has_zombie_child());
}

TEST(Exec, ByPidFromAProcessThatDidNotStartTheContainer) {
  LeakCheck leaks;
  auto box = waiting_container();
  auto child = hutch::exec_in(
      box.pid(),
      Process{}.command({"sh", "-c", "hostname; cat /etc/marker"}).std_out(Stdio::piped()));
  ASSERT_TRUE(child) << child.error().message();
  auto out = child->wait_with_output();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->std_out, "inside\nsnapshot\n");
  box.stdin_pipe().reset();
  ASSERT_TRUE(box.wait());
}
