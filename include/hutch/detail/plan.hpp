// hutch — the plan: everything the child needs between clone and exec, prepared by the
// host as plain arrays so the child only reads memory and makes system calls.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "../error.hpp"

namespace hutch::detail {

/// Duplicate host descriptor `source` onto `target` inside the container.
struct FdMove {
  int source;
  int target;
};

/// One filesystem step of the container's setup, run in order inside the child's mount
/// namespace. Paths are absolute; `target` is where the step acts (inside the new root once
/// `root` is set up). Built by RootFs (rootfs.hpp).
struct MountStep {
  enum class Kind : std::uint8_t {
    make_private,  // mount(NULL, "/", MS_REC|MS_PRIVATE): no propagation to or from the host
    mkdir,         // create directory `target` (mode `mode`)
    mount,         // mount(source, target, fstype, flags, data)
    bind,          // bind `source` (a host path) onto `target`, recursively if MS_REC
    remount,       // remount the mount at `target` with `flags`, keeping its locked flags
    mask,          // hide `target`: /dev/null over a file, an empty read-only tmpfs over a dir
    readonly,      // bind `target` onto itself read-only
    symlink,       // symlink(source, target)
    pivot_root,    // pivot_root into `target` and detach the old root
    chroot,        // chroot into `target` (explicit fallback, e.g. on an initramfs root)
    enter_cgroup,  // wait until the host has placed us in our cgroup, then unshare the
                   // cgroup namespace (Plan::late_cgroup); the steps after see it
    enter,         // make directory `target` the working directory of the `here` steps
    node,          // mknod `target` (mode `mode` with its type, device `device`)
    propagate,     // mount(NULL, target, NULL, flags): change the mount's propagation
    attributes,    // mount_setattr the mount at `target`: set `flags` (MOUNT_ATTR_*), recursive
                   // when `recursive`
  };
  Kind kind = Kind::mount;
  /// Resolve `target` inside the new root (openat2 RESOLVE_IN_ROOT): a symlink in the
  /// snapshot can never send the step to a host path. Otherwise `target` is a host path.
  bool in_root = false;
  bool optional = false;     // skip silently when the target does not exist
  bool create = false;       // create a missing target (and its parents)
  bool create_file = false;  // ... as an empty file rather than a directory
  /// `target` is relative to the directory the last `enter` step went into: one that this
  /// child has just mounted a kernel filesystem on (tmpfs, proc, sys, cgroup), so only the
  /// kernel made its entries and nothing of the snapshot can redirect the step. One system
  /// call acts where an in-root step needs four or more.
  bool here = false;
  const char* source = nullptr;
  const char* target = nullptr;
  const char* fstype = nullptr;
  const char* data = nullptr;
  unsigned long flags = 0;
  unsigned mode = 0755;
  unsigned long long device = 0;  // node: the device number (makedev)
  bool recursive = false;         // attributes: to every mount below too
  /// A sysfs of the container's network namespace: where the host made that namespace ahead
  /// (Plan::sysfs_fd), the sysfs made with it is moved here instead of mounting one, which a
  /// user namespace that does not own the network namespace may not do.
  bool network_sysfs = false;
};

/// One namespaced kernel parameter, written inside the container once its /proc is there.
struct SysctlStep {
  const char* path;  // "/proc/sys/net/ipv4/ip_forward"
  const char* value;
  std::size_t length;
};

/// One existing namespace to join (setns(2)).
struct JoinStep {
  int fd;
  int type;  // CLONE_NEW*
};

/// One setrlimit for the child (prlimit64(2) layout).
struct RlimitStep {
  int resource;
  std::uint64_t soft;
  std::uint64_t hard;
};

/// The report's index for an exec of the init itself (Plan::init_fd), and of a file by its
/// descriptor (Plan::exec_fd).
inline constexpr int init_index = -2;
inline constexpr int exec_fd_index = -3;

/// What the child reports on failure: one record, written in one write(2).
struct ChildReport {
  std::int32_t step;
  std::int32_t error;  // errno
  std::int32_t index;  // which exec path, mount step or fd; -1 if none
};

/// Where the intermediate process of an exec (detail/child/join.hpp) leaves the pid of the
/// process it started inside the container; the host reads it once the intermediate is gone.
struct JoinResult {
  long pid = 0;
};

struct Plan {
  // exec
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
  const char* const* exec_paths = nullptr;  // candidates from PATH, tried in order
  std::size_t exec_path_count = 0;
  /// With an init (Container::init): exec'd instead, from this sealed memfd, with init_argv
  /// (its report descriptor's number is written into init_report_arg by the child, which
  /// knows where the descriptor ended up).
  int init_fd = -1;
  const char* const* init_argv = nullptr;
  char* init_report_arg = nullptr;  // 16 bytes

