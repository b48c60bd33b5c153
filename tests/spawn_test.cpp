// Container::spawn() and Child: what the contained process sees, and what is left after.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <sys/prctl.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "support.hpp"

using namespace hutch_test;
using hutch::Container;
using hutch::Namespace;
using hutch::Namespaces;
using hutch::Stdio;

namespace {

const Namespace all_kinds[] = {Namespace::user, Namespace::pid, Namespace::mount, Namespace::uts,
                               Namespace::ipc,  Namespace::net, Namespace::cgroup};

// --- namespaces ---------------------------------------------------------------------------

TEST(Namespaces, EachRequestedNamespaceIsNewAndTheOthersAreTheHosts) {
  LeakCheck leaks;
  for (Namespace requested : all_kinds) {
    Namespaces set = Namespaces::none().with(requested);
    if (!is_root()) set = set.with(Namespace::user);
    auto seen = parse(run_ok(probe_container({"ns"}).namespaces(set)));
    for (Namespace kind : all_kinds) {
      std::string name(hutch::proc_name(kind));
      if (set.contains(kind)) {
        EXPECT_NE(seen[name], host_ns(name))
            << name << " should be new when asking for " << hutch::proc_name(requested);
      } else {
        EXPECT_EQ(seen[name], host_ns(name))
            << name << " should be the host's when asking for " << hutch::proc_name(requested);
      }
    }
  }
}

TEST(Namespaces, AllIsNewForEveryKind) {
  LeakCheck leaks;
  auto seen = parse(run_ok(probe_container({"ns"})));
  for (Namespace kind : all_kinds) {
    std::string name(hutch::proc_name(kind));
    EXPECT_NE(seen[name], host_ns(name)) << name;
  }
  EXPECT_EQ(seen["time"], host_ns("time")) << "time is opt-in";
}

TEST(Namespaces, TimeNamespaceIsNewOrTheKernelSaysItCannot) {
  LeakCheck leaks;
  auto out = probe_container({"ns"}).namespaces(Namespaces::all().with(Namespace::time)).output();
  if (!out) {
    // Kernels that do not enter the new time namespace at exec (seen on 6.1).
    EXPECT_EQ(out.error().step, hutch::Step::unshare_time) << out.error().message();
    EXPECT_EQ(out.error().errno_value(), ENOTSUP);
    return;
  }
  EXPECT_NE(parse(out->std_out)["time"], host_ns("time"));
}

TEST(Namespaces, TimeNamespaceAppliesOffsetsOrSaysTheKernelCannot) {
  LeakCheck leaks;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  auto out = probe_container({"monotonic"})
                 .namespaces(Namespaces::all().with(Namespace::time))
                 .time_offsets({.monotonic_seconds = 86400 * 365})
                 .output();
  if (!out) {
    // Kernels that do not enter the new time namespace at exec (seen on 6.1).
    EXPECT_EQ(out.error().step, hutch::Step::unshare_time) << out.error().message();
    EXPECT_EQ(out.error().errno_value(), ENOTSUP);
    return;
  }
  long inside = std::stol(parse(out->std_out)["monotonic"]);
  EXPECT_GE(inside, now.tv_sec + 86400 * 365);
  EXPECT_LT(inside, now.tv_sec + 86400 * 365 + 60);
}

TEST(Namespaces, PidNamespaceMakesTheCommandPid1AndHidesTheHost) {
  LeakCheck leaks;
  auto seen = parse(run_ok(probe_container({"pid"})));
  EXPECT_EQ(seen["pid"], "1");
  EXPECT_EQ(seen["ppid"], "0");
  auto procs = lines(run_ok(probe_container({"procs"})));
  EXPECT_EQ(procs, std::vector<std::string>{"1"});
}

TEST(Namespaces, HostnameIsTheConfiguredOne) {
  LeakCheck leaks;
  char before[256] = {};
  gethostname(before, sizeof before - 1);
  EXPECT_EQ(run_ok(probe_container({"hostname"}).hostname("box-1.test")), "box-1.test\n");
  char after[256] = {};
  gethostname(after, sizeof after - 1);
  EXPECT_STREQ(before, after);
}

TEST(Namespaces, DefaultIdMapMakesTheCallerRootInside) {
  LeakCheck leaks;
  auto ids = parse(run_ok(probe_container({"ids"})));
  EXPECT_EQ(ids["uid"], "0");
  EXPECT_EQ(ids["gid"], "0");
  auto map = run_ok(probe_container({"cat", "/proc/self/uid_map"}));
  std::istringstream in(map);
  unsigned inside = 9, outside = 9, count = 9;
  in >> inside >> outside >> count;
  EXPECT_EQ(inside, 0u);
  EXPECT_EQ(outside, ::geteuid());
  EXPECT_EQ(count, 1u);
}

TEST(Namespaces, ConfiguredIdRangeIsWhatTheContainerSees) {
  HUTCH_REQUIRE_ROOT();
  LeakCheck leaks;
  auto c = probe_container({"cat", "/proc/self/uid_map"})
               .uid_map({{0, 100000, 65536}})
               .gid_map({{0, 100000, 65536}});
  auto map = run_ok(c);
  std::istringstream in(map);
  unsigned inside = 9, outside = 9, count = 9;
  in >> inside >> outside >> count;
  EXPECT_EQ(inside, 0u);
  EXPECT_EQ(outside, 100000u);
  EXPECT_EQ(count, 65536u);
  // A user inside the range.
  auto ids = parse(run_ok(probe_container({"ids"})
                              .uid_map({{0, 100000, 65536}})
                              .gid_map({{0, 100000, 65536}})
                              .user(1000, 1000, {1000, 2000})));
  EXPECT_EQ(ids["uid"], "1000");
  EXPECT_EQ(ids["gid"], "1000");
  EXPECT_EQ(ids["groups"], "1000 2000");
}

TEST(Namespaces, LoopbackIsUpInANewNetworkNamespace) {
  LeakCheck leaks;
  auto out = run_ok(probe_container({"lo"}));
  EXPECT_NE(out.find("lo up"), std::string::npos) << out;
}

// --- network namespaces made ahead -----------------------------------------------------

/// As root, a container without a user namespace (its network namespace then belongs to the
/// host's either way); rootless, one with: the reserve makes none, the container its own.
Namespaces made_ahead_namespaces() {
  return is_root() ? Namespaces::all().without(Namespace::user) : Namespaces::all();
}

TEST(NetworkMadeAhead, EachContainerGetsAFreshOneWithLoopbackUp) {
  LeakCheck leaks;
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto c = probe_container({"ns"}).namespaces(made_ahead_namespaces()).network_made_ahead();
    auto ns = parse(run_ok(c));
    EXPECT_NE(ns["net"], host_ns("net"));
    EXPECT_TRUE(seen.insert(ns["net"]).second) << "a network namespace was used twice";
    auto lo =
        run_ok(probe_container({"lo"}).namespaces(made_ahead_namespaces()).network_made_ahead());
    EXPECT_NE(lo.find("lo up"), std::string::npos) << lo;
  }
  auto created = probe_container({"ns"})
                     .namespaces(made_ahead_namespaces())
                     .network_made_ahead()
                     .std_out(Stdio::piped())
                     .create();
  ASSERT_TRUE(created) << created.error().message();
  auto child = created->start();
  ASSERT_TRUE(child) << child.error().message();
  auto out = child->wait_with_output();
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_TRUE(seen.insert(parse(out->std_out)["net"]).second);
  // As root the reserve's thread keeps some made; rootless it makes none.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (is_root() && hutch::detail::NetReserve::get().ready() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(hutch::detail::NetReserve::get().ready() > 0, is_root());
  hutch::detail::NetReserve::get().release();  // the reserve's descriptors, before LeakCheck's
}

