// Bad input gets a clear error naming the cause, and leaves nothing behind.
#include <sys/stat.h>

#include "support.hpp"

using namespace hutch_test;
using hutch::Container;
using hutch::Namespace;
using hutch::Namespaces;
using hutch::Step;

namespace {

TEST(Error, FormatsAsOneReadableLine) {
  auto e = hutch::make_error(Step::exec, ENOENT, "/bin/nope");
  EXPECT_EQ(fmt::format("{}", e),
            "spawn: exec \"/bin/nope\" inside the container: No such file or directory");
  auto v = hutch::invalid("x y", "a hostname is short");
  EXPECT_EQ(v.message(),
            "spawn: invalid container description \"x y\": Invalid argument (a hostname is "
            "short)");
  EXPECT_EQ(hutch::make_error_code(e), std::error_code(ENOENT, std::system_category()));
  EXPECT_EQ(fmt::format("{}", Step::write_uid_map), "write uid_map");
}

TEST(Error, CommandNotFound) {
  LeakCheck leaks;
  auto r = Container{}.command({"/bin/nope"}).spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "spawn: exec \"/bin/nope\" inside the container: No such file or directory");
  auto searched = Container{}.command({"no-such-command-hutch"}).spawn();
  ASSERT_FALSE(searched);
  EXPECT_EQ(searched.error().step, Step::exec);
  EXPECT_EQ(searched.error().errno_value(), ENOENT);
  EXPECT_NE(searched.error().message().find("not found in PATH="), std::string::npos)
      << searched.error().message();
}

TEST(Error, CommandNotExecutable) {
  LeakCheck leaks;
  char path[] = "/tmp/hutch-noexec-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ::chmod(path, 0644);
  auto r = Container{}.command({path}).spawn();
  ::unlink(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().step, Step::exec);
  EXPECT_EQ(r.error().errno_value(), EACCES);
  EXPECT_EQ(r.error().subject, path);
}

TEST(Error, EmptyCommand) {
  LeakCheck leaks;
  auto r = Container{}.spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().step, Step::validate);
  EXPECT_NE(r.error().message().find("the command is empty"), std::string::npos);
  EXPECT_FALSE(Container{}.command({""}).spawn());
}

TEST(Error, CwdMissing) {
  LeakCheck leaks;
  auto r = probe_container({"cwd"}).cwd("/no/such/dir").spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "spawn: chdir \"/no/such/dir\" inside the container: No such file or directory");
}

TEST(Error, InvalidHostname) {
  LeakCheck leaks;
  for (std::string bad :
       std::vector<std::string>{"", "has space", "-lead", "trail-", std::string(65, 'a'), "a..b"}) {
    auto r = probe_container({"hostname"}).hostname(bad).spawn();
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().step, Step::validate) << bad;
    EXPECT_EQ(r.error().subject, bad);
  }
  auto no_uts = probe_container({"hostname"})
                    .namespaces(Namespaces::all().without(Namespace::uts))
                    .hostname("ok")
                    .spawn();
  ASSERT_FALSE(no_uts);
  EXPECT_NE(no_uts.error().message().find("needs Namespace::uts"), std::string::npos);
}

TEST(Error, AStepInsideTheContainerReportsItsOwnReason) {
  LeakCheck leaks;
  auto r = probe_container({"pid"}).cwd("/no/such/dir").spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().step, Step::chdir) << r.error().message();
  EXPECT_EQ(r.error().errno_value(), ENOENT);
  EXPECT_NE(r.error().message().find("inside the container"), std::string::npos);
}

TEST(Error, AnUnmappedUserIsRefusedBeforeAnythingStarts) {
  LeakCheck leaks;
  auto uid = probe_container({"ids"}).user(4242, 0).spawn();
  ASSERT_FALSE(uid);
  EXPECT_EQ(uid.error().step, Step::validate);
  EXPECT_EQ(uid.error().message(),
            "spawn: invalid container description \"uid 4242\": Invalid argument (not mapped in "
            "the container's user namespace (it maps 0))");
  auto group = probe_container({"ids"}).gid_map({{0, ::getegid(), 1}}).user(0, 0, {0, 7}).spawn();
  ASSERT_FALSE(group);
  EXPECT_NE(group.error().message().find("\"group 7\""), std::string::npos)
      << group.error().message();
}

TEST(Error, BadIdMapsAndOffsets) {
  LeakCheck leaks;
  auto overlap = probe_container({"ids"}).uid_map({{0, 1000, 10}, {5, 2000, 10}}).spawn();
  ASSERT_FALSE(overlap);
  EXPECT_NE(overlap.error().message().find("overlap"), std::string::npos);
  auto zero = probe_container({"ids"}).uid_map({{0, 1000, 0}}).spawn();
  ASSERT_FALSE(zero);
  auto no_userns = probe_container({"ids"})
                       .namespaces(Namespaces::of({Namespace::pid}))
                       .uid_map({{0, 0, 1}})
                       .spawn();
  ASSERT_FALSE(no_userns);
  EXPECT_NE(no_userns.error().message().find("need Namespace::user"), std::string::npos);
  auto no_timens = probe_container({"ids"}).time_offsets({.monotonic_seconds = 1}).spawn();
  ASSERT_FALSE(no_timens);
  EXPECT_NE(no_timens.error().message().find("Namespace::time"), std::string::npos);
}

TEST(Error, BadDescriptors) {
  LeakCheck leaks;
  EXPECT_FALSE(probe_container({"fds"}).pass_fd(0, 2).spawn());
  EXPECT_FALSE(probe_container({"fds"}).pass_fd(987, 5).spawn());
  auto bad_stdio = probe_container({"fds"}).std_out(hutch::Stdio::fd(988)).spawn();
  ASSERT_FALSE(bad_stdio);
  EXPECT_EQ(bad_stdio.error().errno_value(), EBADF);
  auto bad_file = probe_container({"fds"}).std_in(hutch::Stdio::file("/no/such/input")).spawn();
  ASSERT_FALSE(bad_file);
  EXPECT_EQ(bad_file.error().step, Step::open_stdio);
  EXPECT_EQ(bad_file.error().subject, "/no/such/input");
}

TEST(Error, ValueOfAFailedResultAbortsWithTheMessage) {
  EXPECT_DEATH((void)Container{}.command({"/bin/nope"}).spawn().value(),
               "hutch: value\\(\\) of a failed result: spawn: exec");
}

}  // namespace
