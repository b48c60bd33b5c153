// hutch — what the container's process may do: capabilities, no_new_privs, rlimits and the
// compiled seccomp program (the profile builder is the optional hutch/seccomp.hpp).
#pragma once

#include <linux/filter.h>
#include <sys/resource.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"

namespace hutch {

/// A Linux capability (capabilities(7)), by its number.
enum class Capability : std::uint8_t {
  chown = 0,
  dac_override = 1,
  dac_read_search = 2,
  fowner = 3,
  fsetid = 4,
  kill = 5,
  setgid = 6,
  setuid = 7,
  setpcap = 8,
  linux_immutable = 9,
  net_bind_service = 10,
  net_broadcast = 11,
  net_admin = 12,
  net_raw = 13,
  ipc_lock = 14,
  ipc_owner = 15,
  sys_module = 16,
  sys_rawio = 17,
  sys_chroot = 18,
  sys_ptrace = 19,
  sys_pacct = 20,
  sys_admin = 21,
  sys_boot = 22,
  sys_nice = 23,
  sys_resource = 24,
  sys_time = 25,
  sys_tty_config = 26,
  mknod = 27,
  lease = 28,
  audit_write = 29,
  audit_control = 30,
  setfcap = 31,
  mac_override = 32,
  mac_admin = 33,
  syslog = 34,
  wake_alarm = 35,
  block_suspend = 36,
  audit_read = 37,
  perfmon = 38,
  bpf = 39,
  checkpoint_restore = 40,
};

/// A set of capabilities. The container's bounding, permitted and effective sets are this
/// set; its inheritable and ambient sets are empty, as with Docker and the OCI defaults.
class Capabilities {
 public:
  /// The 14 capabilities Docker and the OCI runtime spec grant by default.
  static constexpr Capabilities defaults() noexcept {
    return of({Capability::chown, Capability::dac_override, Capability::fsetid, Capability::fowner,
               Capability::mknod, Capability::net_raw, Capability::setgid, Capability::setuid,
               Capability::setfcap, Capability::setpcap, Capability::net_bind_service,
               Capability::sys_chroot, Capability::kill, Capability::audit_write});
  }
  static constexpr Capabilities none() noexcept { return Capabilities(0); }
  /// Every capability the kernel knows (the process keeps what it had: use with care).
  static constexpr Capabilities all() noexcept { return Capabilities(~std::uint64_t{0}); }
  static constexpr Capabilities of(std::initializer_list<Capability> list) noexcept {
    Capabilities set = none();
    for (Capability c : list) set = set.add(c);
    return set;
  }
  constexpr Capabilities add(Capability c) const noexcept { return Capabilities(bits_ | bit(c)); }
  constexpr Capabilities drop(Capability c) const noexcept { return Capabilities(bits_ & ~bit(c)); }
  constexpr bool contains(Capability c) const noexcept { return (bits_ & bit(c)) != 0; }
  constexpr std::uint64_t bits() const noexcept { return bits_; }
  friend constexpr bool operator==(Capabilities, Capabilities) = default;

 private:
  constexpr explicit Capabilities(std::uint64_t bits) noexcept : bits_(bits) {}
  static constexpr std::uint64_t bit(Capability c) noexcept {
    return std::uint64_t{1} << static_cast<unsigned>(c);
  }
  std::uint64_t bits_;
};

namespace detail {
// Kernel names (capabilities(7)) in capability-number order, without the CAP_ prefix.
inline constexpr std::array<std::string_view, 41> capability_names = {"chown",
                                                                      "dac_override",
                                                                      "dac_read_search",
                                                                      "fowner",
                                                                      "fsetid",
                                                                      "kill",
                                                                      "setgid",
                                                                      "setuid",
                                                                      "setpcap",
                                                                      "linux_immutable",
                                                                      "net_bind_service",
                                                                      "net_broadcast",
                                                                      "net_admin",
                                                                      "net_raw",
                                                                      "ipc_lock",
                                                                      "ipc_owner",
                                                                      "sys_module",
                                                                      "sys_rawio",
                                                                      "sys_chroot",
                                                                      "sys_ptrace",
                                                                      "sys_pacct",
                                                                      "sys_admin",
                                                                      "sys_boot",
                                                                      "sys_nice",
                                                                      "sys_resource",
                                                                      "sys_time",
                                                                      "sys_tty_config",
                                                                      "mknod",
                                                                      "lease",
                                                                      "audit_write",
                                                                      "audit_control",
                                                                      "setfcap",
                                                                      "mac_override",
                                                                      "mac_admin",
                                                                      "syslog",
                                                                      "wake_alarm",
                                                                      "block_suspend",
                                                                      "audit_read",
                                                                      "perfmon",
                                                                      "bpf",
                                                                      "checkpoint_restore"};
}  // namespace detail

/// The kernel's name of a capability, e.g. "CAP_NET_RAW".
inline std::string capability_name(Capability c) {
  std::string name = "CAP_";
  for (char ch : detail::capability_names[static_cast<unsigned>(c)]) {
    name += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
  }
  return name;
}

/// Parses a capability name the way Docker's `--cap-add` takes it: "CAP_NET_RAW", "NET_RAW"
/// or "net_raw". An unknown name is a `validate` error naming it.
inline result<Capability> parse_capability(std::string_view text) {
  std::string name;
  for (char ch : text) name += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  if (name.starts_with("cap_")) name.erase(0, 4);
  for (std::size_t i = 0; i < detail::capability_names.size(); ++i) {
    if (detail::capability_names[i] == name) return static_cast<Capability>(i);
  }
  return invalid(std::string(text), "not a capability name (capabilities(7), e.g. CAP_NET_RAW)");
}

/// All five capability sets of a process (capabilities(7)). Capabilities::defaults() and
/// Container::capabilities() make bounding = permitted = effective and leave inheritable and
/// ambient empty, as Docker does; an OCI config may give each.
struct CapabilitySets {
  Capabilities bounding = Capabilities::defaults();
  Capabilities effective = Capabilities::defaults();
  Capabilities permitted = Capabilities::defaults();
  Capabilities inheritable = Capabilities::none();
  Capabilities ambient = Capabilities::none();
  static constexpr CapabilitySets of(Capabilities set) noexcept {
    return {set, set, set, Capabilities::none(), Capabilities::none()};
  }
  friend constexpr bool operator==(const CapabilitySets&, const CapabilitySets&) = default;
};

/// A compiled seccomp filter (seccomp(2), SECCOMP_SET_MODE_FILTER): classic BPF that the
/// container installs as its very last step before execve, so the filter never sees the
/// setup's own mounts. Build one with `hutch::Seccomp` (hutch/seccomp.hpp, the optional
/// `hutch::seccomp` target, on libseccomp), or bring your own program. Cheap to copy.
class SeccompProgram {
 public:
  SeccompProgram() = default;
  explicit SeccompProgram(std::vector<sock_filter> instructions)
      : instructions_(std::make_shared<const std::vector<sock_filter>>(std::move(instructions))) {}
  const sock_filter* data() const noexcept {
    return instructions_ ? instructions_->data() : nullptr;
  }
  std::size_t size() const noexcept { return instructions_ ? instructions_->size() : 0; }
  bool empty() const noexcept { return size() == 0; }

 private:
  std::shared_ptr<const std::vector<sock_filter>> instructions_;
};

/// One resource limit (getrlimit(2)), e.g. `{RLIMIT_NOFILE, 1024, 1024}`.
struct Rlimit {
  int resource;
  rlim_t soft;
  rlim_t hard;
};

}  // namespace hutch