TEST(NetworkMadeAhead, WithAUserNamespaceItBelongsToTheHost) {
  HUTCH_REQUIRE_ROOT();
  LeakCheck leaks;
  // The container's root may bind port 80 in a network namespace of its own user namespace,
  // not in one of the host's: the capability counts in the namespace's owner.
  auto own = run_ok(probe_container({"bind", "80"}));
  EXPECT_NE(own.find("bind ok"), std::string::npos) << own;
  auto ahead = run_ok(probe_container({"bind", "80"}).network_made_ahead());
  EXPECT_NE(ahead.find("bind error Permission denied"), std::string::npos) << ahead;
  // Without a user namespace the container's root is the host's: the same either way.
  auto host_root = run_ok(
      probe_container({"bind", "80"}).namespaces(made_ahead_namespaces()).network_made_ahead());
  EXPECT_NE(host_root.find("bind ok"), std::string::npos) << host_root;
  // Its /sys is a sysfs of its own network namespace (made with it: the container's root
  // could not mount one), read-only, not the host's bound in.
  auto sys = run_ok(busybox_container({"sh", "-c", "ls /sys/class/net; touch /sys/x || echo ro"})
                        .network_made_ahead());
  EXPECT_EQ(sys, "lo\nro\n");
  hutch::detail::NetReserve::get().release();
}

