// The seccomp module: profiles compiled with libseccomp, installed as the last step before
// exec, seen from inside (/proc/self/status, what calls return).
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <cstdint>
#include <cstring>
#include <set>

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

/// What the kernel hands a filter (struct seccomp_data).
struct CallData {
  std::int32_t nr;
  std::uint32_t arch;
  std::uint64_t ip;
  std::uint64_t args[6];
};

/// Runs classic BPF `program` on `call` as the kernel's seccomp does; the action it returns.
std::uint32_t run_filter(const hutch::SeccompProgram& program, const CallData& call) {
  std::uint32_t a = 0, x = 0, memory[BPF_MEMWORDS] = {};
  auto word = [&](std::uint32_t offset) {
    std::uint32_t value = 0;
    std::memcpy(&value, reinterpret_cast<const char*>(&call) + offset, sizeof value);
    return value;
  };
  for (std::size_t pc = 0; pc < program.size(); ++pc) {
    const sock_filter& i = program.data()[pc];
    const std::uint32_t operand = BPF_SRC(i.code) == BPF_X ? x : i.k;
    switch (BPF_CLASS(i.code)) {
      case BPF_LD:
        a = BPF_MODE(i.code) == BPF_ABS   ? word(i.k)
            : BPF_MODE(i.code) == BPF_MEM ? memory[i.k]
                                          : i.k;
        break;
      case BPF_LDX:
        x = BPF_MODE(i.code) == BPF_MEM ? memory[i.k] : i.k;
        break;
      case BPF_ST:
        memory[i.k] = a;
        break;
      case BPF_STX:
        memory[i.k] = x;
        break;
      case BPF_ALU:
        switch (BPF_OP(i.code)) {
          case BPF_AND:
            a &= operand;
            break;
          case BPF_OR:
            a |= operand;
            break;
          case BPF_ADD:
            a += operand;
            break;
          case BPF_SUB:
            a -= operand;
            break;
          case BPF_RSH:
            a >>= operand;
            break;
          case BPF_LSH:
            a <<= operand;
            break;
          default:
            ADD_FAILURE() << "ALU op " << i.code;
            return 0;
        }
        break;
      case BPF_JMP: {
        if (BPF_OP(i.code) == BPF_JA) {
          pc += i.k;
          break;
        }
        bool taken = BPF_OP(i.code) == BPF_JEQ   ? a == operand
                     : BPF_OP(i.code) == BPF_JGT ? a > operand
                     : BPF_OP(i.code) == BPF_JGE ? a >= operand
                                                 : (a & operand) != 0;
        pc += taken ? i.jt : i.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(i.code) == BPF_A ? a : i.k;
      case BPF_MISC:
        if (BPF_MISCOP(i.code) == BPF_TAX)
          x = a;
        else
          a = x;
        break;
    }
  }
  ADD_FAILURE() << "the program ran off its end";
  return 0;
}

// Every call number of every architecture the profile covers, with the arguments its rules
// look at, gets the action the rules name: the compiled program (a binary search on the call
// number, not a list) decides exactly as the profile says, and an unknown architecture is
// killed.
TEST(Seccomp, DefaultProfileDecidesEveryCallAsItsRulesSay) {
  const hutch::SeccompProgram& program = default_seccomp();
  const std::uint32_t eperm = SECCOMP_RET_ERRNO | EPERM, enosys = SECCOMP_RET_ERRNO | ENOSYS;
  const std::uint32_t arches[] = {SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32};
  // The profile's list holds at least what lets a container reach past its setup.
  const std::set<std::string> listed(Seccomp::default_denied().begin(),
                                     Seccomp::default_denied().end());
  for (const char* name : {"mount", "umount2", "pivot_root", "setns", "bpf", "keyctl", "reboot",
                           "kexec_load", "init_module", "open_by_handle_at", "perf_event_open",
                           "userfaultfd", "io_uring_setup", "open_tree", "move_mount", "swapon"}) {
    EXPECT_TRUE(listed.count(name)) << name;
  }
  std::size_t checked = 0;
  for (std::uint32_t arch : arches) {
    auto number = [&](const char* name) { return seccomp_syscall_resolve_name_arch(arch, name); };
    const int clone = number("clone"), unshare = number("unshare"), ioctl = number("ioctl");
    const int clone3 = number("clone3");
    std::set<int> eperm_calls;
    for (const char* name : Seccomp::default_denied()) {
      if (int nr = number(name); nr >= 0) eperm_calls.insert(nr);
    }
    ASSERT_GE(eperm_calls.size(), 40u) << arch;
    const int base = arch == SCMP_ARCH_X32 ? 0x40000000 : 0;
    // x32 calls carry bit 30; without it, an x32-arch number is an x86_64 one (same audit
    // arch), so the x32 pass only walks numbers with the bit.
    const std::uint32_t audit_arch = arch == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : arch;
    for (int nr = base; nr < base + 1024; ++nr) {
      CallData call{nr, audit_arch, 0, {}};
      std::uint32_t want = SECCOMP_RET_ALLOW;
      if (eperm_calls.count(nr)) want = eperm;
      if (nr == clone3) want = enosys;
      EXPECT_EQ(run_filter(program, call), want) << arch << " call " << nr;
      ++checked;
      if (nr == clone || nr == unshare) {
        // Flags in the first argument of unshare; of clone on x86 too.
        call.args[0] = CLONE_NEWUSER | SIGCHLD;
        EXPECT_EQ(run_filter(program, call), eperm) << arch << " call " << nr;
        call.args[0] = CLONE_NEWNET | CLONE_NEWNS;
        EXPECT_EQ(run_filter(program, call), eperm) << arch << " call " << nr;
        call.args[0] = CLONE_VM | CLONE_THREAD | CLONE_SIGHAND | CLONE_FILES;
        EXPECT_EQ(run_filter(program, call), SECCOMP_RET_ALLOW) << arch << " call " << nr;
      }
      if (nr == ioctl) {
        for (std::uint64_t request : {std::uint64_t{TIOCSTI}, std::uint64_t{TIOCLINUX},
                                      std::uint64_t{TIOCSTI} | 0xffffffff00000000}) {
          call.args[1] = request;
          EXPECT_EQ(run_filter(program, call), eperm) << arch << " ioctl " << request;
        }
        call.args[1] = TIOCGWINSZ;
        EXPECT_EQ(run_filter(program, call), SECCOMP_RET_ALLOW) << arch;
      }
    }
  }
  EXPECT_EQ(checked, 3u * 1024);
  // Another architecture is killed rather than let through.
  CallData foreign{
      seccomp_syscall_resolve_name_arch(SCMP_ARCH_AARCH64, "write"), SCMP_ARCH_AARCH64, 0, {}};
  const std::uint32_t action = run_filter(program, foreign) & SECCOMP_RET_ACTION_FULL;
  EXPECT_TRUE(action == SECCOMP_RET_KILL_THREAD || action == SECCOMP_RET_KILL_PROCESS) << action;
}

TEST(Seccomp, BadRulesAreClearErrorsAtCompile) {
  auto unknown = Seccomp::allow_by_default().deny("no_such_call").compile();
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().step, hutch::seccomp_step::compile);
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

TEST(Seccomp, WithoutNoNewPrivsTheFilterGoesInWhileTheCapabilitiesAreHeld) {
  // Engines ask for seccomp without no_new_privs (podman's and docker's defaults): the kernel
  // takes a filter then only from a holder of CAP_SYS_ADMIN, which the container drops. It is
  // installed before the drop, and still filters the command.
  LeakCheck leaks;
  const std::string status =
      run_ok(in_busybox({"probe", "status"}).seccomp(default_seccomp()).no_new_privs(false));
  EXPECT_EQ(status_field(status, "Seccomp"), "2");
  EXPECT_EQ(status_field(status, "NoNewPrivs"), "0");
  auto program =
      Seccomp::allow_by_default().deny("mkdirat", EACCES).deny("mkdir", EACCES).compile();
  ASSERT_TRUE(program) << program.error().message();
  auto out = in_busybox({"mkdir", "/tmp/x"}).seccomp(*program).no_new_privs(false).output();
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->status.code, 1);
  EXPECT_NE(out->std_err.find("Permission denied"), std::string::npos) << out->std_err;
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
