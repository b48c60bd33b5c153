// hutch::net from inside real containers: real CNI plugins (containernetworking-plugins),
// real traffic. Every test runs in a network namespace it makes to play the host (a forked
// child with its own network and mount namespaces): the bridge, the veths, ip_forward, the
// iptables rules and the qdiscs all live there, and traffic stays on its loopback or inside
// namespaces it made. The real host's network is never touched.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <hutch/hutch.hpp>
#include <hutch/net.hpp>

#include "support.hpp"

namespace {

using hutch::Container;
using hutch::Network;
using hutch::PortMapping;
using hutch::RootFs;
using namespace std::chrono_literals;

const char* const cni_path = "/usr/lib/cni";

bool have_plugins() {
  return ::access("/usr/lib/cni/bridge", X_OK) == 0 && ::access("/usr/sbin/iptables", X_OK) == 0;
}

#define HUTCH_REQUIRE_CNI()                                                          \
  HUTCH_REQUIRE_ROOT();                                                              \
  if (!have_plugins())                                                               \
  GTEST_SKIP() << "needs the CNI plugins in /usr/lib/cni and iptables (CI installs " \
                  "containernetworking-plugins and iptables)"

/// Output of a shell command.
std::string sh(const std::string& command) {
  std::string out;
  if (std::FILE* p = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, p)) out.append(buffer, n);
    ::pclose(p);
  }
  return out;
}

/// Runs `body` in a forked child that plays the host: new network and mount namespaces,
/// loopback up, its own sysfs; `scratch` is a directory for its state. The test fails if the
/// body does (its failures print from the child).
void in_fake_host(const std::function<void(const std::string& scratch)>& body) {
  char pattern[] = "/tmp/hutch-net-test.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string scratch = pattern;
  ::chmod(scratch.c_str(), 0755);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) {
      std::perror("fake host");
      ::_exit(2);
    }
    ::system("ip link set lo up");
    body(scratch);
    hutch::settle();
    std::fflush(nullptr);
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::error_code ec;
  std::filesystem::remove_all(scratch, ec);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the fake host failed";
}

/// A TCP connection to ip:port, retried until `deadline` while the container starts its
/// server; empty if there is none by then.
hutch::Fd connect_to(const std::string& ip, int port,
                     std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    hutch::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    std::this_thread::sleep_for(50ms);
  }
  return hutch::Fd();
}

/// Connects to ip:port (retrying while the container starts its server) and reads to EOF.
std::string fetch(const std::string& ip, int port, const std::string& send = "") {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    hutch::Fd fd = connect_to(ip, port, deadline);
    if (!fd) break;
    if (!send.empty()) (void)!::write(fd.get(), send.data(), send.size());
    ::shutdown(fd.get(), SHUT_WR);
    std::string out;
    char buffer[4096];
    while (true) {
      const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    if (!out.empty()) return out;
    std::this_thread::sleep_for(50ms);
  }
  return "(no answer from " + ip + ":" + std::to_string(port) + ")";
}

/// A bridged container running `script` in busybox, its state in `scratch`.
Container bridged(const std::string& scratch, const std::string& script, Network network) {
  Container c;
  c.command({"/bin/sh", "-c", script})
      .rootfs(RootFs::directory(hutch_test::busybox).overlay().tmpfs("/tmp", 1 << 20))
      .hostname("web")
      .network(network.cni_path(cni_path).state_dir(scratch + "/state"));
  return c;
}

/// What a container may leave on the fake host: links, rules, qdiscs, leases.
struct HostState {
  std::string links, rules, qdiscs, leases;
};
HostState host_state(const std::string& scratch) {
  HostState s;
  s.links = sh("ip -o link show | cut -d' ' -f2 | sort");
  s.rules = sh("iptables-save | grep -v '^[#:*]' | grep -v COMMIT | sort");
  s.qdiscs = sh("tc qdisc show | grep -v 'noqueue\\|noop' | sort");
  s.leases =
      sh("ls " + scratch + "/state/ipam/hutch 2>/dev/null | grep -v 'lock\\|last_reserved' ");
  return s;
}
void expect_clean(const std::string& scratch, const std::string& container_ip) {
  const HostState s = host_state(scratch);
  EXPECT_EQ(s.links.find("veth"), std::string::npos) << s.links;
  EXPECT_EQ(s.links.find("bwp"), std::string::npos) << s.links;  // the bandwidth plugin's ifb
  if (!container_ip.empty()) {
    EXPECT_EQ(s.rules.find(container_ip), std::string::npos) << s.rules;
  }
  EXPECT_EQ(s.rules.find("hutch-"), std::string::npos) << s.rules;  // comments name the id
  EXPECT_EQ(s.qdiscs.find("tbf"), std::string::npos) << s.qdiscs;
  EXPECT_EQ(s.leases, "") << "IPAM leases left";
  EXPECT_EQ(sh("ls -A " + scratch + "/state | grep hutch-"), "") << "attachment state left";
  EXPECT_EQ(sh("grep -c " + scratch + " /proc/self/mountinfo"), "0\n") << "a mount left";
}

