// hutch — errors: what failed (the setup step), why (errno) and on what (path or value).
#pragma once

#include <fmt/format.h>

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/base.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

/// `HUTCH_TRY(auto x, expr);` — `x` is the value of `expr` (a result), or the enclosing
/// function returns its error. `HUTCH_TRYV(expr);` does the same for a `result<void>`. These
/// are the one way hutch passes errors up. (Boost 1.74's BOOST_OUTCOME_TRY has another
/// two-argument form than later Boosts, so hutch spells it once, here.)
#define HUTCH_TRY_NAME2(a, b) a##b
#define HUTCH_TRY_NAME(a, b) HUTCH_TRY_NAME2(a, b)
#define HUTCH_TRY(declaration, ...)                                 \
  auto HUTCH_TRY_NAME(hutch_try_, __LINE__) = (__VA_ARGS__);        \
  if (!HUTCH_TRY_NAME(hutch_try_, __LINE__))                        \
    return std::move(HUTCH_TRY_NAME(hutch_try_, __LINE__)).error(); \
  declaration = std::move(HUTCH_TRY_NAME(hutch_try_, __LINE__)).value()
#define HUTCH_TRYV(...)                                      \
  do {                                                       \
    auto hutch_tryv_ = (__VA_ARGS__);                        \
    if (!hutch_tryv_) return std::move(hutch_tryv_).error(); \
  } while (false)

// The core's steps, one table: X(name, operation, what was being done, runs in the container).
// `operation` is the public call the step belongs to; steps that run in the container run in
// the child between clone and exec (detail/child/).
#define HUTCH_CORE_STEPS(X)                                                      \
  /* Checks on the description, before anything is created. */                   \
  X(validate, "spawn", "invalid container description", false)                   \
  /* Host side of spawn(). */                                                    \
  X(open_stdio, "spawn", "open stdio", false)                                    \
  X(open_pty, "spawn", "open pseudo-terminal", false)                            \
  X(create_pipe, "spawn", "create pipe", false)                                  \
  X(allocate_stack, "spawn", "allocate child stack", false)                      \
  X(clone, "spawn", "clone", false)                                              \
  X(enter_network_namespace, "spawn", "enter a network made ahead", false)       \
  X(write_setgroups, "spawn", "write setgroups", false)                          \
  X(write_uid_map, "spawn", "write uid_map", false)                              \
  X(write_gid_map, "spawn", "write gid_map", false)                              \
  X(release_child, "spawn", "release child", false)                              \
  X(read_child_report, "spawn", "read child report", false)                      \
  X(set_oom_score_adj, "spawn", "write oom_score_adj", false)                    \
  X(join, "exec", "join the container", false)                                   \
  /* Inside the container, between clone and exec. */                            \
  X(set_parent_death_signal, "spawn", "set parent death signal", true)           \
  X(join_namespaces, "exec", "setns into the container\'s namespaces", true)     \
  X(clone_joined, "exec", "clone the process inside the container", true)        \
  X(wait_for_parent, "spawn", "wait for parent", true)                           \
  X(setup_fds, "spawn", "set up fd", true)                                       \
  X(set_controlling_tty, "spawn", "make the terminal the controlling tty", true) \
  X(reset_signals, "spawn", "reset signals", true)                               \
  X(set_hostname, "spawn", "sethostname", true)                                  \
  X(set_sysctl, "spawn", "write sysctl", true)                                   \
  X(wait_for_start, "spawn", "open the start FIFO", true)                        \
  X(set_loopback_up, "spawn", "bring loopback up", true)                         \
  X(unshare_time, "spawn", "unshare time namespace", true)                       \
  X(unshare_cgroup, "spawn", "unshare cgroup namespace", true)                   \
  X(write_timens_offsets, "spawn", "write timens_offsets", true)                 \
  X(make_mounts_private, "spawn", "make mounts private", true)                   \
  X(mount, "spawn", "mount", true)                                               \
  X(remount_read_only, "spawn", "remount read-only", true)                       \
  X(mask_path, "spawn", "mask path", true)                                       \
  X(make_symlink, "spawn", "create symlink", true)                               \
  X(make_directory, "spawn", "create mount point", true)                         \
  X(make_device, "spawn", "mknod", true)                                         \
  X(pivot_root, "spawn", "pivot_root", true)                                     \
  X(chroot, "spawn", "chroot", true)                                             \
  X(set_rlimit, "spawn", "setrlimit", true)                                      \
  X(set_capabilities, "spawn", "set capabilities", true)                         \
  X(set_no_new_privs, "spawn", "set no_new_privs", true)                         \
  X(new_session, "spawn", "setsid", true)                                        \
  X(install_seccomp, "spawn", "install seccomp filter", true)                    \
  X(set_groups, "spawn", "setgroups", true)                                      \
  X(set_gid, "spawn", "setresgid", true)                                         \
  X(set_uid, "spawn", "setresuid", true)                                         \
  X(chdir, "spawn", "chdir", true)                                               \
  X(exec, "spawn", "exec", true)                                                 \
  /* Host side, after spawn(). */                                                \
  X(wait, "wait", "waitid", false)                                               \
  X(poll, "wait", "poll pidfd", false)                                           \
  X(kill, "kill", "pidfd_send_signal", false)                                    \
  X(read_output, "output", "read", false)                                        \
  X(write_input, "output", "write", false)                                       \
  /* Root filesystem preparation in the host. */                                 \
  X(prepare_rootfs, "rootfs", "prepare", false)                                  \
  X(remove_scratch, "rootfs", "remove scratch directory", false)                 \
  X(resolve_user, "user", "resolve", false)                                      \
  /* cgroups. */                                                                 \
  X(cgroup_detect, "cgroup", "detect layout", false)                             \
  X(cgroup_create, "cgroup", "create", false)                                    \
  X(cgroup_configure, "cgroup", "set limit", false)                              \
  X(cgroup_attach, "cgroup", "attach", false)                                    \
  X(cgroup_read, "cgroup", "read", false)                                        \
  X(cgroup_freeze, "cgroup", "freeze", false)                                    \
  X(cgroup_kill, "cgroup", "kill", false)                                        \
  X(cgroup_remove, "cgroup", "remove", false)                                    \
  /* Pool. */                                                                    \
  X(pool_fill, "pool", "fill", false)

