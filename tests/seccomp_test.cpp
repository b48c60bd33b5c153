// The seccomp module: profiles compiled with libseccomp, installed as the last step before
// exec, seen from inside (/proc/self/status, what calls return).
#include "support.hpp"

using namespace hutch_test;
using hutch::Seccomp;
using hutch::Step;

namespace {

hutch::Container in_busybox(std::vector<std::string> command) {
  return hutch::Container{}
      .command(std::move(command))
      .rootfs(hutch::RootFs::directory(busybox).read_only().tmpfs("/tmp", 1 << 20));
}

TEST(Seccomp, DefaultProfileFiltersInsideAndDeniesWithEperm) {
  LeakCheck leaks;
  auto c = [](std::vector<std::string> cmd) { return in_busybox(cmd).seccomp(default_seccomp()); };
  auto status = run_ok(c({"probe", "status"}));
  EXPECT_EQ(status_field(status, "Seccomp"), "2");
  EXPECT_EQ(status_field(status, "Seccomp_filters"), "1");
  EXPECT_EQ(run_ok(c({"escape", "mount"})), "blocked: mount tmpfs: EPERM\n");
  EXPECT_EQ(run_ok(c({"escape", "keyctl"})), "blocked: keyctl: EPERM\n");
  // Without the filter the same call is still refused, by the kernel (no CAP_SYS_ADMIN).
  EXPECT_EQ(status_field(run_ok(in_busybox({"probe", "status"})), "Seccomp"), "0");
}

TEST(Seccomp, Clone3FailsWithEnosysSoGlibcFallsBackToClone) {
  LeakCheck leaks;
  auto c = [](std::vector<std::string> cmd) { return in_busybox(cmd).seccomp(default_seccomp()); };
  EXPECT_EQ(run_ok(c({"escape", "clone3"})), "blocked: clone3: ENOSYS\n");
  EXPECT_EQ(run_ok(c({"escape", "thread"})), "thread ok\n");
  // A shell pipeline forks and execs under the filter.
  EXPECT_EQ(run_ok(c({"sh", "-c", "echo piped | cat"})), "piped\n");
}

TEST(Seccomp, AnAllowListFailsEverythingElseWithEnosys) {
  LeakCheck leaks;
  Seccomp profile = Seccomp::deny_by_default();
  for (const char* call :
       {"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
        "mprotect", "mmap", "munmap", "readlinkat", "getrandom", "uname", "write", "exit_group",
        "newfstatat", "fstat", "mkdir", "ioctl"}) {
    profile.allow(call);
  }
  auto program = profile.compile();
  ASSERT_TRUE(program) << program.error().message();
  EXPECT_EQ(run_ok(in_busybox({"escape", "mount"}).seccomp(*program)),
            "blocked: mount tmpfs: ENOSYS\n");
}

TEST(Seccomp, OwnRulesDenyWithTheirErrno) {
  LeakCheck leaks;
  auto program =
      Seccomp::allow_by_default().deny("mkdirat", EACCES).deny("mkdir", EACCES).compile();
  ASSERT_TRUE(program) << program.error().message();
  auto out = in_busybox({"mkdir", "/tmp/x"}).seccomp(*program).output();
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->status.code, 1);
  EXPECT_NE(out->std_err.find("Permission denied"), std::string::npos) << out->std_err;
}

TEST(Seccomp, BadRulesAreClearErrorsAtCompile) {
  auto unknown = Seccomp::allow_by_default().deny("no_such_call").compile();
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().step, Step::seccomp_compile);
  EXPECT_NE(unknown.error().message().find("\"no_such_call\""), std::string::npos)
      << unknown.error().message();
  EXPECT_NE(unknown.error().message().find("no system call of that name"), std::string::npos);
  auto bad_errno = Seccomp::allow_by_default().deny("mount", 5000).compile();
  ASSERT_FALSE(bad_errno);
  EXPECT_NE(bad_errno.error().message().find("an errno is 1 to 4095"), std::string::npos);
  auto bad_arg = Seccomp::allow_by_default().deny_if("ioctl", 6, 1, 1).compile();
  ASSERT_FALSE(bad_arg);
  EXPECT_NE(bad_arg.error().message().find("arguments 0 to 5"), std::string::npos);
}

TEST(Seccomp, WithoutNoNewPrivsOrCapSysAdminTheFilterIsRefusedClearly) {
  LeakCheck leaks;
  auto r = in_busybox({"true"}).seccomp(default_seccomp()).no_new_privs(false).spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().step, Step::install_seccomp);
  EXPECT_EQ(r.error().errno_value(), EACCES);
  EXPECT_NE(r.error().message().find("needs no_new_privs or CAP_SYS_ADMIN"), std::string::npos)
      << r.error().message();
}

TEST(Seccomp, AProgramTheKernelRejectsIsAnError) {
  LeakCheck leaks;
  // A jump past the end of the program.
  hutch::SeccompProgram broken({sock_filter{BPF_JMP | BPF_JA, 0, 0, 5}});
  auto r = in_busybox({"true"}).seccomp(broken).spawn();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().step, Step::install_seccomp);
  EXPECT_EQ(r.error().errno_value(), EINVAL);
  EXPECT_NE(r.error().message().find("not valid BPF"), std::string::npos) << r.error().message();
}

}  // namespace