/// Another host: a forked process that spawns a container with `spawn` (which gives "IP PID"
/// of it), says so, then waits to be killed (`stays`) or exits.
struct OtherHost {
  pid_t pid = -1;
  std::string ip;
  pid_t container = -1;
};
OtherHost other_host(const std::function<std::string()>& spawn, bool stays) {
  int ready[2];
  if (::pipe(ready) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    const std::string said = spawn();
    (void)!::write(ready[1], said.data(), said.size());
    ::close(ready[1]);
    if (stays) ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char buffer[64] = {};
  const ssize_t n = ::read(ready[0], buffer, sizeof buffer - 1);
  ::close(ready[0]);
  const std::string said(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  const auto space = said.find(' ');
  if (space == std::string::npos) return {pid, said, -1};
  return {pid, said.substr(0, space), static_cast<pid_t>(std::atol(said.c_str() + space + 1))};
}

TEST(Net, ABridgedContainerHasItsAddressReachesItsGatewayAndKnowsItsName) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    std::string ip;
    {
      auto child = bridged(scratch,
                           "ip -o -4 addr show eth0; ip route; ping -c1 -W5 10.77.0.1 >/dev/null "
                           "&& echo reached; cat /etc/hosts /etc/hostname /etc/resolv.conf",
                           Network::bridge().dns("192.0.2.53"))
                       .std_out(hutch::Stdio::piped())
                       .spawn();
      ASSERT_TRUE(child) << child.error().message();
      ip = child->network().ip();
      EXPECT_EQ(ip.rfind("10.77.0.", 0), 0u) << ip;
      ASSERT_EQ(child->network().addresses.size(), 1u);
      EXPECT_EQ(child->network().addresses[0].interface, "eth0");
      EXPECT_EQ(child->network().addresses[0].gateway, "10.77.0.1");
      EXPECT_EQ(child->network().name, "hutch");
      auto out = child->wait_with_output();
      ASSERT_TRUE(out);
      EXPECT_TRUE(out->status.success()) << fmt::format("{}", out->status);
      EXPECT_NE(out->std_out.find("inet " + ip + "/24"), std::string::npos) << out->std_out;
      EXPECT_NE(out->std_out.find("default via 10.77.0.1"), std::string::npos) << out->std_out;
      EXPECT_NE(out->std_out.find("reached"), std::string::npos) << out->std_out;
      EXPECT_NE(out->std_out.find(ip + "\tweb"), std::string::npos) << out->std_out;
      EXPECT_NE(out->std_out.find("\nweb\n"), std::string::npos) << out->std_out;
      EXPECT_NE(out->std_out.find("nameserver 192.0.2.53"), std::string::npos) << out->std_out;
    }
    hutch::settle();
    expect_clean(scratch, ip);
  });
}

TEST(Net, APublishedPortIsReachedFromTheHost) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    const std::string script =
        "mkdir -p /tmp/www && echo served-by-httpd > /tmp/www/index.html && "
        "exec httpd -f -p 80 -h /tmp/www";
    std::string ip;
    {
      auto child = bridged(scratch, script,
                           Network::bridge()
                               .publish({"127.0.0.1", 18080, 80, {}})
                               .publish({"", 18081, 80, PortMapping::Protocol::tcp}))
                       .spawn();
      ASSERT_TRUE(child) << child.error().message();
      ip = child->network().ip();
      const std::string request = "GET / HTTP/1.0\r\n\r\n";
      EXPECT_NE(fetch("127.0.0.1", 18080, request).find("served-by-httpd"), std::string::npos);
      // Every address: also the bridge's own (the host's side of the container network).
      EXPECT_NE(fetch("10.77.0.1", 18081, request).find("served-by-httpd"), std::string::npos);
      // The container's own address, directly.
      EXPECT_NE(fetch(ip, 80, request).find("served-by-httpd"), std::string::npos);
    }
    hutch::settle();
    expect_clean(scratch, ip);
  });
}