namespace hutch {

/// The step that failed. Steps run either in the host process (validation, pipes, id maps,
/// waiting) or inside the container between clone and exec; `Error` says which.
///
/// The core's steps are the named enumerators. An optional module (seccomp, image, ...)
/// defines its own steps as further values in a range of its own (see HUTCH_MODULE_STEPS),
/// so the core names none of them.
enum class Step : std::uint16_t {
#define HUTCH_STEP_ENUMERATOR(name, operation, text, inside) name,
  HUTCH_CORE_STEPS(HUTCH_STEP_ENUMERATOR)
#undef HUTCH_STEP_ENUMERATOR
};

namespace detail {

struct StepInfo {
  std::string_view operation;  // the public call the step belongs to
  std::string_view name;       // what was being done
  bool in_container;           // runs in the child between clone and exec
};

inline constexpr StepInfo core_steps[] = {
#define HUTCH_STEP_INFO(name, operation, text, inside) {operation, text, inside},
    HUTCH_CORE_STEPS(HUTCH_STEP_INFO)
#undef HUTCH_STEP_INFO
};

/// A module's steps are `Step` values from `module << 8`: module 1 is seccomp, 2 image, 3
/// registry, 4 net, 5 oci, 6 gtest. Each module registers its table when its header is
/// included (HUTCH_MODULE_STEPS), so an Error of its steps formats with their names.
inline constexpr unsigned max_modules = 16;
struct StepTable {
  const StepInfo* infos;
  std::size_t count;
};
inline std::atomic<const StepTable*>& module_steps(unsigned module) noexcept {
  static std::atomic<const StepTable*> tables[max_modules] = {};
  return tables[module % max_modules];
}
inline bool register_steps(unsigned module, const StepTable* table) noexcept {
  module_steps(module).store(table, std::memory_order_release);
  return true;
}

constexpr StepInfo step_info(Step step) noexcept {
  const auto value = static_cast<std::size_t>(step);
  if (value < std::size(core_steps)) return core_steps[value];
  if (!std::is_constant_evaluated()) {
    if (const StepTable* table =
            module_steps(static_cast<unsigned>(value >> 8)).load(std::memory_order_acquire);
        table && (value & 0xff) < table->count) {
      return table->infos[value & 0xff];
    }
  }
  return {"hutch", "unknown step", false};
}

}  // namespace detail

/// Defines a module's steps: `HUTCH_MODULE_STEPS(image, 2, TABLE)`, with TABLE a macro of
/// X(name, operation, text) entries, gives a `Step` constant `hutch::image_step::name` for
/// each and registers their descriptions. Use it inside `namespace hutch`.
#define HUTCH_MODULE_STEP_INDEX(name, operation, text) name,
#define HUTCH_MODULE_STEP_INFO(name, operation, text) {operation, text, false},
#define HUTCH_MODULE_STEP_CONSTANT(name, operation, text) \
  inline constexpr Step name = static_cast<Step>(base | static_cast<std::uint16_t>(Index::name));
#define HUTCH_MODULE_STEPS(module, number, table)                                             \
  namespace module##_step {                                                                   \
    enum class Index : std::uint16_t { table(HUTCH_MODULE_STEP_INDEX) };                      \
    inline constexpr std::uint16_t base = (number) << 8;                                      \
    table(HUTCH_MODULE_STEP_CONSTANT)                                                         \
  }                                                                                           \
  namespace detail {                                                                          \
  inline constexpr StepInfo module##_step_infos[] = {table(HUTCH_MODULE_STEP_INFO)};          \
  inline constexpr StepTable module##_step_table{module##_step_infos,                         \
                                                 std::size(module##_step_infos)};             \
  inline const bool module##_steps_registered = register_steps(number, &module##_step_table); \
  }

/// Readable name of a step, e.g. "write uid_map".
constexpr std::string_view step_name(Step step) noexcept {
  return detail::step_info(step).name;
}

/// Why an operation failed: the step, the errno (as a std::error_code), the path or value it
/// concerned, and, where errno alone would mislead, a note saying what to do about it.
///
/// Formats with fmt as one line:
///   `spawn: exec "/bin/nope" inside the container: No such file or directory`
struct Error {
  Step step = Step::validate;
  std::error_code code;
  std::string subject;  // path or value involved; may be empty
  std::string note;     // extra explanation; may be empty

  /// The errno value behind the error (0 when the cause is not a system error).
  int errno_value() const noexcept {
    return code.category() == std::system_category() ? code.value() : 0;
  }
  /// One-line description, the same text `fmt::format("{}", error)` gives.
  std::string message() const;

  friend bool operator==(const Error&, const Error&) = default;
};

/// Boost.Outcome finds the error code inside our payload through ADL.
inline std::error_code make_error_code(const Error& error) noexcept {
  return error.code;
}

/// Builds an Error from an errno value.
inline Error make_error(Step step, int errno_value, std::string subject = {},
                        std::string note = {}) {
  return Error{step, std::error_code(errno_value, std::system_category()), std::move(subject),
               std::move(note)};
}

/// Builds an Error for a description the caller got wrong (EINVAL).
inline Error invalid(std::string subject, std::string note) {
  return make_error(Step::validate, EINVAL, std::move(subject), std::move(note));
}

/// Builds an Error from the current errno; call it right after the failing call.
inline Error last_error(Step step, std::string subject = {}, std::string note = {}) {
  return make_error(step, errno, std::move(subject), std::move(note));
}

namespace detail {

/// Outcome policy: reading the value of a failed result (or the error of a good one) is a
/// bug in the caller. We print the error and abort rather than throw, so no exception ever
/// crosses the API, and the message says what went wrong instead of a bare abort.
struct abort_with_message : boost::outcome_v2::policy::base {
  template <class Impl>
  static constexpr void wide_value_check(Impl&& self) {
    if (!base::_has_value(self)) {
      if (base::_has_error(self)) {
        std::fprintf(stderr, "hutch: value() of a failed result: %s\n",
                     base::_error(self).message().c_str());
      }
      std::abort();
    }
  }
  template <class Impl>
  static constexpr void wide_error_check(Impl&& self) noexcept {
    if (!base::_has_error(self)) {
      std::fputs("hutch: error() of a successful result\n", stderr);
      std::abort();
    }
  }
  template <class Impl>
  static constexpr void wide_exception_check(Impl&& self) {
    if (!base::_has_exception(self)) std::abort();
  }
};

}  // namespace detail

/// Every fallible call returns a result: a value or an Error. Pass errors up with `HUTCH_TRY`
/// / `HUTCH_TRYV` (or test with `if (!r)`); `value()` on a failed result aborts with the error.
///
/// It is Boost.Outcome's basic_result with pointer-like access added: `r->member` and `*r`
/// read the value (and abort with the error if there is none).
template <class T>
class result : public boost::outcome_v2::basic_result<T, Error, detail::abort_with_message> {
  using base = boost::outcome_v2::basic_result<T, Error, detail::abort_with_message>;

 public:
  using base::base;
  result(base other) noexcept(std::is_nothrow_move_constructible_v<base>)
      : base(std::move(other)) {}

  auto operator->() requires(!std::is_void_v<T>) { return &this->value(); }
  auto operator->() const requires(!std::is_void_v<T>) { return &this->value(); }
  decltype(auto) operator*() & requires(!std::is_void_v<T>) { return this->value(); }
  decltype(auto) operator*() const& requires(!std::is_void_v<T>) { return this->value(); }
  decltype(auto) operator*() && requires(!std::is_void_v<T>) { return std::move(*this).value(); }
};

using boost::outcome_v2::success;

}  // namespace hutch

template <>
struct fmt::formatter<hutch::Step> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(hutch::Step step, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(hutch::step_name(step), ctx);
  }
};

template <>
struct fmt::formatter<hutch::Error> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class Context>
  auto format(const hutch::Error& error, Context& ctx) const {
    const auto info = hutch::detail::step_info(error.step);
    auto out = fmt::format_to(ctx.out(), "{}: {}", info.operation, info.name);
    if (!error.subject.empty()) out = fmt::format_to(out, " \"{}\"", error.subject);
    if (info.in_container) out = fmt::format_to(out, " inside the container");
    if (error.code) out = fmt::format_to(out, ": {}", error.code.message());
    if (!error.note.empty()) out = fmt::format_to(out, " ({})", error.note);
    return out;
  }
};

inline std::string hutch::Error::message() const {
  return fmt::format("{}", *this);
}
