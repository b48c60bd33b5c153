// hutch — RootFs: the container's own root filesystem (the file snapshot) and its mounts.
#pragma once

#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgroup.hpp"
#include "detail/plan.hpp"
#include "error.hpp"
#include "namespaces.hpp"

namespace hutch {

namespace detail {
struct SpawnAccess;
struct RootFsPlanner;
}  // namespace detail

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
};

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
    r.layers_.push_back(std::move(path));
    return r;
  }
  /// Read-only layers, bottom first (the order of an image manifest), stacked with overlayfs
  /// under a writable copy-on-write layer.
  static RootFs layers(std::vector<std::string> bottom_to_top) {
    RootFs r;
    r.layers_ = std::move(bottom_to_top);
    r.overlay_ = true;
    return r;
  }

  /// Makes the root read-only: writes fail with EROFS, except in tmpfs and read_write binds.
  RootFs& read_only(bool yes = true) {
    read_only_ = yes;
    return *this;
  }
  /// Copy-on-write over the snapshot with overlayfs: many containers can share it and none
  /// sees another's writes. The writable layer lives on a tmpfs in a scratch directory
  /// under $XDG_RUNTIME_DIR, /dev/shm or /tmp, removed with the Child.
  RootFs& overlay() {
    overlay_ = true;
    return *this;
  }
  /// As overlay(), with the writable layer in a new directory below `scratch_parent` (on a
  /// filesystem that can be an overlay upper layer). `keep` leaves it there afterwards, e.g.
  /// to inspect what the container wrote.
  RootFs& overlay(std::string scratch_parent, bool keep = false) {
    overlay_ = true;
    scratch_parent_ = std::move(scratch_parent);
    keep_scratch_ = keep;
    return *this;
  }
  /// Binds host path `host` (a file or a directory) at `inside`.
  RootFs& bind(std::string host, std::string inside, Access access = read_write) {
    mounts_.push_back({Mount::Kind::bind, std::move(host), std::move(inside), access, 0, 0});
    return *this;
  }
  /// Mounts a new tmpfs of at most `size` bytes at `inside`.
  RootFs& tmpfs(std::string inside, std::uint64_t size, unsigned mode = 01777) {
    mounts_.push_back({Mount::Kind::tmpfs, {}, std::move(inside), read_write, size, mode});
    return *this;
  }
  /// Turns off one part of the standard set.
  RootFs& without(Standard part) {
    standard_ &= ~(1u << static_cast<unsigned>(part));
    return *this;
  }
  /// Enters the root with chroot(2) instead of pivot_root(2). Only for hosts where
  /// pivot_root cannot work, such as an initramfs root; chroot leaves the host's root
  /// reachable to a process that holds CAP_SYS_CHROOT.
  RootFs& chroot_fallback(bool yes = true) {
    chroot_ = yes;
    return *this;
  }

  bool has(Standard part) const noexcept {
    return (standard_ & (1u << static_cast<unsigned>(part))) != 0;
  }
  const std::vector<std::string>& layer_paths() const noexcept { return layers_; }
  bool uses_overlay() const noexcept { return overlay_; }

 private:
  friend struct detail::SpawnAccess;
  friend struct detail::RootFsPlanner;
  struct Mount {
    enum class Kind : std::uint8_t { bind, tmpfs } kind;
    std::string source;
    std::string target;
    Access access;
    std::uint64_t size;
    unsigned mode;
  };
  std::vector<std::string> layers_;
  std::vector<Mount> mounts_;
  bool overlay_ = false;
  bool read_only_ = false;
  bool chroot_ = false;
  bool keep_scratch_ = false;
  std::string scratch_parent_;
  unsigned standard_ = 0x3f;
};