TEST(Net, TwoContainersReachEachOther) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    auto server =
        bridged(scratch, "exec nc -l -p 7000 -e echo hello-neighbour", Network::bridge()).spawn();
    ASSERT_TRUE(server) << server.error().message();
    const std::string ip = server->network().ip();
    auto client = bridged(scratch,
                          "for i in 1 2 3 4 5 6 7 8 9 10; do nc " + ip +
                              " 7000 </dev/null && exit 0; sleep 0.2; done; exit 1",
                          Network::bridge())
                      .output();
    ASSERT_TRUE(client) << client.error().message();
    EXPECT_TRUE(client->status.success()) << client->std_err;
    EXPECT_EQ(client->std_out, "hello-neighbour\n");
    EXPECT_NE(client->std_out, "");
  });
}

/// Seconds to move `bytes` from a server in the container (`nc -l` on `port`) to the host:
/// from the first byte to the last.
double seconds_to_receive(const std::string& ip, int port, std::size_t bytes) {
  hutch::Fd fd = connect_to(ip, port, std::chrono::steady_clock::now() + 10s);
  if (!fd) return -1;
  std::size_t got = 0;
  std::chrono::steady_clock::time_point first;
  static char buffer[1 << 16];
  while (got < bytes) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n <= 0) break;
    if (got == 0) first = std::chrono::steady_clock::now();
    got += static_cast<std::size_t>(n);
  }
  if (got < bytes) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
}

/// Seconds to send `bytes` from the host to a sink in the container (`nc -l` on `port`),
/// until it has read them all and closed.
double seconds_to_send(const std::string& ip, int port, std::size_t bytes) {
  hutch::Fd fd = connect_to(ip, port, std::chrono::steady_clock::now() + 10s);
  if (!fd) return -1;
  static const std::string chunk(1 << 16, 'x');
  const auto start = std::chrono::steady_clock::now();
  std::size_t sent = 0;
  while (sent < bytes) {
    const ssize_t n =
        ::send(fd.get(), chunk.data(), std::min(chunk.size(), bytes - sent), MSG_NOSIGNAL);
    if (n <= 0) return -1;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  char c;
  while (::read(fd.get(), &c, 1) > 0) {
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(Net, ABandwidthLimitHoldsEachWay) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    constexpr std::size_t bytes = 4 << 20;
    constexpr std::uint64_t rate = 8'000'000;  // 8mbit: 1 MB/s
    const double expected = static_cast<double>(bytes) / (rate / 8);
    const std::string script = "head -c " + std::to_string(bytes) +
                               " /dev/zero | nc -l -p 9000 & nc -l -p 9001 >/dev/null";
    auto measure = [&](Network network, double& out_time, double& in_time) {
      auto child = bridged(scratch, script, std::move(network)).spawn();
      ASSERT_TRUE(child) << child.error().message();
      const std::string ip = child->network().ip();
      out_time = seconds_to_receive(ip, 9000, bytes);
      in_time = seconds_to_send(ip, 9001, bytes);
    };
    double limited_out = 0, limited_in = 0, free_out = 0, free_in = 0;
    measure(Network::bridge().bandwidth(rate, rate), limited_out, limited_in);
    measure(Network::bridge(), free_out, free_in);
    std::printf(
        "4 MiB at 8mbit: out of the container %.2f s, into it %.2f s (expected %.2f); "
        "without a limit %.3f s, %.3f s\n",
        limited_out, limited_in, expected, free_out, free_in);
    EXPECT_GT(limited_out, expected * 0.7);
    EXPECT_LT(limited_out, expected * 1.3);
    EXPECT_GT(limited_in, expected * 0.7);
    EXPECT_LT(limited_in, expected * 1.3);
    EXPECT_GE(free_out, 0);
    EXPECT_GE(free_in, 0);
    EXPECT_LT(free_out, limited_out / 3);
    EXPECT_LT(free_in, limited_in / 3);
    hutch::settle();
    expect_clean(scratch, "");
  });
}

