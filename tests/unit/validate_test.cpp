// The checks on a container description, without spawning anything.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <hutch/hutch.hpp>

using hutch::Container;
using hutch::IdMap;
using hutch::Namespace;
using hutch::Namespaces;

namespace {

hutch::result<void> check(const Container& c) {
  return hutch::detail::validate(c.spec());
}

void expect_invalid(const Container& c, const std::string& subject) {
  auto r = check(c);
  ASSERT_FALSE(r) << "accepted: " << subject;
  EXPECT_EQ(r.error().step, hutch::Step::validate);
  EXPECT_EQ(r.error().subject, subject) << r.error().message();
}

Container good() {
  return Container{}.command({"/bin/true"});
}

}  // namespace

TEST(Validate, AGoodDescriptionPasses) {
  EXPECT_TRUE(check(good()));
  EXPECT_TRUE(check(good().hostname("box.example").user(0, 0).uid_map({{0, 1000, 1}})));
}

TEST(Validate, TheCommandAndItsEnvironment) {
  expect_invalid(Container{}, "command");
  expect_invalid(Container{}.command({""}), "command");
  expect_invalid(Container{}.command({"/bin/true", std::string("a\0b", 3)}),
                 std::string("a\0b", 3));
  expect_invalid(good().env("A=B", "c"), "A=B");
  expect_invalid(good().env("", "c"), "");
  expect_invalid(good().env("K", std::string("v\0", 2)), "K");
  expect_invalid(good().cwd(""), "");
}

TEST(Validate, HostnamesAreRfc1123AndNeedAUtsNamespace) {
  for (const char* bad : {"-box", "box-", "a..b", ".box", "bo x", "b_x"}) {
    expect_invalid(good().hostname(bad), bad);
  }
  expect_invalid(good().hostname(std::string(65, 'a')), std::string(65, 'a'));
  expect_invalid(good().hostname("box").namespaces(Namespaces::all().without(Namespace::uts)),
                 "box");
  EXPECT_TRUE(hutch::detail::valid_hostname(std::string(63, 'a')));
  EXPECT_FALSE(hutch::detail::valid_hostname(std::string(64, 'a'))) << "a label is 63 at most";
  EXPECT_TRUE(hutch::detail::valid_hostname("a-1.b-2"));
}

TEST(Validate, IdMapsAreChecked) {
  expect_invalid(good().uid_map({{0, 0, 0}}), "uid_map");
  expect_invalid(good().uid_map({{0, 0, 10}, {5, 100, 10}}), "uid_map");
  expect_invalid(good().gid_map({{0, 0, 10}, {100, 5, 10}}), "gid_map");
  expect_invalid(good().uid_map({{0xfffffff0u, 0, 0x20}}), "uid_map");
  expect_invalid(good().uid_map({{0, 0, 1}}).namespaces(Namespaces::all().without(Namespace::user)),
                 "uid_map");
  std::vector<IdMap> many;
  for (std::uint32_t i = 0; i < 341; ++i) many.push_back({i, i, 1});
  expect_invalid(good().uid_map(many), "uid_map");
}

TEST(Validate, TheUserMustBeMapped) {
  expect_invalid(good().user(1000, 0), "uid 1000");
  expect_invalid(good().user(0, 5), "gid 5");
  expect_invalid(good().user(0, 0, {7}), "group 7");
  auto r = check(good().user(1000, 0).uid_map({{0, 100000, 100}}));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().note.find("0-99"), std::string::npos) << r.error().note;
  EXPECT_TRUE(check(good().user(5, 6).uid_map({{0, 100000, 100}}).gid_map({{0, 100000, 100}})));
  // Without a user namespace any id goes.
  EXPECT_TRUE(
      check(good().user(1000, 1000).namespaces(Namespaces::all().without(Namespace::user))));
}

TEST(Validate, DescriptorsUmaskRlimitsAndClocks) {
  expect_invalid(good().pass_fd(0, 2), "2");
  expect_invalid(good().pass_fd(0, 1024), "1024");
  expect_invalid(good().pass_fd(0, 3).pass_fd(1, 3), "3");
  auto closed = check(good().pass_fd(987, 3));
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().errno_value(), EBADF);
  expect_invalid(good().umask(01000), "1000");
  expect_invalid(good().rlimit(RLIMIT_NOFILE, 10, 5), "10 5");
  expect_invalid(good().rlimit(999, 1), "999");
  expect_invalid(good().time_offsets({1, 0, 0, 0}), "time_offsets");
  EXPECT_TRUE(
      check(good().time_offsets({1, 0, 0, 0}).namespaces(Namespaces::all().with(Namespace::time))));
}

TEST(Validate, ANetworkMadeAheadTakesNoNetSysctlsFromAUserNamespace) {
  const auto sysctl = [](Container c) {
    return c.sysctl("net.ipv4.ip_unprivileged_port_start", "0");
  };
  expect_invalid(sysctl(good().network_made_ahead()), "net.ipv4.ip_unprivileged_port_start");
  EXPECT_TRUE(check(sysctl(good())));
  EXPECT_TRUE(check(
      sysctl(good().network_made_ahead().namespaces(Namespaces::all().without(Namespace::user)))));
  EXPECT_TRUE(check(good().network_made_ahead().sysctl("kernel.shmmax", "1024")));
}
