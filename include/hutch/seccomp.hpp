// hutch — seccomp profiles, compiled to a SeccompProgram with libseccomp.
//
// The optional `hutch::seccomp` module: link the `hutch::seccomp` CMake target (it brings
// libseccomp). The core only installs a compiled program (Container::seccomp).
#pragma once

#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error.hpp"
#include "fd.hpp"
#include "security.hpp"

namespace hutch {

#define HUTCH_SECCOMP_STEPS(X) X(compile, "seccomp", "compile profile")
HUTCH_MODULE_STEPS(seccomp, 1, HUTCH_SECCOMP_STEPS)

/// What a seccomp rule does to a call it matches (seccomp(2)'s SECCOMP_RET_*).
enum class SeccompAction : std::uint8_t {
  allow,
  error,         ///< fail with an errno (the rule's value)
  kill_thread,   ///< SECCOMP_RET_KILL_THREAD
  kill_process,  ///< SECCOMP_RET_KILL_PROCESS
  trap,          ///< SIGSYS
  trace,         ///< notify a ptrace tracer (the rule's value is its message)
  log,           ///< allow, and log
};

/// One comparison of a system call's argument (libseccomp's scmp_arg_cmp).
struct SeccompArg {
  enum class Op : std::uint8_t { ne, lt, le, eq, ge, gt, masked_eq };
  unsigned index = 0;  // 0..5
  Op op = Op::eq;
  std::uint64_t value = 0;
  std::uint64_t value_two = 0;  // masked_eq: the value compared after masking with `value`
};

/// A seccomp profile: a default action and rules by system call name, compiled with libseccomp
/// for the native architecture and its compat ones (x86 and x32 next to x86_64, arm next to
/// aarch64), so a 32-bit call cannot slip past a rule written for the 64-bit one.
///
/// Calls a deny-by-default profile does not list fail with ENOSYS, as on a kernel that lacks
/// them: glibc and most programs fall back on ENOSYS (glibc's clone3 → clone among them), and
/// would fail for good on EPERM.
class Seccomp {
 public:
  /// Every call allowed but those the rules deny (a deny list).
  static Seccomp allow_by_default() { return Seccomp(std::nullopt); }
  /// Every call fails with `error` (ENOSYS) but those the rules allow (an allow list).
  static Seccomp deny_by_default(int error = ENOSYS) { return Seccomp(error); }

  /// The calls the default profile makes fail with EPERM: those Docker allows only with a
  /// capability its default set lacks (see defaults()). A name this libseccomp does not know
  /// is left out of the compiled program.
  static std::span<const char* const> default_denied() noexcept {
    static constexpr const char* names[] = {
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "create_module",
        "delete_module",
        "fanotify_init",
        "finit_module",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "get_kernel_syms",
        "init_module",
        "io_uring_enter",
        "io_uring_register",
        "io_uring_setup",
        "ioperm",
        "iopl",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mount",
        "mount_setattr",
        "move_mount",
        "nfsservctl",
        "open_by_handle_at",
        "open_tree",
        "perf_event_open",
        "pivot_root",
        "quotactl",
        "quotactl_fd",
        "reboot",
        "request_key",
        "setns",
        "settimeofday",
        "stime",
        "swapoff",
        "swapon",
        "sysfs",
        "_sysctl",
        "syslog",
        "umount",
        "umount2",
        "uselib",
        "userfaultfd",
        "ustat",
        "vhangup",
        "vm86",
        "vm86old",
    };
    return names;
  }

  /// The default profile, equal in intent to Docker's: the calls Docker allows only with a
  /// capability the default set lacks fail with EPERM — kernel keyrings, bpf, module loading,
  /// kexec, reboot, swap, quotas, the clock, the syslog, mounting (setup is already done),
  /// pivot_root, setns, new namespaces through unshare or clone, open_by_handle_at,
  /// perf_event_open, userfaultfd, io_uring, iopl/ioperm — and TIOCSTI/TIOCLINUX, which
  /// push input into a terminal. clone3 fails with ENOSYS: its flags live in memory where a
  /// filter cannot read them, and glibc falls back to clone, whose flags it can.
  static Seccomp defaults() {
    Seccomp profile = allow_by_default();
    for (const char* name : default_denied()) {
      profile.rules_.push_back({name, {SeccompAction::error, EPERM}, std::nullopt, true, {}});
    }
    constexpr std::uint64_t new_namespaces = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                             CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                             CLONE_NEWCGROUP | CLONE_NEWTIME;
    for (std::uint64_t bit = 1; bit != 0; bit <<= 1) {
      if ((new_namespaces & bit) == 0) continue;
      profile.deny_if("clone", 0, bit, bit);
      profile.deny_if("unshare", 0, bit, bit);
    }
    profile.deny("clone3", ENOSYS);
    profile.deny_if("ioctl", 1, 0xffffffff, TIOCSTI);
    profile.deny_if("ioctl", 1, 0xffffffff, TIOCLINUX);
    return profile;
  }

