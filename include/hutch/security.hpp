// hutch — what the container's process may do: capabilities, no_new_privs, rlimits.
#pragma once

#include <sys/resource.h>

#include <cstdint>
#include <initializer_list>
#include <string_view>

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

/// One resource limit (getrlimit(2)), e.g. `{RLIMIT_NOFILE, 1024, 1024}`.
struct Rlimit {
  int resource;
  rlim_t soft;
  rlim_t hard;
};

}  // namespace hutch
