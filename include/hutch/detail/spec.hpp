// hutch — what a Container describes, as plain data: the launcher reads it, nothing else
// needs to reach into Container.
#pragma once

#include <sys/ioctl.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../attachment.hpp"
#include "../cgroup.hpp"
#include "../namespaces.hpp"
#include "../rootfs.hpp"
#include "../security.hpp"
#include "../stdio.hpp"

namespace hutch {
/// The PATH a container gets unless its environment sets one (Docker's default).
inline constexpr std::string_view default_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}  // namespace hutch

namespace hutch::detail {

enum class EnvBase { defaults, empty, host };

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

struct PassedFd {
  int host;
  int inside;
};

/// What runs: the command, its environment, identity, stdio and privileges. A container's
/// first process and a process exec'd into a running container are both described so.
struct ProcessSpec {
  std::vector<std::string> argv;
  EnvBase env_base = EnvBase::defaults;
  std::vector<std::pair<std::string, std::optional<std::string>>> env_changes;
  std::optional<std::string> cwd;
  std::optional<UserIds> user;
  Stdio stdio[3] = {Stdio::inherit(), Stdio::inherit(), Stdio::inherit()};
  std::vector<PassedFd> passed_fds;
  bool die_with_parent = true;
  bool tty = false;
  std::optional<winsize> tty_size;
  CapabilitySets capabilities = CapabilitySets::of(Capabilities::defaults());
  bool no_new_privs = true;
  bool new_session = true;
  mode_t umask = 022;
  SeccompProgram seccomp;
  std::vector<Rlimit> rlimits;
  std::optional<int> oom_score_adj;
  int exec_fd = -1;  // borrowed: exec this file (execveat) instead of argv[0] (OCI hooks)
};

/// An existing namespace to join instead of making a new one (by its /proc/PID/ns path or a
/// bind of it).
struct JoinedNamespace {
  Namespace type;
  std::string path;
};

/// A whole container: its first process and what isolates it.
struct Spec : ProcessSpec {
  std::optional<std::string> hostname;
  Namespaces namespaces = Namespaces::all();
  std::vector<IdMap> uid_map, gid_map;
  std::optional<TimeOffsets> time_offsets;
  std::optional<RootFs> rootfs;
  std::optional<CGroup> cgroup;
  std::optional<std::string> init;  // an init's path: it runs as PID 1, the command under it
  std::optional<std::string> domainname;
  std::vector<std::pair<std::string, std::string>> sysctls;  // "net.ipv4.ip_forward" = "1"
  std::vector<JoinedNamespace> joined;
  std::optional<std::string> start_fifo;     // create(): wait for a reader of this FIFO
  std::shared_ptr<const Attacher> attacher;  // host-side work before exec: a network
  bool network_made_ahead = false;           // a network namespace from detail::NetReserve
};

}  // namespace hutch::detail