  /// A profile whose calls take `action` (with `value`: an errno, or a trace message) unless a
  /// rule says otherwise: what an OCI config's defaultAction describes.
  static Seccomp with_default(SeccompAction action, int value = EPERM) {
    Seccomp profile(std::nullopt);
    profile.default_action_ = {action, value};
    return profile;
  }

  /// A rule in full: calls named `syscall` whose arguments pass every comparison in `args`
  /// take `action`; several rules for one call apply when any matches. A name this libseccomp
  /// does not know is left out, as runc does with an OCI profile's (it lists newer calls).
  Seccomp& rule(std::string_view syscall, SeccompAction action, int value = 0,
                std::vector<SeccompArg> args = {}) {
    rules_.push_back({std::string(syscall), {action, value}, std::nullopt, true, std::move(args)});
    return *this;
  }

  /// The architectures the profile covers instead of this host's and its compat ones
  /// (libseccomp's SCMP_ARCH_* tokens); the native one is always in.
  Seccomp& architectures(std::vector<std::uint32_t> arches) {
    arches_ = std::move(arches);
    return *this;
  }

  /// Allows `syscall` (by its name, e.g. "openat").
  Seccomp& allow(std::string_view syscall) {
    rules_.push_back({std::string(syscall), {SeccompAction::allow, 0}, std::nullopt, false, {}});
    return *this;
  }
  /// Makes `syscall` fail with `error` (EPERM unless given).
  Seccomp& deny(std::string_view syscall, int error = EPERM) {
    rules_.push_back(
        {std::string(syscall), {SeccompAction::error, error}, std::nullopt, false, {}});
    return *this;
  }
  /// Makes `syscall` fail with `error` when its argument number `arg` (0-5), masked with
  /// `mask`, equals `value`; several such rules for one call deny when any matches.
  Seccomp& deny_if(std::string_view syscall, unsigned arg, std::uint64_t mask, std::uint64_t value,
                   int error = EPERM) {
    rules_.push_back({std::string(syscall),
                      {SeccompAction::error, error},
                      Condition{arg, mask, value},
                      false,
                      {}});
    return *this;
  }

  /// Compiles the profile to BPF. A name libseccomp does not know, an argument number past 5
  /// or an errno out of range is a `seccomp_compile` error naming it.
  result<SeccompProgram> compile() const {
    HUTCH_TRY(const std::uint32_t default_action, action_of(default_action_, "default action"));
    scmp_filter_ctx ctx = ::seccomp_init(default_action);
    if (!ctx) return make_error(seccomp_step::compile, ENOMEM, "", "seccomp_init");
    Context owner{ctx};
    // A binary search on the call number instead of a list of compares: when the filter is
    // installed the kernel runs it once per call number and architecture (to cache the calls
    // that are always allowed), so with a list of 50 denied calls seccomp(2) cost twice what
    // it costs with the tree; each call the cache cannot answer is quicker too. Needs
    // libseccomp >= 2.5; an older one keeps the list, which decides the same.
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
    (void)::seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
    for (std::uint32_t arch : arches_ ? *arches_ : compat_arches()) {
      int r = ::seccomp_arch_add(ctx, arch);
      if (r < 0 && r != -EEXIST) return make_error(seccomp_step::compile, -r, "", "arch_add");
    }
    for (const Rule& rule : rules_) {
      int nr = ::seccomp_syscall_resolve_name(rule.syscall.c_str());
      if (nr == __NR_SCMP_ERROR) {
        if (rule.optional) continue;  // older libseccomp: the call it lacks is not named here
        return make_error(seccomp_step::compile, EINVAL, rule.syscall,
                          "no system call of that name (libseccomp " +
                              std::to_string(SCMP_VER_MAJOR) + "." +
                              std::to_string(SCMP_VER_MINOR) + ")");
      }
      HUTCH_TRY(const std::uint32_t action, action_of(rule.action, rule.syscall));
      if (action == default_action) continue;  // nothing to add
      HUTCH_TRY(const std::vector<scmp_arg_cmp> args, comparisons(rule));
      int r = ::seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(args.size()),
                                       args.empty() ? nullptr : args.data());
      if (r < 0) return make_error(seccomp_step::compile, -r, rule.syscall, "seccomp_rule_add");
    }
    return export_program(ctx);
  }