  // process
  const char* cwd = nullptr;
  const char* hostname = nullptr;
  std::size_t hostname_length = 0;
  const char* domainname = nullptr;
  std::size_t domainname_length = 0;
  const SysctlStep* sysctls = nullptr;
  std::size_t sysctl_count = 0;
  /// Namespaces joined instead of made (not pid: the host's thread enters that one around
  /// clone, so that the child is born in it), entered first thing after the id maps.
  const JoinStep* joins = nullptr;
  std::size_t join_count = 0;
  int exec_fd = -1;        // execveat this file instead of the exec candidates
  int start_fifo_fd = -1;  // O_PATH of the FIFO a created child waits on (Spec::start_fifo)
  int sysfs_fd = -1;       // the detached sysfs of a network namespace made ahead
  bool loopback_up = false;
  bool unshare_cgroup = false;
  /// cgroup v1: the host creates our cgroup and moves us into it while we set up (clone
  /// cannot place us, and the other CPU is idle); we wait for SyncPoint::cgroup_joined
  /// before entering a cgroup namespace and before anything runs. Where: at the
  /// enter_cgroup step, which every plan with mount steps has once; without mount steps,
  /// before any other step.
  bool late_cgroup = false;
  /// An Attacher (a network) works on the host after the cgroup step: we wait for
  /// SyncPoint::network_ready after the mount steps, before taking on the command's identity.
  bool await_network = false;
  bool die_with_parent = true;
  /// clone3 reset the handled signals in the child (CLONE_CLEAR_SIGHAND); set by
  /// start_child() just before the child starts.
  bool handlers_cleared = false;

  // time namespace
  bool unshare_time = false;
  const char* timens_offsets = nullptr;
  std::size_t timens_offsets_length = 0;

  // filesystem
  const MountStep* mounts = nullptr;
  std::size_t mount_count = 0;
  const char* new_root = nullptr;  // host path of the assembled root; in_root steps use it

  // privileges
  bool set_capabilities = false;
  std::uint64_t bounding = 0, effective = 0, permitted = 0, inheritable = 0, ambient = 0;
  int cap_last = 40;  // /proc/sys/kernel/cap_last_cap
  bool no_new_privs = true;
  bool new_session = true;  // setsid(2): no controlling terminal shared with the host
  unsigned umask = 022;
  const sock_filter* seccomp = nullptr;  // installed last, just before execve
  std::size_t seccomp_length = 0;
  int test_pause_fd = -1;  // tests only: read one byte just before exec
  /// /proc/self/oom_score_adj, written by the child when it has memory of its own (a value
  /// written from a process that shares the host's memory would be the host's too: then the
  /// host writes it after exec).
  const char* oom_score_adj = nullptr;
  std::size_t oom_score_adj_length = 0;
  bool own_memory = false;  // no CLONE_VM: create()

  // exec into a running container (Joiner): the intermediate process setns() into the
  // target's namespaces (a pidfd and the CLONE_NEW* flags of those that differ from ours) and
  // starts the process there on a stack of its own, a child of the host (CLONE_PARENT), in
  // the target's cgroup when cgroup v2 lets clone3 place it (join_cgroup_fd).
  int join_pidfd = -1;
  std::uint64_t join_flags = 0;
  int join_cgroup_fd = -1;
  char* join_stack = nullptr;  // low end; Stack::size bytes
  JoinResult* join_result = nullptr;
  const RlimitStep* rlimits = nullptr;
  std::size_t rlimit_count = 0;

  // identity
  bool set_ids = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool set_groups = false;
  const gid_t* groups = nullptr;
  std::size_t group_count = 0;

  // descriptors
  const FdMove* fd_moves = nullptr;
  std::size_t fd_move_count = 0;
  int max_target = 2;
  bool tty = false;       // stdio is a pseudo-terminal: new session, controlling tty on fd 0
  int error_fd = -1;      // write end of the close-on-exec report pipe
  int sync_fd = -1;       // the child's end of the sync socket (detail/sync.hpp)
  int host_sync_fd = -1;  // the child's copy of the host end, closed first thing
  /// Container::create(): the child has memory of its own (no CLONE_VM) and, set up,
  /// announces SyncPoint::ready on sync_fd and waits there for SyncPoint::start.
  bool wait_for_start = false;
};

}  // namespace hutch::detail
