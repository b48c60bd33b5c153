// A child's failure record turned into an Error on the host, and how errors read.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <hutch/hutch.hpp>
#include <hutch/image.hpp>
#include <hutch/seccomp.hpp>

using hutch::Step;
using hutch::detail::ChildReport;
using hutch::detail::LaunchState;
using hutch::detail::MountStep;

namespace {

std::string reported(const LaunchState& s, Step step, int error, int index = -1) {
  return hutch::detail::child_error(s, ChildReport{static_cast<std::int32_t>(step), error, index})
      .message();
}

}  // namespace

TEST(ChildReport, ExecNamesTheCandidateOrThePathSearched) {
  LaunchState s;
  s.strings_argv = {"sh"};
  s.strings_exec = {"/usr/bin/sh", "/bin/sh"};
  s.searched_path = true;
  s.search_path = "/usr/bin:/bin";
  EXPECT_EQ(reported(s, Step::exec, ENOENT, 1),
            "spawn: exec \"sh\" inside the container: No such file or directory (not found in "
            "PATH=/usr/bin:/bin)");
  EXPECT_EQ(reported(s, Step::exec, EACCES, 1),
            "spawn: exec \"/bin/sh\" inside the container: Permission denied (not executable, or "
            "a directory on the way is not searchable)");
}

TEST(ChildReport, MountStepsNameTheirTargetAndWhatTheyWere) {
  LaunchState s;
  s.mounts.push_back({.kind = MountStep::Kind::bind,
                      .in_root = true,
                      .source = "/host/data",
                      .target = "/data",
                      .flags = MS_REC});
  s.mounts.push_back(
      {.kind = MountStep::Kind::mount, .source = "proc", .target = "/proc", .fstype = "proc"});
  s.mounts.push_back(
      {.kind = MountStep::Kind::bind, .source = "/x", .target = "/ro", .flags = MS_RDONLY});
  EXPECT_EQ(reported(s, Step::mount, ENOENT, 0),
            "spawn: mount \"/data\" inside the container: No such file or directory (bind of "
            "/host/data)");
  EXPECT_EQ(reported(s, Step::mount, EPERM, 1),
            "spawn: mount \"/proc\" inside the container: Operation not permitted (proc "
            "filesystem)");
  EXPECT_NE(reported(s, Step::mount, ENOSYS, 2).find("mount_setattr, Linux >= 5.12"),
            std::string::npos);
  EXPECT_EQ(reported(s, Step::mount, EIO, 9),
            "spawn: mount inside the container: Input/output error")
      << "an index past the plan names nothing";
}

TEST(ChildReport, IdentityAndPrivilegeStepsSayWhatToDo) {
  LaunchState s;
  s.plan.uid = 1000;
  s.plan.seccomp_length = 12;
  s.cwd = "/work";
  s.hostname = "box";
  s.rlimits.push_back({RLIMIT_NOFILE, 10, 20});
  EXPECT_EQ(reported(s, Step::set_uid, EINVAL),
            "spawn: setresuid \"1000\" inside the container: Invalid argument (the id is not "
            "mapped in the user namespace)");
  EXPECT_EQ(reported(s, Step::chdir, ENOENT),
            "spawn: chdir \"/work\" inside the container: No such file or directory");
  EXPECT_EQ(reported(s, Step::set_hostname, EPERM),
            "spawn: sethostname \"box\" inside the container: Operation not permitted");
  EXPECT_NE(reported(s, Step::set_rlimit, EPERM, 0).find("CAP_SYS_RESOURCE"), std::string::npos);
  EXPECT_NE(reported(s, Step::install_seccomp, EACCES).find("no_new_privs"), std::string::npos);
  EXPECT_NE(reported(s, Step::set_groups, EPERM).find("setgroups is denied"), std::string::npos);
  EXPECT_EQ(reported(s, Step::set_capabilities, EPERM, 21),
            "spawn: set capabilities \"capability 21\" inside the container: Operation not "
            "permitted");
}

TEST(Errors, EveryCoreStepHasADescription) {
  for (std::uint16_t i = 0; i <= static_cast<std::uint16_t>(Step::pool_fill); ++i) {
    const auto info = hutch::detail::step_info(static_cast<Step>(i));
    EXPECT_NE(info.name, "unknown step") << i;
    EXPECT_FALSE(info.operation.empty()) << i;
  }
  EXPECT_EQ(hutch::step_name(Step::write_uid_map), "write uid_map");
  EXPECT_TRUE(hutch::detail::step_info(Step::exec).in_container);
  EXPECT_FALSE(hutch::detail::step_info(Step::cgroup_create).in_container);
}

TEST(Errors, ModuleStepsFormatWithTheirOwnNames) {
  EXPECT_EQ(hutch::make_error(hutch::image_step::verify, EBADMSG, "blob").message(),
            "image: verify digest \"blob\": Bad message");
  EXPECT_EQ(hutch::make_error(hutch::seccomp_step::compile, EINVAL).message(),
            "seccomp: compile profile: Invalid argument");
  EXPECT_NE(hutch::image_step::open, hutch::seccomp_step::compile);
  EXPECT_EQ(hutch::step_name(static_cast<Step>(0x0fff)), "unknown step");
}

TEST(Errors, NotesAndSubjectsAreOptional) {
  EXPECT_EQ(hutch::invalid("x", "why").message(),
            "spawn: invalid container description \"x\": Invalid argument (why)");
  EXPECT_EQ(hutch::make_error(Step::wait, ECHILD).message(), "wait: waitid: No child processes");
}
