// hutch — errors: what failed (the setup step), why (errno) and on what (path or value).
#pragma once

#include <fmt/format.h>

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/base.hpp>
#include <boost/outcome/try.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

/// `HUTCH_TRY(auto x, expr);` — `x` is the value of `expr` (a result), or the enclosing
/// function returns its error. (Boost 1.74's BOOST_OUTCOME_TRY has another two-argument form
/// than later Boosts, so hutch spells it once, here.)
#define HUTCH_TRY_NAME2(a, b) a##b
#define HUTCH_TRY_NAME(a, b) HUTCH_TRY_NAME2(a, b)
#define HUTCH_TRY(declaration, ...)                                 \
  auto HUTCH_TRY_NAME(hutch_try_, __LINE__) = (__VA_ARGS__);        \
  if (!HUTCH_TRY_NAME(hutch_try_, __LINE__))                        \
    return std::move(HUTCH_TRY_NAME(hutch_try_, __LINE__)).error(); \
  declaration = std::move(HUTCH_TRY_NAME(hutch_try_, __LINE__)).value()

namespace hutch {

/// The step that failed. Steps run either in the host process (validation, pipes, id maps,
/// waiting) or inside the container between clone and exec; `Error` says which.
enum class Step : std::uint8_t {
  // Checks on the description, before anything is created.
  validate,
  // Host side of spawn().
  open_stdio,
  open_pty,
  create_pipe,
  allocate_stack,
  clone,
  write_setgroups,
  write_uid_map,
  write_gid_map,
  release_child,
  read_child_report,
  // Inside the container, between clone and exec (detail/child_setup.hpp).
  set_parent_death_signal,
  wait_for_parent,
  setup_fds,
  set_controlling_tty,
  reset_signals,
  set_hostname,
  set_loopback_up,
  unshare_time,
  unshare_cgroup,
  write_timens_offsets,
  make_mounts_private,
  mount,
  remount_read_only,
  mask_path,
  make_symlink,
  make_directory,
  pivot_root,
  chroot,
  set_rlimit,
  set_capabilities,
  set_no_new_privs,
  new_session,
  install_seccomp,
  set_groups,
  set_gid,
  set_uid,
  chdir,
  exec,
  // Host side, after spawn().
  wait,
  poll,
  kill,
  read_output,
  write_input,
  // Root filesystem preparation in the host.
  prepare_rootfs,
  remove_scratch,
  // cgroups.
  cgroup_detect,
  cgroup_create,
  cgroup_configure,
  cgroup_attach,
  cgroup_read,
  cgroup_freeze,
  cgroup_kill,
  cgroup_remove,
  // The optional modules.
  seccomp_compile,
  image_open,
  image_verify,
  image_unpack,
};

namespace detail {

struct StepInfo {
  std::string_view operation;  // the public call the step belongs to
  std::string_view name;       // what was being done
  bool in_container;           // runs in the child between clone and exec
};

constexpr StepInfo step_info(Step step) noexcept {
  switch (step) {
    case Step::validate:
      return {"spawn", "invalid container description", false};
    case Step::open_stdio:
      return {"spawn", "open stdio", false};
    case Step::open_pty:
      return {"spawn", "open pseudo-terminal", false};
    case Step::create_pipe:
      return {"spawn", "create pipe", false};
    case Step::allocate_stack:
      return {"spawn", "allocate child stack", false};
    case Step::clone:
      return {"spawn", "clone", false};
    case Step::write_setgroups:
      return {"spawn", "write setgroups", false};
    case Step::write_uid_map:
      return {"spawn", "write uid_map", false};
    case Step::write_gid_map:
      return {"spawn", "write gid_map", false};
    case Step::release_child:
      return {"spawn", "release child", false};
    case Step::read_child_report:
      return {"spawn", "read child report", false};
    case Step::set_parent_death_signal:
      return {"spawn", "set parent death signal", true};
    case Step::wait_for_parent:
      return {"spawn", "wait for parent", true};
    case Step::setup_fds:
      return {"spawn", "set up fd", true};
    case Step::set_controlling_tty:
      return {"spawn", "make the terminal the controlling tty", true};
    case Step::reset_signals:
      return {"spawn", "reset signals", true};
    case Step::set_hostname:
      return {"spawn", "sethostname", true};
    case Step::set_loopback_up:
      return {"spawn", "bring loopback up", true};
    case Step::unshare_time:
      return {"spawn", "unshare time namespace", true};
    case Step::unshare_cgroup:
      return {"spawn", "unshare cgroup namespace", true};
    case Step::write_timens_offsets:
      return {"spawn", "write timens_offsets", true};
    case Step::make_mounts_private:
      return {"spawn", "make mounts private", true};
    case Step::mount:
      return {"spawn", "mount", true};
    case Step::remount_read_only:
      return {"spawn", "remount read-only", true};
    case Step::mask_path:
      return {"spawn", "mask path", true};
    case Step::make_symlink:
      return {"spawn", "create symlink", true};
    case Step::make_directory:
      return {"spawn", "create mount point", true};
    case Step::pivot_root:
      return {"spawn", "pivot_root", true};
    case Step::chroot:
      return {"spawn", "chroot", true};
    case Step::set_rlimit:
      return {"spawn", "setrlimit", true};
    case Step::set_capabilities:
      return {"spawn", "set capabilities", true};
    case Step::set_no_new_privs:
      return {"spawn", "set no_new_privs", true};
    case Step::new_session:
      return {"spawn", "setsid", true};
    case Step::install_seccomp:
      return {"spawn", "install seccomp filter", true};
    case Step::set_groups:
      return {"spawn", "setgroups", true};
    case Step::set_gid:
      return {"spawn", "setresgid", true};
    case Step::set_uid:
      return {"spawn", "setresuid", true};
    case Step::chdir:
      return {"spawn", "chdir", true};
    case Step::exec:
      return {"spawn", "exec", true};
    case Step::wait:
      return {"wait", "waitid", false};
    case Step::poll:
      return {"wait", "poll pidfd", false};
    case Step::kill:
      return {"kill", "pidfd_send_signal", false};
    case Step::read_output:
      return {"output", "read", false};
    case Step::write_input:
      return {"output", "write", false};
    case Step::prepare_rootfs:
      return {"rootfs", "prepare", false};
    case Step::remove_scratch:
      return {"rootfs", "remove scratch directory", false};
    case Step::cgroup_detect:
      return {"cgroup", "detect layout", false};
    case Step::cgroup_create:
      return {"cgroup", "create", false};
    case Step::cgroup_configure:
      return {"cgroup", "set limit", false};
    case Step::cgroup_attach:
      return {"cgroup", "attach", false};
    case Step::cgroup_read:
      return {"cgroup", "read", false};
    case Step::cgroup_freeze:
      return {"cgroup", "freeze", false};
    case Step::cgroup_kill:
      return {"cgroup", "kill", false};
    case Step::cgroup_remove:
      return {"cgroup", "remove", false};
    case Step::seccomp_compile:
      return {"seccomp", "compile profile", false};
    case Step::image_open:
      return {"image", "open", false};
    case Step::image_verify:
      return {"image", "verify digest", false};
    case Step::image_unpack:
      return {"image", "unpack layer", false};
  }
  return {"hutch", "unknown step", false};
}

}  // namespace detail

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

/// Every fallible call returns a result: a value or an Error. Use `BOOST_OUTCOME_TRYV` (or
/// test with `if (!r)`) to pass errors up; `value()` on a failed result aborts with the error.
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