TEST(Net, AHostKilledMidRunLeavesNothingAfterTheNextRun) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    const HostState before = host_state(scratch);
    const OtherHost host = other_host(
        [&] {
          auto child = bridged(scratch, "sleep 60",
                               Network::bridge()
                                   .publish({"127.0.0.1", 18090, 80, {}})
                                   .bandwidth(8'000'000, 8'000'000))
                           .spawn();
          return child ? fmt::format("{} {}", child->network().ip(), child->pid())
                       : std::string("failed");
        },
        true);
    ASSERT_GT(host.pid, 0);
    const std::string dead_ip = host.ip;
    const std::string container_pid = std::to_string(host.container);
    ASSERT_EQ(dead_ip.rfind("10.77.0.", 0), 0u) << dead_ip;
    const HostState attached = host_state(scratch);
    EXPECT_NE(attached.rules.find(dead_ip), std::string::npos) << "the rules were not made";
    ::kill(host.pid, SIGKILL);
    ::waitpid(host.pid, nullptr, 0);
    // Its container died with it (die_with_parent); the machine's init reaps it.
    for (int i = 0; i < 100 && sh("ps -o stat= -p " + container_pid).find_first_not_of("Z\n ") !=
                                   std::string::npos;
         ++i) {
      std::this_thread::sleep_for(20ms);
    }
    {
      auto next = bridged(scratch, "true", Network::bridge()).run();
      ASSERT_TRUE(next) << next.error().message();
    }
    hutch::settle();
    expect_clean(scratch, dead_ip);
    const HostState after = host_state(scratch);
    EXPECT_EQ(after.qdiscs, before.qdiscs);
  });
}

TEST(Net, FailuresAreClearAndLeaveNothing) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    // A plugin that is not there: its type is named, and what ran before it is undone.
    auto missing = bridged(scratch, "true",
                           Network::cni(R"({"cniVersion":"1.0.0","name":"broken","plugins":[
                               {"type":"bridge","bridge":"hutch9","ipam":{"type":"host-local",
                                "ranges":[[{"subnet":"10.78.0.0/24"}]],
                                "dataDir":")" +
                                        scratch + R"(/state/ipam"}},
                               {"type":"no-such-plugin"}]})"))
                       .spawn();
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("no-such-plugin"), std::string::npos)
        << missing.error().message();
    EXPECT_EQ(missing.error().step, hutch::net_step::add);
    // A broken list.
    auto broken = bridged(scratch, "true", Network::cni("{\"name\": 1}")).spawn();
    ASSERT_FALSE(broken);
    EXPECT_EQ(broken.error().step, hutch::net_step::config) << broken.error().message();
    // A plugin's own error comes back with its code and message: a bad subnet.
    auto refused = bridged(scratch, "true", Network::bridge().subnet("10.79.0.0/99")).spawn();
    ASSERT_FALSE(refused);
    EXPECT_EQ(&refused.error().code.category(), &hutch::net::cni_category())
        << refused.error().message();
    EXPECT_NE(refused.error().message().find("10.79.0.0/99"), std::string::npos)
        << refused.error().message();
    // A version the plugin does not speak: its code (1), and the versions it has.
    auto version =
        bridged(scratch, "true", Network::cni(R"({"cniVersion":"9.9.9","name":"v","plugins":[
                               {"type":"bridge","bridge":"hutch8","ipam":{}}]})"))
            .spawn();
    ASSERT_FALSE(version);
    EXPECT_EQ(version.error().code.value(), 1) << version.error().message();
    EXPECT_NE(version.error().message().find("1.0.0"), std::string::npos)
        << version.error().message();
    // A port in use on the host.
    hutch::Fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(18099);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(taken.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(taken.get(), 1), 0);
    auto in_use =
        bridged(scratch, "true", Network::bridge().publish({"127.0.0.1", 18099, 80, {}})).spawn();
    ASSERT_FALSE(in_use);
    EXPECT_NE(in_use.error().message().find("already in use"), std::string::npos)
        << in_use.error().message();
    EXPECT_NE(in_use.error().message().find("127.0.0.1:18099/tcp"), std::string::npos);
    // None of it left a link, a rule, a lease, a directory or a process.
    hutch::settle();
    expect_clean(scratch, "");
    EXPECT_EQ(sh("ip -o link show | grep -c veth"), "0\n");
    EXPECT_FALSE(hutch_test::has_zombie_child());
  });
}