TEST(NetworkMadeAhead, RootlessTheContainerMakesItsOwn) {
  HUTCH_REQUIRE_ROOTLESS();
  LeakCheck leaks;
  auto out = run_ok(probe_container({"bind", "80"}).network_made_ahead());
  EXPECT_NE(out.find("bind ok"), std::string::npos) << out;
  EXPECT_EQ(hutch::detail::NetReserve::get().ready(), 0u);
}

TEST(NetworkMadeAhead, NetSysctlsWithAUserNamespaceAreRefused) {
  LeakCheck leaks;
  auto child = probe_container({"ns"})
                   .network_made_ahead()
                   .sysctl("net.ipv4.ip_unprivileged_port_start", "0")
                   .spawn();
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().step, hutch::Step::validate);
  EXPECT_NE(child.error().note.find("host's user namespace"), std::string::npos)
      << child.error().message();
  // Without a user namespace they are the host root's to set, as always.
  auto set = probe_container({"cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"})
                 .namespaces(made_ahead_namespaces())
                 .network_made_ahead()
                 .sysctl("net.ipv4.ip_unprivileged_port_start", "0");
  if (is_root()) {
    EXPECT_EQ(run_ok(set), "0\n");
  }
  hutch::detail::NetReserve::get().release();
}

TEST(Namespaces, RootlessCallerBecomesRootInside) {
  HUTCH_REQUIRE_ROOTLESS();
  LeakCheck leaks;
  auto map = run_ok(probe_container({"cat", "/proc/self/uid_map"}));
  EXPECT_EQ(map.substr(0, map.find('\n')).find(std::to_string(::geteuid())) != std::string::npos,
            true)
      << map;
  auto ids = parse(run_ok(probe_container({"ids"})));
  EXPECT_EQ(ids["uid"], "0");
}

TEST(Namespaces, RootlessWithoutUserNamespaceIsRefusedWithAHint) {
  HUTCH_REQUIRE_ROOTLESS();
  LeakCheck leaks;
  auto r = probe_container({"pid"}).namespaces(Namespaces::of({Namespace::net})).spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().step, hutch::Step::clone);
  EXPECT_EQ(r.error().errno_value(), EPERM);
  EXPECT_NE(r.error().message().find("Namespace::user"), std::string::npos) << r.error().message();
}

TEST(Namespaces, RootlessCannotMapOtherIds) {
  HUTCH_REQUIRE_ROOTLESS();
  LeakCheck leaks;
  auto r = probe_container({"pid"}).uid_map({{0, 0, 1}}).spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().step, hutch::Step::write_uid_map);
  EXPECT_NE(r.error().message().find("CAP_SETUID"), std::string::npos) << r.error().message();
}

// --- process setup -------------------------------------------------------------------------

TEST(Spawn, EnvironmentIsMinimalByDefault) {
  LeakCheck leaks;
  ::setenv("HUTCH_TEST_SECRET", "x", 1);
  auto env = lines(run_ok(probe_container({"env"}).hostname("h")));
  EXPECT_EQ(env, (std::vector<std::string>{std::string("PATH=") + std::string(hutch::default_path),
                                           "HOSTNAME=h"}));
}

TEST(Spawn, EnvironmentChangesApplyInOrder) {
  LeakCheck leaks;
  auto env = lines(run_ok(probe_container({"env"})
                              .env({"A=1", "B=2"})
                              .env("A", "3")
                              .env_remove("PATH")
                              .env("C", "x=y")));
  EXPECT_EQ(env, (std::vector<std::string>{"A=3", "B=2", "C=x=y"}));
  auto empty = run_ok(probe_container({"env"}).env_clear());
  EXPECT_EQ(empty, "");
  ::setenv("HUTCH_TEST_INHERITED", "yes", 1);
  auto inherited = run_ok(probe_container({"env"}).env_inherit());
  EXPECT_NE(inherited.find("HUTCH_TEST_INHERITED=yes"), std::string::npos);
}

