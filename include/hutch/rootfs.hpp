// hutch — RootFs: the container's own root filesystem (the file snapshot) and its mounts.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hutch {

/// Whether a bind mount may be written through.
enum class Access : std::uint8_t { read_only, read_write };
inline constexpr Access read_only = Access::read_only;
inline constexpr Access read_write = Access::read_write;

/// The parts of the standard container filesystem that RootFs sets up by default, each of
/// which can be turned off with `RootFs::without()`.
enum class Standard : std::uint8_t {
  proc,            ///< /proc: a new procfs (with a pid namespace) or a bind of the host's
  dev,             ///< /dev: tmpfs with null zero full random urandom tty, pts, shm, mqueue
                   ///< (with an ipc namespace), fd links
  sys,             ///< /sys read-only: a new sysfs (with a net namespace) or the host's, bound
  masked_paths,    ///< OCI default masked paths (/proc/kcore, /proc/keys, /sys/firmware, ...)
  readonly_paths,  ///< OCI default read-only paths (/proc/sys, /proc/sysrq-trigger, ...)
  cgroup,          ///< /sys/fs/cgroup read-only: the container's own cgroup tree (with a
                   ///< cgroup namespace), as runc mounts it; v2, or each v1 hierarchy
  devices,         ///< the default device nodes and /dev links made in whatever /dev the
                   ///< mounts give, when `dev` is off (what an OCI runtime must make)
};

/// A mount as an OCI config gives it: a filesystem type (or "bind"), a source, a target
/// inside the container, mount(2) flags, filesystem data, and a propagation.
struct Mount {
  std::string type = {};    // "bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", ...
  std::string source = {};  // a host path for a bind; the filesystem's source name otherwise
  std::string target = {};  // absolute inside the container
  unsigned long flags = 0;  // MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, ...
  std::string data = {};    // "mode=755,size=65536k"
  unsigned long propagation = 0;  // MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE (| MS_REC)
  /// The flags' read-only, nosuid, nodev and noexec apply to every mount below a recursive
  /// bind too (mount_setattr(2) AT_RECURSIVE, as "rro" asks).
  bool recursive_attributes = false;
};

/// A device node to make in the container (an OCI config's linux.devices).
struct Device {
  std::string path = {};  // inside the container, e.g. "/dev/fuse"
  char type = 'c';        // 'c', 'b' or 'p'
  unsigned major = 0, minor = 0;
  unsigned mode = 0666;
};

namespace detail {

/// One mount the user asked for (RootFs::bind, RootFs::tmpfs).
struct UserMount {
  enum class Kind : std::uint8_t { bind, tmpfs, mount, mask, readonly } kind;
  std::string source;  // host path (bind)
  std::string target;  // absolute path inside the container
  Access access = read_write;
  std::uint64_t size = 0;  // tmpfs
  unsigned mode = 01777;   // tmpfs
  Mount mount = {};        // Kind::mount: the whole of it
};

/// What a RootFs describes, as plain data for the mount planner (detail/mount_plan.hpp).
struct RootFsSpec {
  std::vector<std::string> layers;  // bottom first; one for a directory
  std::vector<UserMount> mounts;
  bool overlay = false;
  bool read_only = false;
  bool chroot = false;
  bool keep_scratch = false;
  std::string scratch_parent;  // empty: hutch picks one (a private tmpfs on it)
  unsigned standard = 0x3f;    // bit per Standard part (devices off: dev makes them)
  std::vector<Device> devices;
  unsigned long root_propagation = 0;  // after pivot_root; 0: private, as set first

  bool has(Standard part) const noexcept {
    return (standard & (1u << static_cast<unsigned>(part))) != 0;
  }
};

}  // namespace detail

/// The root filesystem of a container: a snapshot directory (or a stack of layers), used in
/// place or through a copy-on-write overlay, plus mounts. The container enters it with
/// pivot_root(2) and detaches the old root, so no host path stays reachable.
///
/// Mount targets are resolved inside the root (openat2(2) RESOLVE_IN_ROOT): a symlink in the
/// snapshot cannot make a mount land on the host. Missing mount points are created, in the
/// snapshot itself when it is used in place (as runc and crun do), in the overlay otherwise.
/// Needs `Namespace::mount`; Linux >= 5.6 (openat2), >= 5.11 for overlay without root.
class RootFs {
 public:
  /// A directory holding the snapshot, used read-write in place unless `read_only()` or
  /// `overlay()` says otherwise.
  static RootFs directory(std::string path) {
    RootFs r;
    r.spec_.layers.push_back(std::move(path));
    return r;
  }
  /// Read-only layers, bottom first (the order of an image manifest), stacked with overlayfs
  /// under a writable copy-on-write layer.
  static RootFs layers(std::vector<std::string> bottom_to_top) {
    RootFs r;
    r.spec_.layers = std::move(bottom_to_top);
    r.spec_.overlay = true;
    return r;
  }