/// CHECK: each plugin is asked whether the container's network is as ADD left it. Once the
/// container's veth has left the bridge (taken off it on the host), the bridge plugin says so.
/// (Not a deleted veth: the bridge plugin's DEL finds the addresses whose NAT rules it removes
/// on the container's interface, so it would leave those behind; containernetworking/plugins
/// #810.)
TEST(Net, CheckSaysWhenTheNetworkIsNoLongerAsAttached) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    std::string ip;
    {
      auto child = bridged(scratch, "exec sleep 30", Network::bridge()).spawn();
      ASSERT_TRUE(child) << child.error().message();
      ip = child->network().ip();
      auto fine = child->check_network();
      EXPECT_TRUE(fine) << fine.error().message();
      const std::string veth =
          sh("ip -o link show type veth | cut -d: -f2 | cut -d@ -f1 | tr -d ' \\n'");
      ASSERT_NE(veth, "");
      ASSERT_EQ(::system(("ip link set " + veth + " nomaster").c_str()), 0);
      auto broken = child->check_network();
      ASSERT_FALSE(broken);
      EXPECT_EQ(broken.error().step, hutch::net_step::check);
      EXPECT_NE(broken.error().message().find("bridge"), std::string::npos)
          << broken.error().message();
      ASSERT_TRUE(child->kill(SIGKILL));
      (void)child->wait();
    }
    hutch::settle();
    expect_clean(scratch, ip);
  });
}

TEST(Net, ACreatedContainerIsAttachedBeforeItStarts) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    std::string ip;
    {
      auto created = bridged(scratch, "ip -o -4 addr show eth0", Network::bridge())
                         .std_out(hutch::Stdio::piped())
                         .create();
      ASSERT_TRUE(created) << created.error().message();
      // Attached while it waits: the lease is there before start.
      EXPECT_NE(host_state(scratch).leases, "");
      auto child = created->start();
      ASSERT_TRUE(child) << child.error().message();
      ip = child->network().ip();
      auto out = child->wait_with_output();
      ASSERT_TRUE(out);
      EXPECT_NE(out->std_out.find("inet " + ip + "/24"), std::string::npos) << out->std_out;
    }
    {
      // One created and never started is detached again.
      auto unused = bridged(scratch, "true", Network::bridge()).create();
      ASSERT_TRUE(unused) << unused.error().message();
    }
    hutch::settle();
    expect_clean(scratch, ip);
  });
}

TEST(Net, ALiveDetachedContainersNetworkIsNotReclaimed) {
  HUTCH_REQUIRE_CNI();
  in_fake_host([](const std::string& scratch) {
    // A host that detaches its container and exits: the container keeps its network.
    const OtherHost host = other_host(
        [&] {
          auto child = bridged(scratch, "exec nc -l -p 7000 -e echo still-here", Network::bridge())
                           .die_with_parent(false)
                           .spawn();
          return child ? fmt::format("{} {}", child->network().ip(), child->detach())
                       : std::string("failed");
        },
        false);
    ASSERT_GT(host.pid, 0);
    ::waitpid(host.pid, nullptr, 0);
    const std::string ip = host.ip;
    const pid_t container = host.container;
    ASSERT_GT(container, 0) << ip;
    // Another spawn reclaims dead hosts' attachments, but not this one: it still answers.
    {
      auto next = bridged(scratch, "true", Network::bridge()).run();
      ASSERT_TRUE(next) << next.error().message();
    }
    EXPECT_EQ(fetch(ip, 7000), "still-here\n");
    // Once it is gone, the next spawn reclaims it.
    ::kill(container, SIGKILL);
    for (int i = 0; i < 100 && ::kill(container, 0) == 0; ++i) std::this_thread::sleep_for(20ms);
    {
      auto next = bridged(scratch, "true", Network::bridge()).run();
      ASSERT_TRUE(next) << next.error().message();
    }
    hutch::settle();
    expect_clean(scratch, ip);
  });
}

TEST(Net, ARootlessCallerIsToldToUsePasta) {
  HUTCH_REQUIRE_ROOT();
  in_fake_host([](const std::string& scratch) {
    ASSERT_EQ(::setresgid(65534, 65534, 65534), 0);
    ASSERT_EQ(::setresuid(65534, 65534, 65534), 0);
    auto child = Container{}
                     .command({"/bin/true"})
                     .network(Network::bridge().state_dir(scratch + "/state"))
                     .spawn();
    ASSERT_FALSE(child);
    EXPECT_EQ(child.error().errno_value(), EPERM);
    EXPECT_NE(child.error().message().find("Network::pasta()"), std::string::npos)
        << child.error().message();
  });
}

TEST(Net, TheSnapshotIsLeftAsItWas) {
  // The generated files are bound over the overlay's /etc, never written into the snapshot.
  for (const char* name : {"resolv.conf", "hosts", "hostname"}) {
    EXPECT_NE(::access((hutch_test::busybox + "/etc/" + name).c_str(), F_OK), 0) << name;
  }
}

