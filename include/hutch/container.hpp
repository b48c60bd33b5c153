// hutch — Container: the description of a container (a copyable value), and spawn().
#pragma once

#include <sys/ioctl.h>
#include <sys/types.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgroup.hpp"
#include "child.hpp"
#include "created.hpp"
#include "detail/init.hpp"
#include "detail/joiner.hpp"
#include "detail/launcher.hpp"
#include "detail/spec.hpp"
#include "error.hpp"
#include "namespaces.hpp"
#include "process.hpp"
#include "rootfs.hpp"
#include "security.hpp"
#include "stdio.hpp"

namespace hutch {

/// The description of a container: a command, its environment and identity, the namespaces
/// that isolate it, its stdio. A copyable value; `spawn()` may be called any number of times.
///
/// Defaults are those of a container, not of a subprocess:
/// - namespaces: `Namespaces::all()` (user, pid, mount, uts, ipc, net, cgroup), rootless;
/// - environment: only `PATH` (`default_path`) and `HOSTNAME` if a hostname is set; the
///   host's environment is not passed in unless `env_inherit()` says so;
/// - descriptors: only stdio and those given with `pass_fd()` reach the command;
/// - the container is killed when the thread that spawned it exits (PR_SET_PDEATHSIG),
///   unless `die_with_parent(false)`: spawn from a thread that outlives the container.
class Container : public detail::ProcessBuilder<Container, detail::Spec> {
 public:
  /// The hostname inside; needs `Namespace::uts` (it would otherwise rename the host).
  Container& hostname(std::string name) {
    spec_.hostname = std::move(name);
    return *this;
  }
  Container& namespaces(Namespaces set) {
    spec_.namespaces = set;
    return *this;
  }
  /// Id maps of the user namespace; see IdMap for the default.
  Container& uid_map(std::vector<IdMap> map) {
    spec_.uid_map = std::move(map);
    return *this;
  }
  Container& gid_map(std::vector<IdMap> map) {
    spec_.gid_map = std::move(map);
    return *this;
  }
  /// Clock offsets; needs `Namespace::time`.
  Container& time_offsets(TimeOffsets offsets) {
    spec_.time_offsets = offsets;
    return *this;
  }
  /// The container's own root filesystem. Without one, the command sees the host's files
  /// (with a fresh /proc when it has pid and mount namespaces).
  Container& rootfs(RootFs fs) {
    spec_.rootfs = std::move(fs);
    return *this;
  }
  /// The container's cgroup and limits (see CGroup).
  Container& cgroup(CGroup spec) {
    spec_.cgroup = std::move(spec);
    return *this;
  }
  /// The NIS domain name inside (setdomainname(2)); needs `Namespace::uts`.
  Container& domainname(std::string name) {
    spec_.domainname = std::move(name);
    return *this;
  }
  /// Sets a namespaced kernel parameter inside the container once its /proc is mounted, e.g.
  /// `sysctl("net.ipv4.ip_unprivileged_port_start", "0")`. Only those that belong to the
  /// container's own namespaces are accepted (net.* with a network namespace, kernel.shm*,
  /// kernel.msg*, kernel.sem and fs.mqueue.* with an ipc namespace): others would change the
  /// host.
  Container& sysctl(std::string key, std::string value) {
    spec_.sysctls.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  /// Joins the existing namespace at `path` (e.g. /proc/PID/ns/net: another container's, as
  /// a pod's containers share one) instead of making a new one of that type. net, ipc, uts,
  /// cgroup and pid may be joined; time only by create(), whose child does not share the
  /// host's memory.
  Container& join_namespace(Namespace type, std::string path) {
    spec_.joined.push_back({type, std::move(path)});
    spec_.namespaces = spec_.namespaces.with(type);
    return *this;
  }
  /// The container's network, set up by a module on the host after clone and before exec
  /// (hutch::net's Network converts to this: `network(hutch::Network::bridge())`). Null: a
  /// network namespace of its own with loopback only, the default.
  Container& network(std::shared_ptr<const Attacher> attacher) {
    const bool host = attacher && attacher->host_network();
    spec_.namespaces =
        host ? spec_.namespaces.without(Namespace::net) : spec_.namespaces.with(Namespace::net);
    spec_.attacher = std::move(attacher);
    return *this;
  }
  /// Lets the container's network namespace be one that hutch made ahead, on a background
  /// thread, instead of one made at clone: the kernel takes 1-3 ms to make a network
  /// namespace, more than all the rest of a full-isolation spawn. Each is used once, with its
  /// loopback up, and goes with the container. Only a host with CAP_SYS_ADMIN (root) makes
  /// them; elsewhere the container makes its own at clone, as without this.
  ///
  /// A namespace made ahead belongs to the host's user namespace. For a container without a
  /// user namespace that is what it would have had anyway. For one with, it is the
  /// difference: the container's root then holds no capability over its network, so it
  /// cannot configure it (CAP_NET_ADMIN), bind ports below 1024 or open raw sockets, and
  /// net.* sysctls are refused. A host-side network (`network(...)`) is set up as usual.
  Container& network_made_ahead(bool yes = true) {
    spec_.network_made_ahead = yes;
    return *this;
  }
  /// With create(): the created container waits, set up, for a reader of the FIFO at `path`
  /// (made if missing) instead of for Created::start(), so any process may start it with
  /// hutch::start_created(path) — as `runc start` does through runc's exec.fifo. Give it
  /// `die_with_parent(false)` to let it outlive the creating process.
  Container& start_fifo(std::string path) {
    spec_.start_fifo = std::move(path);
    return *this;
  }
  /// Runs a tiny init as PID 1 with the command as its child, as `docker run --init` does:
  /// it forwards every signal to the command, reaps the orphans that are reparented to it,
  /// and exits with the command's status (a signal N as 128+N). The init is hutch-init
  /// (tools/hutch-init), found at $HUTCH_INIT or where hutch installed it; it is exec'd from a
  /// sealed copy in memory, so the container's root need not hold it.
  Container& init(bool yes = true) {
    if (yes) {
      spec_.init = detail::default_init_path();
    } else {
      spec_.init.reset();
    }
    return *this;
  }
  /// As init(true), with the init binary at `path`.
  Container& init(std::string path) {
    spec_.init = std::move(path);
    return *this;
  }
  Container& init(const char* path) { return init(std::string(path)); }  // not init(bool)
  /// Starts the container. Returns when the command has been exec'd inside it, or with the
  /// reason it could not be, whichever step failed, in the host or in the container.
  result<Child> spawn() const;

  /// Sets the container up — namespaces, id maps, root filesystem, cgroup, user and
  /// capabilities — and stops just before its command: `Created::start()` runs it (the
  /// split of `runc create` and `runc start`). A failed step is reported here as by spawn();
  /// exec's own errors (command not found, ...) by start(). Starting a created container
  /// costs a message and an exec, so a host that prepares one ahead starts its job at once.
  /// The waiting process has a copy of the host's memory (spawn()'s child shares it), so
  /// creating costs more than spawning and grows with the host's size; it may wait as long
  /// as it likes.
  result<Created> create() const;

  /// Runs the container to its end and returns its exit status. Stdio as configured.
  result<ExitStatus> run() const {
    HUTCH_TRY(Child child, spawn());
    return child.wait();
  }

  /// Runs the container to its end with stdout and stderr captured (stdin /dev/null unless
  /// set otherwise) and returns them with the exit status.
  result<Output> output() const {
    Container c = *this;
    if (c.spec_.stdio[0].kind() == Stdio::Kind::inherit) c.spec_.stdio[0] = Stdio::null();
    c.spec_.stdio[1] = Stdio::piped();
    c.spec_.stdio[2] = Stdio::piped();
    HUTCH_TRY(Child child, c.spawn());
    return child.wait_with_output();
  }

  // Read access, for tools built on the library.
  Namespaces namespaces() const noexcept { return spec_.namespaces; }
  const std::optional<std::string>& hostname() const noexcept { return spec_.hostname; }
  /// The whole description as plain data: what the launcher reads.
  const detail::Spec& spec() const noexcept { return spec_; }
};

inline result<Child> Container::spawn() const {
  return detail::Launcher::spawn(spec_);
}

inline result<Created> Container::create() const {
  HUTCH_TRY(detail::Launched launched, detail::Launcher::create(spec_));
  return Created(std::move(launched.state), std::move(launched.child));
}

}  // namespace hutch