  /// Makes the root read-only: writes fail with EROFS, except in tmpfs and read_write binds.
  RootFs& read_only(bool yes = true) {
    spec_.read_only = yes;
    return *this;
  }
  /// Copy-on-write over the snapshot with overlayfs: many containers can share it and none
  /// sees another's writes. The writable layer lives on a tmpfs in a scratch directory
  /// under $XDG_RUNTIME_DIR, /dev/shm or /tmp, removed with the Child.
  RootFs& overlay() {
    spec_.overlay = true;
    return *this;
  }
  /// As overlay(), with the writable layer in a new directory below `scratch_parent` (on a
  /// filesystem that can be an overlay upper layer). `keep` leaves it there afterwards, e.g.
  /// to inspect what the container wrote.
  RootFs& overlay(std::string scratch_parent, bool keep = false) {
    spec_.overlay = true;
    spec_.scratch_parent = std::move(scratch_parent);
    spec_.keep_scratch = keep;
    return *this;
  }
  /// Binds host path `host` (a file or a directory) at `inside`.
  RootFs& bind(std::string host, std::string inside, Access access = read_write) {
    spec_.mounts.push_back(
        {detail::UserMount::Kind::bind, std::move(host), std::move(inside), access, 0, 0});
    return *this;
  }
  /// Mounts a new tmpfs of at most `size` bytes at `inside`.
  RootFs& tmpfs(std::string inside, std::uint64_t size, unsigned mode = 01777) {
    spec_.mounts.push_back(
        {detail::UserMount::Kind::tmpfs, {}, std::move(inside), read_write, size, mode});
    return *this;
  }
  /// A mount in full (an OCI config's; RootFs::bind and tmpfs are the common cases). Mounts
  /// happen in the order given, after the standard ones; cgroup and cgroup2 mounts show the
  /// container's own cgroup tree once it is in its cgroup namespace.
  RootFs& mount(Mount m) {
    detail::UserMount u{detail::UserMount::Kind::mount, m.source, m.target, read_write, 0, 0, {}};
    u.mount = std::move(m);
    spec_.mounts.push_back(std::move(u));
    return *this;
  }
  /// Hides `inside` (if it exists): /dev/null over a file, an empty read-only tmpfs over a
  /// directory (an OCI config's maskedPaths).
  RootFs& mask(std::string inside) {
    spec_.mounts.push_back(
        {detail::UserMount::Kind::mask, {}, std::move(inside), Access::read_only, 0, 0, {}});
    return *this;
  }
  /// Makes `inside` read-only (if it exists), with every mount below it (readonlyPaths).
  RootFs& readonly(std::string inside) {
    spec_.mounts.push_back(
        {detail::UserMount::Kind::readonly, {}, std::move(inside), Access::read_only, 0, 0, {}});
    return *this;
  }
  /// Makes a device node: the host's node of the same number bound where there is one (it
  /// works in a user namespace), else mknod(2), which needs CAP_MKNOD on the host.
  RootFs& device(Device d) {
    spec_.devices.push_back(std::move(d));
    return *this;
  }
  /// The root's propagation once entered (MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE;
  /// with MS_REC), as an OCI config's rootfsPropagation; private by default.
  RootFs& propagation(unsigned long flags) {
    spec_.root_propagation = flags;
    return *this;
  }
  /// Turns one part of the standard set on (Standard::devices is off unless asked).
  RootFs& with(Standard part) {
    spec_.standard |= 1u << static_cast<unsigned>(part);
    return *this;
  }
  /// Turns off one part of the standard set.
  RootFs& without(Standard part) {
    spec_.standard &= ~(1u << static_cast<unsigned>(part));
    return *this;
  }
  /// Enters the root with chroot(2) instead of pivot_root(2). Only for hosts where
  /// pivot_root cannot work, such as an initramfs root; chroot leaves the host's root
  /// reachable to a process that holds CAP_SYS_CHROOT.
  RootFs& chroot_fallback(bool yes = true) {
    spec_.chroot = yes;
    return *this;
  }

  bool has(Standard part) const noexcept { return spec_.has(part); }
  const std::vector<std::string>& layer_paths() const noexcept { return spec_.layers; }
  bool uses_overlay() const noexcept { return spec_.overlay; }
  /// The description as plain data, for hutch's planner and for tools built on the library.
  const detail::RootFsSpec& spec() const noexcept { return spec_; }

 private:
  detail::RootFsSpec spec_;
};

}  // namespace hutch
