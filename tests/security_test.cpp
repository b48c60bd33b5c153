// Privileges inside the default container: Docker's 14 capabilities, nothing inheritable or
// ambient, no_new_privs, rlimits as asked.
#include <sys/resource.h>

#include "support.hpp"

using namespace hutch_test;
using hutch::Capabilities;
using hutch::Capability;

namespace {

std::string status_field(const std::string& status, const std::string& key) {
  auto at = status.find(key + ":\t");
  if (at == std::string::npos) return "?";
  at += key.size() + 2;
  return status.substr(at, status.find('\n', at) - at);
}

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

}  // namespace