/// Resolves a user as `docker run --user` and an image's `User` give it ("name", "uid",
/// "name:group", "uid:gid") through the container's own /etc/passwd and /etc/group, looked up
/// in `roots`: a root filesystem directory, or an image's layers top first (the topmost file
/// is the one the container sees; an overlayfs whiteout hides the ones below).
inline result<std::pair<uid_t, gid_t>> resolve_user(const std::vector<std::string>& roots,
                                                    const std::string& spec) {
  if (spec.empty()) return std::pair<uid_t, gid_t>{0, 0};
  auto colon = spec.find(':');
  std::string user = spec.substr(0, colon);
  std::optional<std::string> group;
  if (colon != std::string::npos) group = spec.substr(colon + 1);
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  // name -> (id, gid) from passwd-like lines "name:x:id:gid:..."
  auto lookup = [&](const char* file,
                    const std::string& name) -> std::optional<std::pair<unsigned, unsigned>> {
    for (const std::string& dir : roots) {
      std::string path = dir + "/" + file;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) continue;
      if (S_ISCHR(st.st_mode)) break;  // a whiteout: deleted above
      std::ifstream in(path);
      for (std::string line; std::getline(in, line);) {
        std::vector<std::string> f;
        std::stringstream fields(line);
        for (std::string x; std::getline(fields, x, ':');) f.push_back(x);
        if (f.size() >= 3 && f[0] == name && numeric(f[2])) {
          unsigned second = f.size() >= 4 && numeric(f[3]) ? std::stoul(f[3]) : 0;
          return std::pair<unsigned, unsigned>{std::stoul(f[2]), second};
        }
      }
      break;  // the topmost file is the one the container sees
    }
    return std::nullopt;
  };
  uid_t uid;
  gid_t gid;
  if (numeric(user)) {
    uid = static_cast<uid_t>(std::stoul(user));
    gid = uid;
  } else {
    auto found = lookup("etc/passwd", user);
    if (!found) {
      return make_error(Step::validate, ENOENT, user,
                        "no such user in the container's /etc/passwd");
    }
    uid = found->first;
    gid = found->second;
  }
  if (group) {
    if (numeric(*group)) {
      gid = static_cast<gid_t>(std::stoul(*group));
    } else {
      auto found = lookup("etc/group", *group);
      if (!found) {
        return make_error(Step::validate, ENOENT, *group,
                          "no such group in the container's /etc/group");
      }
      gid = found->first;
    }
  }
  return std::pair<uid_t, gid_t>{uid, gid};
}

namespace detail {

/// A scratch directory on the host, removed (with everything below it) when dropped unless
/// kept. Holds an overlay's writable layer.
class ScratchDir {
 public:
  ScratchDir() = default;
  ScratchDir(ScratchDir&& other) noexcept
      : path_(std::exchange(other.path_, {})), keep_(other.keep_) {}
  ScratchDir& operator=(ScratchDir&& other) noexcept {
    if (this != &other) {
      remove();
      path_ = std::exchange(other.path_, {});
      keep_ = other.keep_;
    }
    return *this;
  }
  ~ScratchDir() { remove(); }

  static result<ScratchDir> create(const std::string& parent, bool keep) {
    std::string pattern = parent + "/hutch-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return last_error(Step::prepare_rootfs, parent, "creating the overlay scratch directory");
    }
    ScratchDir s;
    s.path_ = std::move(pattern);
    s.keep_ = keep;
    return s;
  }
  const std::string& path() const noexcept { return path_; }
  /// Removes the directory now; errors are reported, not thrown.
  result<void> remove() noexcept {
    if (path_.empty() || keep_) return success();
    std::string path = std::exchange(path_, {});
    // Usually empty: the writable layer was a tmpfs in the container's mount namespace.
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return success();
    return remove_tree(path);
  }

  /// Removes `path` and everything below it. overlayfs leaves work/work with mode 000, so
  /// every directory is first made ours to empty.
  static result<void> remove_tree(const std::string& path) noexcept {
    std::error_code ec;
    ::chmod(path.c_str(), 0700);
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
    ec.clear();
    std::filesystem::remove_all(path, ec);
    if (ec) return make_error(Step::remove_scratch, ec.value(), path);
    return success();
  }

 private:
  std::string path_;
  bool keep_ = false;
};

/// The default place for scratch directories: $XDG_RUNTIME_DIR if usable, else /dev/shm if
/// it is a usable tmpfs, else /tmp. The directory is only a mount point (the writable layer
/// is a tmpfs mounted on it inside the container), and on a tmpfs creating and removing it
/// costs no disk I/O: on a disk mounted with `discard` the rmdir alone waits for the device.
inline std::string default_scratch_parent() {
  const char* runtime = ::getenv("XDG_RUNTIME_DIR");
  if (runtime && *runtime && ::access(runtime, W_OK | X_OK) == 0) return runtime;
  static const bool shm = [] {
    struct statfs info {};
    return ::statfs("/dev/shm", &info) == 0 && info.f_type == TMPFS_MAGIC &&
           ::access("/dev/shm", W_OK | X_OK) == 0;
  }();
  return shm ? "/dev/shm" : "/tmp";
}

/// Turns a RootFs into MountSteps for the child. Everything that can be checked on the host
/// is checked here, before clone, so bad input fails with nothing created.
struct RootFsPlanner {
  const RootFs& fs;
  Namespaces namespaces;
  std::deque<std::string>& strings;
  std::vector<MountStep>& steps;