TEST(Net, PortsNeedANetworkAndCniNeedsANamespaceOfItsOwn) {
  auto none = Container{}
                  .command({"/bin/true"})
                  .network(Network::none().publish({"", 8080, 80, {}}))
                  .spawn();
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("ports are published only"), std::string::npos)
      << none.error().message();
  auto joined = Container{}
                    .command({"/bin/true"})
                    .network(Network::bridge())
                    .join_namespace(hutch::Namespace::net, "/proc/self/ns/net")
                    .spawn();
  ASSERT_FALSE(joined);
  EXPECT_NE(joined.error().message().find("joined network namespace"), std::string::npos)
      << joined.error().message();
}

TEST(Net, TheHostNetworkSharesTheHostsNamespace) {
  HUTCH_REQUIRE_ROOT();
  char pattern[] = "/tmp/hutch-net-test.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string scratch = pattern;
  {
    auto out =
        Container{}
            .command({"/bin/sh", "-c", "stat -L -c %i /proc/self/ns/net; cat /etc/resolv.conf"})
            .rootfs(RootFs::directory(hutch_test::busybox).overlay())
            .network(Network::host().state_dir(scratch))
            .output();
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(hutch_test::lines(out->std_out).at(0), hutch_test::host_ns("net"));
    EXPECT_NE(out->std_out.find("nameserver"), std::string::npos) << out->std_out;
  }
  hutch::settle();
  EXPECT_EQ(sh("ls -A " + scratch), "");
  std::filesystem::remove_all(scratch);
}

/// Rootless: pasta, as nobody. The fake host gets a /dev/net/tun that nobody may open (on
/// this machine's own the mode is 0600) in its private mount namespace.
TEST(NetPasta, ARootlessContainersPublishedPortWorks) {
  HUTCH_REQUIRE_ROOT();
  if (::access("/usr/bin/pasta", X_OK) != 0) GTEST_SKIP() << "needs pasta (CI installs passt)";
  in_fake_host([](const std::string& scratch) {
    ASSERT_EQ(::mount("tmpfs", "/dev/net", "tmpfs", 0, "mode=755"), 0);
    ASSERT_EQ(::mknod("/dev/net/tun", S_IFCHR | 0666, makedev(10, 200)), 0);
    ::chmod("/dev/net/tun", 0666);
    ASSERT_EQ(::system(("cp -a " + hutch_test::busybox + " " + scratch + "/rootfs && chown -R " +
                        "nobody:nogroup " + scratch + "/rootfs && mkdir " + scratch +
                        "/state && chown nobody:nogroup " + scratch + "/state")
                           .c_str()),
              0);
    // The fake host needs an address and a default route for pasta to copy.
    ASSERT_EQ(
        ::system("ip link add h0 type veth peer name h1 && ip addr add 192.0.2.10/24 dev h0 && "
                 "ip link set h1 up && ip link set h0 up && "
                 "ip route add default via 192.0.2.1"),
        0);
    ASSERT_EQ(::setgroups(0, nullptr), 0);
    ASSERT_EQ(::setresgid(65534, 65534, 65534), 0);
    ASSERT_EQ(::setresuid(65534, 65534, 65534), 0);
    ::prctl(PR_SET_DUMPABLE, 1);  // as a login as nobody would be: it may write its child's maps
    std::string ip;
    {
      auto child = Container{}
                       .command({"/bin/sh", "-c",
                                 "ip -o -4 addr show eth0 >/tmp/addr; "
                                 "exec nc -l -p 8080 -e cat /tmp/addr"})
                       .rootfs(RootFs::directory(scratch + "/rootfs").tmpfs("/tmp", 1 << 20))
                       .network(Network::pasta()
                                    .publish({"127.0.0.1", 18180, 8080, {}})
                                    .state_dir(scratch + "/state"))
                       .spawn();
      ASSERT_TRUE(child) << child.error().message();
      ip = child->network().ip();
      EXPECT_EQ(ip, "192.0.2.10");
      auto running = child->check_network();  // pasta runs
      EXPECT_TRUE(running) << running.error().message();
      const std::string got = fetch("127.0.0.1", 18180);
      EXPECT_NE(got.find("inet 192.0.2.10/24"), std::string::npos) << got;
    }
    hutch::settle();
    // pasta is gone with its container, and so is the attachment's state.
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(sh("pgrep -u nobody -x pasta"), "");
    EXPECT_EQ(sh("ls -A " + scratch + "/state"), "");
  });
}

}  // namespace
