// hutch — Linux namespaces (namespaces(7)) and the id maps of a user namespace.
#pragma once

#include <sched.h>

#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "detail/syscall.hpp"

namespace hutch {

/// One kind of Linux namespace (namespaces(7)).
enum class Namespace : std::uint8_t {
  user,    ///< user_namespaces(7): own uid/gid ranges and capabilities; makes the rest rootless
  pid,     ///< pid_namespaces(7): the command is PID 1 and sees only its own processes
  mount,   ///< mount_namespaces(7): own mount table
  uts,     ///< uts_namespaces(7): own hostname
  ipc,     ///< ipc_namespaces(7): own System V IPC and POSIX message queues
  net,     ///< network_namespaces(7): own interfaces; comes up with only `lo`, which is up
  cgroup,  ///< cgroup_namespaces(7): sees its own cgroup as the root
  time,    ///< time_namespaces(7): own CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets
};

/// Readable name, the one /proc/self/ns uses ("user", "pid", "mnt", "uts", ...).
constexpr std::string_view proc_name(Namespace ns) noexcept {
  switch (ns) {
    case Namespace::user:
      return "user";
    case Namespace::pid:
      return "pid";
    case Namespace::mount:
      return "mnt";
    case Namespace::uts:
      return "uts";
    case Namespace::ipc:
      return "ipc";
    case Namespace::net:
      return "net";
    case Namespace::cgroup:
      return "cgroup";
    case Namespace::time:
      return "time";
  }
  return "?";
}

/// A set of namespaces to create for the container. A value type; every operation returns a
/// new set.
///
/// `all()` holds user, pid, mount, uts, ipc, net and cgroup: what `docker run --network none`
/// isolates, run rootless. `time` is opt-in (`all().with(Namespace::time)`): it only matters
/// with clock offsets, and most runtimes leave it out.
class Namespaces {
 public:
  static constexpr Namespaces none() noexcept { return Namespaces{0}; }
  static constexpr Namespaces all() noexcept {
    return none()
        .with(Namespace::user)
        .with(Namespace::pid)
        .with(Namespace::mount)
        .with(Namespace::uts)
        .with(Namespace::ipc)
        .with(Namespace::net)
        .with(Namespace::cgroup);
  }
  static constexpr Namespaces of(std::initializer_list<Namespace> list) noexcept {
    Namespaces set = none();
    for (Namespace ns : list) set = set.with(ns);
    return set;
  }

  constexpr Namespaces with(Namespace ns) const noexcept { return Namespaces(bits_ | bit(ns)); }
  constexpr Namespaces without(Namespace ns) const noexcept { return Namespaces(bits_ & ~bit(ns)); }
  constexpr bool contains(Namespace ns) const noexcept { return (bits_ & bit(ns)) != 0; }
  constexpr bool empty() const noexcept { return bits_ == 0; }

  /// The CLONE_NEW* flags for clone3(2), without CLONE_NEWTIME and CLONE_NEWCGROUP: the
  /// child enters those with unshare(2), a time namespace so its offsets can be written
  /// first, a cgroup namespace once the child sits in its own cgroup (so it sees it as "/").
  constexpr std::uint64_t clone_flags() const noexcept {
    std::uint64_t flags = 0;
    if (contains(Namespace::user)) flags |= CLONE_NEWUSER;
    if (contains(Namespace::pid)) flags |= CLONE_NEWPID;
    if (contains(Namespace::mount)) flags |= CLONE_NEWNS;
    if (contains(Namespace::uts)) flags |= CLONE_NEWUTS;
    if (contains(Namespace::ipc)) flags |= CLONE_NEWIPC;
    if (contains(Namespace::net)) flags |= CLONE_NEWNET;
    return flags;
  }

  friend constexpr bool operator==(Namespaces, Namespaces) = default;

 private:
  constexpr explicit Namespaces(std::uint16_t bits) noexcept : bits_(bits) {}
  static constexpr std::uint16_t bit(Namespace ns) noexcept {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(ns));
  }
  std::uint16_t bits_;
};

/// One line of a uid_map or gid_map (user_namespaces(7)): ids `inside .. inside+count-1` in
/// the container are ids `outside .. outside+count-1` on the host.
///
/// Without a map, hutch maps container id 0 to the caller's effective id, count 1: rootless,
/// the caller becomes root inside; as host root, container root is host root confined by the
/// user namespace (its capabilities reach only what that namespace owns), like `unshare -r`.
/// Give a range such as `{0, 100000, 65536}` to run container root as an unprivileged host
/// id; that needs CAP_SETUID/CAP_SETGID on the host (or root).
struct IdMap {
  std::uint32_t inside = 0;
  std::uint32_t outside = 0;
  std::uint32_t count = 1;
  friend constexpr bool operator==(const IdMap&, const IdMap&) = default;
};

/// Clock offsets for a new time namespace (time_namespaces(7)), in seconds and nanoseconds
/// added to CLOCK_MONOTONIC and CLOCK_BOOTTIME as the container sees them.
struct TimeOffsets {
  std::int64_t monotonic_seconds = 0;
  std::int64_t monotonic_nanoseconds = 0;
  std::int64_t boottime_seconds = 0;
  std::int64_t boottime_nanoseconds = 0;
  friend constexpr bool operator==(const TimeOffsets&, const TimeOffsets&) = default;
};

}  // namespace hutch