TEST(Spawn, CommandIsSearchedInTheContainersPath) {
  LeakCheck leaks;
  std::string dir = probe.substr(0, probe.rfind('/'));
  std::string name = probe.substr(probe.rfind('/') + 1);
  auto out = run_ok(Container{}.command({name, "pid"}).env("PATH", "/nonexistent:" + dir));
  EXPECT_EQ(parse(out)["pid"], "1");
}

TEST(Spawn, CwdIsApplied) {
  LeakCheck leaks;
  EXPECT_EQ(run_ok(probe_container({"cwd"}).cwd("/tmp")), "/tmp\n");
}

TEST(Spawn, SignalsStartUnblockedWithDefaultHandlers) {
  LeakCheck leaks;
  // The host ignores SIGPIPE and a real-time signal, handles SIGTERM and blocks SIGUSR1;
  // the container must start clean.
  auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
  auto old_rt = ::signal(SIGRTMIN + 3, SIG_IGN);
  auto old_term = ::signal(SIGTERM, [](int) {});
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  auto status = run_ok(probe_container({"status"}));
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::signal(SIGPIPE, old_pipe);
  ::signal(SIGRTMIN + 3, old_rt);
  ::signal(SIGTERM, old_term);
  EXPECT_NE(status.find("SigBlk:\t0000000000000000\n"), std::string::npos) << status;
  EXPECT_NE(status.find("SigIgn:\t0000000000000000\n"), std::string::npos) << status;
  EXPECT_NE(status.find("SigCgt:\t0000000000000000\n"), std::string::npos) << status;
}

std::atomic<int> host_handler_runs{0};

/// The pid of a child of this process (the paused container), or -1.
pid_t child_of_this_process() {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent == ::getpid()) return std::stoi(name);
  }
  return -1;
}

// A signal sent to the container while it sets up waits until its command starts and then
// acts as on a fresh process: the host's handler never runs in the child (whose memory is
// the host's until execve), the default action does.
TEST(Spawn, ASignalDuringSetupGetsTheDefaultActionNotTheHostsHandler) {
  LeakCheck leaks;
  auto old_handler = ::signal(SIGUSR2, [](int) { ++host_handler_runs; });
  int pause[2];
  ASSERT_EQ(::pipe2(pause, O_CLOEXEC), 0);
  hutch::detail::test_pause_fd = pause[0];
  std::optional<hutch::result<hutch::ExitStatus>> status;
  // (Waits in the spawning thread: the container dies with the thread that made it.)
  // Without a pid namespace: an init process would drop a signal it has no handler for.
  std::thread spawner([&] {
    status.emplace(
        probe_container({"pid"}).namespaces(Namespaces::all().without(Namespace::pid)).run());
  });
  pid_t pid = -1;
  for (int i = 0; i < 2000 && (pid < 0 || ::prctl(PR_GET_DUMPABLE) != 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (pid < 0) pid = child_of_this_process();
  }
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, SIGUSR2), 0);
  ASSERT_EQ(::write(pause[1], "x", 1), 1);
  spawner.join();
  hutch::detail::test_pause_fd = -1;
  ::close(pause[0]);
  ::close(pause[1]);
  ::signal(SIGUSR2, old_handler);
  ASSERT_TRUE(status && *status) << (*status).error().message();
  EXPECT_EQ((*status)->signal, SIGUSR2) << fmt::format("{}", **status);
  EXPECT_EQ(host_handler_runs.load(), 0);
}

// --- stdio ---------------------------------------------------------------------------------

TEST(Stdio, CapturesEightMegabytesOnEachStreamWithoutDeadlock) {
  LeakCheck leaks;
  constexpr long size = 8 * 1024 * 1024;
  auto out = probe_container({"spew", std::to_string(size)}).output();
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_TRUE(out->status.success());
  EXPECT_EQ(out->std_out.size(), static_cast<size_t>(size));
  EXPECT_EQ(out->std_err.size(), static_cast<size_t>(size));
  EXPECT_EQ(out->std_out.find_first_not_of('o'), std::string::npos);
  EXPECT_EQ(out->std_err.find_first_not_of('e'), std::string::npos);
}

TEST(Stdio, PipedStdinReachesTheCommand) {
  LeakCheck leaks;
  auto child = probe_container({"cat"})
                   .std_in(Stdio::piped())
                   .std_out(Stdio::piped())
                   .std_err(Stdio::null())
                   .spawn();
  ASSERT_TRUE(child) << child.error().message();
  std::string input(3 * 1024 * 1024, 'i');
  auto out = child->wait_with_output(input);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->std_out, input);
}

