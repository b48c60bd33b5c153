// Privileges inside the default container: Docker's 14 capabilities, nothing inheritable or
// ambient, no_new_privs, rlimits as asked.
#include <sys/prctl.h>
#include <sys/resource.h>

#include <thread>

#include "support.hpp"

using namespace hutch_test;
using hutch::Capabilities;
using hutch::Capability;

namespace {

TEST(Security, DefaultContainerHoldsDockersCapabilitiesAndNoNewPrivs) {
  LeakCheck leaks;
  auto status = run_ok(probe_container({"status"}));
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
  // SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP: Docker's default, 0xa80425fb.
  EXPECT_EQ(status_field(status, "CapBnd"), "00000000a80425fb");
  EXPECT_EQ(status_field(status, "CapEff"), "00000000a80425fb");
  EXPECT_EQ(status_field(status, "CapPrm"), "00000000a80425fb");
  EXPECT_EQ(status_field(status, "CapInh"), "0000000000000000");
  EXPECT_EQ(status_field(status, "CapAmb"), "0000000000000000");
  EXPECT_EQ(status_field(status, "NoNewPrivs"), "1");
}

TEST(Security, CapabilitiesCanBeAddedDroppedOrAllKept) {
  LeakCheck leaks;
  auto fewer =
      run_ok(probe_container({"status"})
                 .capabilities(
                     Capabilities::defaults().drop(Capability::net_raw).add(Capability::sys_admin))
                 .no_new_privs(false));
  EXPECT_EQ(status_field(fewer, "CapBnd"), "00000000a82405fb");
  EXPECT_EQ(status_field(fewer, "NoNewPrivs"), "0");
  auto none = run_ok(probe_container({"status"}).capabilities(Capabilities::none()));
  EXPECT_EQ(status_field(none, "CapEff"), "0000000000000000");
  EXPECT_EQ(status_field(none, "CapBnd"), "0000000000000000");
}

TEST(Security, CapabilitiesSurviveAChangeOfUser) {
  HUTCH_REQUIRE_ROOT();
  LeakCheck leaks;
  auto status = run_ok(probe_container({"status"})
                           .uid_map({{0, 100000, 65536}})
                           .gid_map({{0, 100000, 65536}})
                           .user(1000, 1000)
                           .capabilities(Capabilities::of({Capability::kill})));
  EXPECT_EQ(status_field(status, "CapBnd"), "0000000000000020");
  EXPECT_EQ(status_field(status, "CapInh"), "0000000000000000");
  // A non-root user's effective set is emptied by execve unless ambient: as with Docker.
  EXPECT_EQ(status_field(status, "CapEff"), "0000000000000000");
}

TEST(Security, RlimitsApplyInside) {
  LeakCheck leaks;
  auto limits = run_ok(probe_container({"cat", "/proc/self/limits"})
                           .rlimit(RLIMIT_NOFILE, 64, 128)
                           .rlimit(RLIMIT_CORE, 0));
  EXPECT_NE(limits.find("Max open files            64                   128"), std::string::npos)
      << limits;
  EXPECT_NE(limits.find("Max core file size        0                    0"), std::string::npos)
      << limits;
}

TEST(Security, BadRlimitsAreRefusedClearly) {
  LeakCheck leaks;
  auto inverted = probe_container({"pid"}).rlimit(RLIMIT_NOFILE, 10, 5).spawn();
  ASSERT_FALSE(inverted);
  EXPECT_EQ(inverted.error().step, hutch::Step::validate);
  EXPECT_FALSE(probe_container({"pid"}).rlimit(99, 1).spawn());
  rlimit host{};
  ::getrlimit(RLIMIT_NOFILE, &host);
  if (host.rlim_max != RLIM_INFINITY) {
    // Above the host's hard limit: needs CAP_SYS_RESOURCE on the host, which a user
    // namespace never gives.
    auto above = probe_container({"pid"}).rlimit(RLIMIT_NOFILE, host.rlim_max + 1).spawn();
    ASSERT_FALSE(above);
    EXPECT_EQ(above.error().step, hutch::Step::set_rlimit) << above.error().message();
    EXPECT_EQ(above.error().errno_value(), EPERM);
  }
}

TEST(Security, CapabilityNamesParseLikeDockersCapAdd) {
  EXPECT_EQ(hutch::parse_capability("CAP_NET_RAW").value(), Capability::net_raw);
  EXPECT_EQ(hutch::parse_capability("sys_admin").value(), Capability::sys_admin);
  EXPECT_EQ(hutch::parse_capability("Checkpoint_Restore").value(), Capability::checkpoint_restore);
  EXPECT_EQ(hutch::capability_name(Capability::dac_read_search), "CAP_DAC_READ_SEARCH");
  auto unknown = hutch::parse_capability("CAP_FLY");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message(),
            "spawn: invalid container description \"CAP_FLY\": Invalid argument (not a "
            "capability name (capabilities(7), e.g. CAP_NET_RAW))");
}