  const char* keep(std::string s) {
    strings.push_back(std::move(s));
    return strings.back().c_str();
  }

  static result<void> check_inside(const std::string& path) {
    if (path.empty() || path[0] != '/') {
      return invalid(path, "paths inside the container must be absolute");
    }
    for (std::string_view rest = path; !rest.empty();) {
      auto slash = rest.find('/');
      std::string_view part = rest.substr(0, slash);
      if (part == "..") return invalid(path, "a path inside the container may not contain '..'");
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
    if (path.find('\0') != std::string::npos) return invalid(path, "the path has a NUL byte");
    return success();
  }

  static result<void> check_overlay_path(const std::string& path) {
    if (path.find_first_of(",:\\") != std::string::npos) {
      return invalid(path, "overlayfs cannot take a layer path with ',', ':' or '\\'");
    }
    return success();
  }

  /// Validates and returns the absolute host path of every layer.
  result<std::vector<std::string>> check_layers() {
    if (fs.layers_.empty()) return invalid("rootfs", "no layer given");
    std::vector<std::string> absolute;
    for (const auto& layer : fs.layers_) {
      struct stat st {};
      if (::stat(layer.c_str(), &st) != 0) {
        return last_error(Step::prepare_rootfs, layer, "the root filesystem");
      }
      if (!S_ISDIR(st.st_mode)) {
        return make_error(Step::prepare_rootfs, ENOTDIR, layer, "the root filesystem");
      }
      std::error_code ec;
      auto path = std::filesystem::canonical(layer, ec);
      if (ec) return make_error(Step::prepare_rootfs, ec.value(), layer);
      absolute.push_back(path.string());
      if (fs.overlay_) {
        BOOST_OUTCOME_TRYV(check_overlay_path(absolute.back()));
      }
    }
    return absolute;
  }

  void add(MountStep step) { steps.push_back(step); }

  void add_in_root(MountStep step) {
    step.in_root = true;
    steps.push_back(step);
  }

  /// Whether a mount the user asked for lands on `dir` or below it: then what is there is
  /// no longer only the kernel's, and steps in it resolve inside the root.
  bool user_mount_under(std::string_view dir) const {
    for (const auto& m : fs.mounts_) {
      std::string_view t = m.target;
      while (t.size() > 1 && t.back() == '/') t.remove_suffix(1);
      if (t == "/" || (t.starts_with(dir) && (t.size() == dir.size() || t[dir.size()] == '/'))) {
        return true;
      }
    }
    return false;
  }

  /// Plans the steps. `scratch` is the overlay scratch directory (empty without overlay).
  /// Returns the host path of the new root, for Plan::new_root.
  result<const char*> plan(const std::string& scratch) {
    using Kind = MountStep::Kind;
    if (!namespaces.contains(Namespace::mount)) {
      return invalid("rootfs", "a root filesystem needs Namespace::mount");
    }
    auto checked = check_layers();
    if (!checked) return checked.error();
    const std::vector<std::string> layers = std::move(*checked);
    for (const auto& m : fs.mounts_) {
      BOOST_OUTCOME_TRYV(check_inside(m.target));
      if (m.kind == RootFs::Mount::Kind::tmpfs && m.size == 0) {
        return invalid(m.target, "a tmpfs needs a size above zero");
      }
      if (m.kind == RootFs::Mount::Kind::tmpfs && m.mode > 07777) {
        return invalid(m.target, "tmpfs mode is an octal permission up to 07777");
      }
    }

    add({.kind = Kind::make_private});
    const char* root;
    if (fs.overlay_) {
      // A tmpfs on the scratch directory, in our mount namespace only, holds the upper and
      // work directories; the merged root is mounted below it.
      const bool own_tmpfs = fs.scratch_parent_.empty();
      if (own_tmpfs) {
        add({.kind = Kind::mount,
             .source = "tmpfs",
             .target = keep(scratch),
             .fstype = "tmpfs",
             .data = "mode=0755",
             .flags = MS_NOSUID | MS_NODEV});
      }
      const char* upper = keep(scratch + "/upper");
      const char* work = keep(scratch + "/work");
      root = keep(scratch + "/root");
      for (const char* dir : {upper, work, root}) add({.kind = Kind::mkdir, .target = dir});
      std::string lower;
      for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
        lower += (lower.empty() ? "" : ":") + *it;  // overlayfs wants the top layer first
      }
      add({.kind = Kind::mount,
           .source = "overlay",
           .target = root,
           .fstype = "overlay",
           // Inside a user namespace overlayfs can only read user.* xattrs: an image's
           // opaque directories (hutch/image.hpp) are marked with user.overlay.opaque too.
           .data = keep(fmt::format(
               "lowerdir={},upperdir={},workdir={}{}", lower, upper, work,
               layers.size() > 1 && namespaces.contains(Namespace::user) ? ",userxattr" : ""))});
    } else {
      root = keep(layers.front());
      add({.kind = Kind::bind, .source = root, .target = root, .flags = MS_REC});
    }

    const bool pid_ns = namespaces.contains(Namespace::pid);
    const bool net_ns = namespaces.contains(Namespace::net);
    if (fs.has(Standard::proc)) {
      if (pid_ns) {
        add_in_root({.kind = Kind::mount,
                     .create = true,
                     .source = "proc",
                     .target = "/proc",
                     .fstype = "proc",
                     .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
      } else {
        add_in_root({.kind = Kind::bind,
                     .create = true,
                     .source = "/proc",
                     .target = "/proc",
                     .flags = MS_REC});
      }
    }
    if (fs.has(Standard::dev)) plan_dev();
    if (fs.has(Standard::sys)) {
      // A sysfs of its own where we may mount one (with our own network namespace, or as
      // root without a user namespace), as runc does: none of the host's submounts
      // (tracefs, cgroupfs, ...) come along. Otherwise the host's /sys, bound with its
      // submounts and all of them made read-only.
      if (net_ns || !namespaces.contains(Namespace::user)) {
        add_in_root({.kind = Kind::mount,
                     .create = true,
                     .source = "sysfs",
                     .target = "/sys",
                     .fstype = "sysfs",
                     .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY});
      } else {
        add_in_root({.kind = Kind::bind,
                     .create = true,
                     .source = "/sys",
                     .target = "/sys",
                     .flags = MS_REC | MS_RDONLY});
      }
    }

    for (const auto& m : fs.mounts_) {
      if (m.kind == RootFs::Mount::Kind::bind) {
        struct stat st {};
        if (::stat(m.source.c_str(), &st) != 0) {
          return last_error(Step::prepare_rootfs, m.source, "bind source");
        }
        add_in_root(
            {.kind = Kind::bind,
             .create = true,
             .create_file = !S_ISDIR(st.st_mode),
             .source = keep(m.source),
             .target = keep(m.target),
             .flags =
                 MS_REC | (m.access == read_only ? static_cast<unsigned long>(MS_RDONLY) : 0ul)});
      } else {
        add_in_root({.kind = Kind::mount,
                     .create = true,
                     .source = "tmpfs",
                     .target = keep(m.target),
                     .fstype = "tmpfs",
                     .data = keep(fmt::format("size={},mode={:o}", m.size, m.mode)),
                     .flags = MS_NOSUID | MS_NODEV});
      }
    }

    plan_masks();
    if (fs.read_only_) {
      add_in_root({.kind = Kind::remount, .target = "/", .flags = MS_RDONLY});
    }
    // Everything above runs while the host may still be moving us into our cgroup (v1);
    // the container's /sys/fs/cgroup shows the cgroup namespace entered here.
    add({.kind = Kind::enter_cgroup});
    if (fs.has(Standard::cgroup) && fs.has(Standard::sys) &&
        namespaces.contains(Namespace::cgroup)) {
      plan_cgroup();
    }
    add_in_root({.kind = fs.chroot_ ? Kind::chroot : Kind::pivot_root, .target = "/"});
    return root;
  }

  /// The OCI default masked and read-only paths. Under a /proc or /sys that we mounted and
  /// no user mount covers, they are `here` steps.
  void plan_masks() {
    using Kind = MountStep::Kind;
    std::vector<std::pair<Kind, const char*>> proc, sys;
    if (fs.has(Standard::masked_paths)) {
      for (const char* name : {"acpi", "asound", "kcore", "keys", "latency_stats", "timer_list",
                               "timer_stats", "sched_debug", "scsi"}) {
        proc.emplace_back(Kind::mask, name);
      }
      for (const char* name : {"firmware", "devices/virtual/powercap"}) {
        sys.emplace_back(Kind::mask, name);
      }
    }
    if (fs.has(Standard::readonly_paths)) {
      for (const char* name : {"bus", "fs", "irq", "sys", "sysrq-trigger"}) {
        proc.emplace_back(Kind::readonly, name);
      }
    }
    plan_in("/proc", proc, fs.has(Standard::proc) && !user_mount_under("/proc"));
    plan_in("/sys", sys, fs.has(Standard::sys) && !user_mount_under("/sys"));
  }

  /// Optional steps on entries of `dir`: `here` steps if `fresh`, else resolved in the root.
  void plan_in(const char* dir, const std::vector<std::pair<MountStep::Kind, const char*>>& list,
               bool fresh) {
    if (list.empty()) return;
    if (fresh) add_in_root({.kind = MountStep::Kind::enter, .target = dir});
    for (auto [kind, name] : list) {
      if (fresh) {
        add({.kind = kind, .optional = true, .here = true, .target = name});
      } else {
        add_in_root(
            {.kind = kind, .optional = true, .target = keep(fmt::format("{}/{}", dir, name))});
      }
    }
  }

  /// /sys/fs/cgroup as the container sees it: inside its cgroup namespace a new cgroupfs
  /// shows its own cgroup as the root, with its limits, read-only.
  void plan_cgroup() {
    using Kind = MountStep::Kind;
    const auto& layout = host_layout();
    if (!layout) return;  // no cgroupfs on the host: nothing to show
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
    if (layout->kind == CGroupLayout::unified) {
      add_in_root({.kind = Kind::mount,
                   .create = true,
                   .source = "cgroup2",
                   .target = "/sys/fs/cgroup",
                   .fstype = "cgroup2",
                   .flags = flags});
      return;
    }
    add_in_root({.kind = Kind::mount,
                 .create = true,
                 .source = "tmpfs",
                 .target = "/sys/fs/cgroup",
                 .fstype = "tmpfs",
                 .data = "mode=755,size=64k",
                 .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
    add_in_root({.kind = Kind::enter, .target = "/sys/fs/cgroup"});
    for (const auto& h : layout->hierarchies) {
      std::string controllers;
      for (const auto& c : h.controllers) controllers += (controllers.empty() ? "" : ",") + c;
      const char* name = keep(controllers);
      add({.kind = Kind::mount,
           .create = true,
           .here = true,
           .source = "cgroup",
           .target = name,
           .fstype = "cgroup",
           .data = name,
           .flags = flags});
    }
    add({.kind = Kind::remount, .here = true, .target = ".", .flags = MS_RDONLY});
  }

  void plan_dev() {
    using Kind = MountStep::Kind;
    add_in_root({.kind = Kind::mount,
                 .create = true,
                 .source = "tmpfs",
                 .target = "/dev",
                 .fstype = "tmpfs",
                 .data = "mode=755,size=65536k",
                 .flags = MS_NOSUID | MS_STRICTATIME});
    // Bind the host's device nodes rather than mknod: it works the same with and without a
    // user namespace (where mknod is not allowed), as runc does rootless.
    add_in_root({.kind = Kind::enter, .target = "/dev"});
    for (auto [name, host] : {std::pair{"null", "/dev/null"},
                              {"zero", "/dev/zero"},
                              {"full", "/dev/full"},
                              {"random", "/dev/random"},
                              {"urandom", "/dev/urandom"},
                              {"tty", "/dev/tty"}}) {
      add({.kind = Kind::bind,
           .create = true,
           .create_file = true,
           .here = true,
           .source = host,
           .target = name});
    }
    auto mount_here = [&](const char* source, const char* target, const char* fstype,
                          const char* data, unsigned long flags) {
      add({.kind = Kind::mount,
           .create = true,
           .here = true,
           .source = source,
           .target = target,
           .fstype = fstype,
           .data = data,
           .flags = flags});
    };
    mount_here("devpts", "pts", "devpts", "newinstance,ptmxmode=0666,mode=0620",
               MS_NOSUID | MS_NOEXEC);
    mount_here("shm", "shm", "tmpfs", "mode=1777,size=65536k", MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (namespaces.contains(Namespace::ipc)) {
      // The container's own POSIX message queues (without an ipc namespace they would be
      // the host's: left out then).
      mount_here("mqueue", "mqueue", "mqueue", nullptr, MS_NOSUID | MS_NODEV | MS_NOEXEC);
    }
    for (auto [link, to] : {std::pair{"ptmx", "pts/ptmx"},
                            {"fd", "/proc/self/fd"},
                            {"stdin", "/proc/self/fd/0"},
                            {"stdout", "/proc/self/fd/1"},
                            {"stderr", "/proc/self/fd/2"}}) {
      add({.kind = Kind::symlink, .here = true, .source = to, .target = link});
    }
  }
};

}  // namespace detail
}  // namespace hutch