TEST(Stdio, NullFileAndFdModes) {
  LeakCheck leaks;
  char path[] = "/tmp/hutch-stdio-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto status = probe_container({"hostname"})
                    .hostname("to-a-file")
                    .std_in(Stdio::null())
                    .std_out(Stdio::file(path))
                    .run();
  ASSERT_TRUE(status);
  EXPECT_EQ(read_file(path), "to-a-file\n");
  ASSERT_TRUE(probe_container({"hostname"}).hostname("again").std_out(Stdio::append(path)).run());
  EXPECT_EQ(read_file(path), "to-a-file\nagain\n");
  // stdin from a file, stdout to a host fd.
  std::string copy = std::string(path) + ".copy";
  int out_fd = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_TRUE(probe_container({"cat"}).std_in(Stdio::file(path)).std_out(Stdio::fd(out_fd)).run());
  ::close(out_fd);
  EXPECT_EQ(read_file(copy), "to-a-file\nagain\n");
  ::unlink(copy.c_str());
  // stdin null reads nothing.
  EXPECT_EQ(run_ok(probe_container({"cat"}).std_in(Stdio::null())), "");
  ::unlink(path);
}

TEST(Stdio, TtyGivesAControllingTerminalWithItsWindowSize) {
  LeakCheck leaks;
  auto child = Container{}
                   .command({"/bin/sh", "-c",
                             "test -t 0 && test -t 1 && test -t 2 && echo is-a-tty; read x; "
                             "stty size; ps -o sid= -p $$ >/dev/null; echo done"})
                   .tty()
                   .tty_size(20, 70)
                   .spawn();
  ASSERT_TRUE(child) << child.error().message();
  ASSERT_TRUE(child->pty());
  winsize initial{};
  ASSERT_EQ(::ioctl(child->pty().get(), TIOCGWINSZ, &initial), 0);
  EXPECT_EQ(initial.ws_row, 20);
  EXPECT_EQ(initial.ws_col, 70);
  ASSERT_TRUE(child->resize(33, 101));
  ASSERT_EQ(::write(child->pty().get(), "go\n", 3), 3);
  std::string seen;
  char buffer[256];
  ssize_t n;
  // Reads until the container closes its side (EIO on the master).
  while ((n = ::read(child->pty().get(), buffer, sizeof buffer)) > 0) seen.append(buffer, n);
  auto status = child->wait();
  ASSERT_TRUE(status && status->success()) << seen;
  EXPECT_NE(seen.find("is-a-tty"), std::string::npos) << seen;
  EXPECT_NE(seen.find("33 101"), std::string::npos) << seen;
}

// --- descriptors ---------------------------------------------------------------------------

TEST(Fds, OnlyStdioAndPassedFdsReachTheContainer) {
  LeakCheck leaks;
  int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  int high = ::fcntl(leaky, F_DUPFD, 200);    // also without CLOEXEC
  auto fds = lines(run_ok(probe_container({"fds"})));
  EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2"}));
  int passed = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto with_passed = lines(run_ok(probe_container({"fds"}).pass_fd(passed, 7).pass_fd(high, 3)));
  EXPECT_EQ(with_passed, (std::vector<std::string>{"0", "1", "2", "3", "7"}));
  ::close(passed);
  ::close(high);
  ::close(leaky);
}