TEST(Security, UmaskIsDockersByDefaultAndConfigurable) {
  LeakCheck leaks;
  EXPECT_EQ(status_field(run_ok(probe_container({"status"})), "Umask"), "0022");
  EXPECT_EQ(status_field(run_ok(probe_container({"status"}).umask(077)), "Umask"), "0077");
  auto bad = probe_container({"status"}).umask(01000).spawn();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().step, hutch::Step::validate);
}

TEST(Security, TheCommandStartsItsOwnSession) {
  LeakCheck leaks;
  // pid 1 of its pid namespace and the leader of its own session (setsid), or in the host's
  // session when asked.
  auto own = lines(run_ok(probe_container({"cat", "/proc/self/stat"})));
  ASSERT_EQ(own.size(), 1u);
  auto session_of = [](const std::string& stat) {
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string state, ppid, pgrp, session;
    fields >> state >> ppid >> pgrp >> session;
    return session;
  };
  EXPECT_EQ(session_of(own[0]), "1");
  auto shared =
      lines(run_ok(probe_container({"cat", "/proc/self/stat"})
                       .namespaces(hutch::Namespaces::all().without(hutch::Namespace::pid))
                       .new_session(false)));
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(session_of(shared[0]), std::to_string(::getsid(0)));
}

// The setup runs non-dumpable (nothing can ptrace it or read its memory); that flag is the
// memory's, shared with the host until exec, so the host sees it too while setup runs, and
// gets its own back after.
TEST(Security, SetupIsNonDumpableAndTheHostGetsItsFlagBack) {
  LeakCheck leaks;
  ASSERT_EQ(::prctl(PR_GET_DUMPABLE), 1);
  int pause[2];
  ASSERT_EQ(::pipe2(pause, O_CLOEXEC), 0);
  hutch::detail::test_pause_fd = pause[0];
  std::optional<hutch::result<hutch::ExitStatus>> status;
  // (Waits in the spawning thread: the container dies with the thread that made it.)
  std::thread spawner([&] { status.emplace(probe_container({"pid"}).run()); });
  // The child reads its byte only after the rest of its setup: wait until it is paused.
  int during = 1;
  for (int i = 0; i < 2000 && during != 0; ++i) {
    during = ::prctl(PR_GET_DUMPABLE);
    if (during != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(during, 0);
  ASSERT_EQ(::write(pause[1], "x", 1), 1);
  spawner.join();
  hutch::detail::test_pause_fd = -1;
  ::close(pause[0]);
  ::close(pause[1]);
  ASSERT_TRUE(status && *status) << (*status).error().message();
  EXPECT_TRUE((*status)->success());
  EXPECT_EQ(::prctl(PR_GET_DUMPABLE), 1);
}

// Eight threads spawning at once, each window of non-dumpable setup overlapping others: every
// spawn succeeds (rootless, id maps wait for the windows to close) and the host ends dumpable.
TEST(Security, ConcurrentSpawnsAllSucceedAndRestoreTheFlag) {
  LeakCheck leaks;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto out = probe_container({"pid"}).user(0, 0).output();
        if (out && out->status.success()) {
          ++ok;
        } else {
          ADD_FAILURE() << (out ? out->std_err : out.error().message());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 80);
  EXPECT_EQ(::prctl(PR_GET_DUMPABLE), 1);
}

}  // namespace