 private:
  struct Action {
    SeccompAction action;
    int value;
  };
  struct Condition {
    unsigned arg;
    std::uint64_t mask;
    std::uint64_t value;
  };
  struct Rule {
    std::string syscall;
    Action action;
    std::optional<Condition> condition;  // deny_if's one masked compare
    bool optional;  // part of a built-in profile: skipped if this libseccomp lacks the name
    std::vector<SeccompArg> args;
  };

  /// libseccomp's action for `a`; an errno out of 1..4095 is an error naming `what`.
  static result<std::uint32_t> action_of(const Action& a, std::string_view what) {
    switch (a.action) {
      case SeccompAction::allow:
        return SCMP_ACT_ALLOW;
      case SeccompAction::error:
        if (a.value <= 0 || a.value > 4095) {
          return make_error(seccomp_step::compile, EINVAL, fmt::format("{} {}", what, a.value),
                            "an errno is 1 to 4095");
        }
        return SCMP_ACT_ERRNO(static_cast<std::uint16_t>(a.value));
      case SeccompAction::kill_thread:
        return SCMP_ACT_KILL;
      case SeccompAction::kill_process:
        return SCMP_ACT_KILL_PROCESS;
      case SeccompAction::trap:
        return SCMP_ACT_TRAP;
      case SeccompAction::trace:
        return SCMP_ACT_TRACE(static_cast<std::uint16_t>(a.value));
      case SeccompAction::log:
        return SCMP_ACT_LOG;
    }
    return make_error(seccomp_step::compile, EINVAL, std::string(what), "an unknown action");
  }

  /// A rule's argument comparisons, in libseccomp's form.
  static result<std::vector<scmp_arg_cmp>> comparisons(const Rule& rule) {
    std::vector<scmp_arg_cmp> out;
    if (rule.condition) {
      out.push_back(SCMP_CMP(rule.condition->arg, SCMP_CMP_MASKED_EQ, rule.condition->mask,
                             rule.condition->value));
    }
    for (const SeccompArg& a : rule.args) {
      static constexpr scmp_compare ops[] = {SCMP_CMP_NE,       SCMP_CMP_LT, SCMP_CMP_LE,
                                             SCMP_CMP_EQ,       SCMP_CMP_GE, SCMP_CMP_GT,
                                             SCMP_CMP_MASKED_EQ};
      out.push_back(SCMP_CMP(a.index, ops[static_cast<unsigned>(a.op)], a.value, a.value_two));
    }
    for (const auto& c : out) {
      if (c.arg > 5) {
        return make_error(seccomp_step::compile, EINVAL,
                          rule.syscall + " arg " + std::to_string(c.arg),
                          "system calls have arguments 0 to 5");
      }
    }
    return out;
  }
  struct Context {
    scmp_filter_ctx ctx;
    ~Context() { ::seccomp_release(ctx); }
  };

  explicit Seccomp(std::optional<int> default_error)
      : default_action_{default_error ? SeccompAction::error : SeccompAction::allow,
                        default_error.value_or(0)} {}

  static std::vector<std::uint32_t> compat_arches() {
#if defined(__x86_64__)
    return {SCMP_ARCH_X86, SCMP_ARCH_X32};
#elif defined(__aarch64__)
    return {SCMP_ARCH_ARM};
#else
    return {};
#endif
  }

  /// libseccomp 2.5 exports only to a descriptor: export into a memfd and read it back.
  static result<SeccompProgram> export_program(scmp_filter_ctx ctx) {
    Fd memory(::memfd_create("hutch-seccomp", MFD_CLOEXEC));
    if (!memory) return last_error(seccomp_step::compile, "memfd_create");
    if (int r = ::seccomp_export_bpf(ctx, memory.get()); r < 0) {
      return make_error(seccomp_step::compile, -r, "", "seccomp_export_bpf");
    }
    const off_t size = ::lseek(memory.get(), 0, SEEK_END);
    if (size <= 0 || size % sizeof(sock_filter) != 0) {
      return make_error(seccomp_step::compile, EINVAL, "", "libseccomp exported no program");
    }
    std::vector<sock_filter> program(static_cast<std::size_t>(size) / sizeof(sock_filter));
    if (::pread(memory.get(), program.data(), static_cast<std::size_t>(size), 0) != size) {
      return last_error(seccomp_step::compile, "memfd read");
    }
    return SeccompProgram(std::move(program));
  }

  Action default_action_;
  std::optional<std::vector<std::uint32_t>> arches_;
  std::vector<Rule> rules_;
};

}  // namespace hutch