TEST(Fds, PassedFdsMaySwapNumbers) {
  LeakCheck leaks;
  int pipe_a[2], pipe_b[2];
  ASSERT_EQ(::pipe2(pipe_a, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(pipe_b, O_CLOEXEC), 0);
  // Pass the write end of a as b's write-end number and vice versa.
  auto status = Container{}
                    .command({"/bin/sh", "-c",
                              "echo A >&" + std::to_string(pipe_b[1]) + "; echo B >&" +
                                  std::to_string(pipe_a[1])})
                    .pass_fd(pipe_a[1], pipe_b[1])
                    .pass_fd(pipe_b[1], pipe_a[1])
                    .run();
  ASSERT_TRUE(status) << status.error().message();
  ::close(pipe_a[1]);
  ::close(pipe_b[1]);
  char a[8] = {}, b[8] = {};
  ASSERT_GT(::read(pipe_a[0], a, sizeof a), 0);
  ASSERT_GT(::read(pipe_b[0], b, sizeof b), 0);
  EXPECT_STREQ(a, "A\n");
  EXPECT_STREQ(b, "B\n");
  ::close(pipe_a[0]);
  ::close(pipe_b[0]);
}

// --- Child ---------------------------------------------------------------------------------

TEST(Child, ExitCodeAndSignalAreKeptApart) {
  LeakCheck leaks;
  auto code = probe_container({"exit", "42"}).run();
  ASSERT_TRUE(code);
  EXPECT_EQ(code->code, 42);
  EXPECT_FALSE(code->signal);
  EXPECT_EQ(fmt::format("{}", *code), "exited with code 42");
  auto sig = probe_container({"signal", std::to_string(SIGTERM)})
                 .namespaces(Namespaces::all().without(Namespace::pid))
                 .run();
  ASSERT_TRUE(sig);
  EXPECT_FALSE(sig->code);
  EXPECT_EQ(sig->signal, SIGTERM);
  EXPECT_EQ(fmt::format("{}", *sig), "killed by signal 15 (SIGTERM)");
}

TEST(Child, WaitForTimesOutThenKillEndsIt) {
  LeakCheck leaks;
  auto child = probe_container({"sleep", "30"}).std_out(Stdio::null()).spawn();
  ASSERT_TRUE(child) << child.error().message();
  auto early = child->wait_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(early);
  EXPECT_FALSE(early->has_value());
  auto polled = child->try_wait();
  ASSERT_TRUE(polled);
  EXPECT_FALSE(polled->has_value());
  ASSERT_TRUE(child->kill());
  auto status = child->wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(status);
  ASSERT_TRUE(status->has_value());
  EXPECT_EQ((*status)->signal, SIGKILL);
  // After reaping: wait returns the same, kill is a no-op.
  EXPECT_EQ(child->wait().value().signal, SIGKILL);
  EXPECT_TRUE(child->kill());
}

TEST(Child, DestroyingALiveChildKillsAndReapsIt) {
  LeakCheck leaks;
  pid_t pid;
  int pidfd;
  {
    auto child = probe_container({"sleep", "30"}).std_out(Stdio::null()).spawn();
    ASSERT_TRUE(child);
    pid = child->pid();
    pidfd = hutch::detail::sys::pidfd_open(pid);
    ASSERT_GE(pidfd, 0);
  }
  pollfd p{pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 1) << "the process still runs";
  ::close(pidfd);
}

TEST(Child, DetachedChildIsLeftRunning) {
  LeakCheck leaks;
  pid_t pid;
  {
    auto child = probe_container({"sleep", "30"}).std_out(Stdio::null()).spawn();
    ASSERT_TRUE(child);
    pid = child->detach();
  }
  EXPECT_EQ(::kill(pid, 0), 0) << "detached child should still run";
  ::kill(pid, SIGKILL);
  siginfo_t info{};
  EXPECT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED), 0);
}

TEST(Child, ParentDeathKillsTheContainer) {
  LeakCheck leaks;
  int report[2], go[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  pid_t helper = ::fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    ::close(go[1]);
    ::close(report[0]);
    auto child = probe_container({"sleep", "60"}).std_out(Stdio::null()).spawn();
    pid_t pid = child ? child->pid() : -1;
    (void)!::write(report[1], &pid, sizeof pid);
    char byte;
    (void)!::read(go[0], &byte, 1);
    ::_exit(0);  // dies without destroying the Child
  }
  ::close(report[1]);
  ::close(go[0]);
  pid_t container = -1;
  ASSERT_EQ(::read(report[0], &container, sizeof container), (ssize_t)sizeof container);
  ASSERT_GT(container, 0);
  int pidfd = hutch::detail::sys::pidfd_open(container);
  ASSERT_GE(pidfd, 0);
  ::close(go[1]);  // let the helper die
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(helper), &info, WEXITED), 0);
  pollfd p{pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1) << "the container outlived its parent";
  ::close(pidfd);
  ::close(report[0]);
}

TEST(Child, TwoHundredSpawnsInARowLeakNothing) {
  LeakCheck leaks;
  for (int i = 0; i < 200; ++i) {
    auto status = probe_container({"exit", "0"}).run();
    ASSERT_TRUE(status) << status.error().message();
    ASSERT_TRUE(status->success());
  }
}

TEST(Child, CloneFallbackWorks) {
  LeakCheck leaks;
  hutch::detail::force_clone_fallback = true;
  auto seen = parse(run_ok(probe_container({"pid"})));
  hutch::detail::force_clone_fallback = false;
  EXPECT_EQ(seen["pid"], "1");
}

}  // namespace
