// hutch-run: RunOptions turned into a hutch::Container, with docker's security defaults.
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <hutch/hutch.hpp>
#include <hutch/net.hpp>

#include "options.hpp"

namespace hutch_run {

/// Docker's rules for --cap-add/--cap-drop: drops apply first, ALL means every one.
inline hutch::Capabilities capabilities(const RunOptions& o) {
  hutch::Capabilities caps = hutch::Capabilities::defaults();
  for (const auto& name : o.cap_drop) {
    caps = name == "ALL" || name == "all" ? hutch::Capabilities::none()
                                          : caps.drop(*hutch::parse_capability(name));
  }
  for (const auto& name : o.cap_add) {
    caps = name == "ALL" || name == "all" ? hutch::Capabilities::all()
                                          : caps.add(*hutch::parse_capability(name));
  }
  return caps;
}

/// hutch-init for --init: $HUTCH_INIT, else beside this program as installed
/// (bin/../libexec/hutch/hutch-init) or as built (tools/hutch-run/../hutch-init/hutch-init).
inline std::string init_binary() {
  if (const char* env = std::getenv("HUTCH_INIT"); env && *env) return env;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate :
       {self / "../libexec/hutch/hutch-init", self / "../hutch-init/hutch-init"}) {
    if (std::filesystem::exists(candidate, ec)) return candidate.lexically_normal().string();
  }
  return (self / "../libexec/hutch/hutch-init").lexically_normal().string();
}

/// Where the writes of containers run without --rm are kept: $XDG_RUNTIME_DIR/hutch-run, or
/// /tmp/hutch-run-<uid>. Both must be the caller's own (made 0700 when missing); one of
/// another user, or that others could write in, is refused: they could swap a container's
/// root for their own during its setup.
inline hutch::result<std::string> kept_writes_parent() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  std::string parent;
  if (runtime && *runtime) {
    HUTCH_TRYV(hutch::detail::private_directory(runtime, hutch::Step::prepare_rootfs,
                                                {.others_may_read = true}));
    parent = fmt::format("{}/hutch-run", runtime);
  } else {
    parent = fmt::format("/tmp/hutch-run-{}", ::geteuid());
  }
  HUTCH_TRYV(hutch::detail::private_directory(parent, hutch::Step::prepare_rootfs,
                                              {.create = true, .repair = true}));
  return parent;
}

/// The root: the directory or the image's layers, always under an overlay. With --rm the
/// writable layer goes with the container; without, it is kept in a directory of the
/// caller's (its path is printed at the end).
inline hutch::result<hutch::RootFs> root_filesystem(const RunOptions& o,
                                                    const std::vector<std::string>& layers,
                                                    std::string& keep_parent) {
  hutch::RootFs root =
      layers.empty() ? hutch::RootFs::directory(o.rootfs) : hutch::RootFs::layers(layers);
  if (o.remove) {
    root.overlay();
  } else {
    HUTCH_TRY(keep_parent, kept_writes_parent());
    root.overlay(keep_parent, /*keep=*/true);
  }
  if (o.read_only) root.read_only();
  for (const auto& volume : o.volumes) {
    std::error_code ec;
    auto host = std::filesystem::absolute(volume.host, ec);
    if (ec) return hutch::make_error(hutch::Step::validate, ec.value(), volume.host, "--volume");
    root.bind(host.string(), volume.inside,
              volume.read_only ? hutch::read_only : hutch::read_write);
  }
  return root;
}

/// --network and what goes with it (-p, --bandwidth, --dns, --add-host).
inline hutch::result<void> configure_network(hutch::Container& c, const RunOptions& o) {
  const bool extras = !o.publish.empty() || o.ingress_bps || o.egress_bps;
  if (o.network == "none" || o.network == "host") {
    if (extras) {
      return hutch::invalid(fmt::format("--network {}", o.network),
                            "-p and --bandwidth need a network: bridge, pasta or a CNI network");
    }
    return hutch::success();
  }
  hutch::Network network = o.network == "bridge"  ? hutch::Network::bridge()
                           : o.network == "pasta" ? hutch::Network::pasta()
                                                  : hutch::Network::cni(o.network);
  if ((o.ingress_bps || o.egress_bps) && o.network == "pasta") {
    return hutch::invalid("--bandwidth", "pasta has no bandwidth limits: use a CNI network");
  }
  for (const auto& p : o.publish) {
    network.publish(
        {p.host_ip, p.host_port, p.container_port,
         p.udp ? hutch::PortMapping::Protocol::udp : hutch::PortMapping::Protocol::tcp});
  }
  if (o.ingress_bps || o.egress_bps) network.bandwidth(o.ingress_bps, o.egress_bps);
  for (const auto& server : o.dns) network.dns(server);
  for (const auto& domain : o.dns_search) network.dns_search(domain);
  for (const auto& [name, ip] : o.add_hosts) network.add_host(name, ip);
  if (const char* path = std::getenv("CNI_PATH"); path && *path) network.cni_path(path);
  if (const char* dir = std::getenv("HUTCH_NET_STATE"); dir && *dir == '/') network.state_dir(dir);
  c.network(network);
  return hutch::success();
}

/// Everything but the root and the command: namespaces, stdio, terminal, identity, security
/// and limits. `roots` are where --user names are looked up (the rootfs, or the layers top
/// first).
inline hutch::result<void> configure(hutch::Container& c, const RunOptions& o,
                                     const std::vector<std::string>& roots,
                                     std::vector<sock_filter> seccomp_program) {
  hutch::Namespaces namespaces = hutch::Namespaces::all();
  if (o.network == "host") namespaces = namespaces.without(hutch::Namespace::net);
  c.namespaces(namespaces);
  HUTCH_TRYV(configure_network(c, o));
  c.std_in(o.interactive ? hutch::Stdio::inherit() : hutch::Stdio::null()).tty(o.tty);
  if (o.tty) {
    c.env("TERM", std::getenv("TERM") ? std::getenv("TERM") : "xterm");
    // The caller's window size from the first instruction; changes follow by SIGWINCH.
    winsize size{};
    if (::ioctl(0, TIOCGWINSZ, &size) == 0 || ::ioctl(1, TIOCGWINSZ, &size) == 0) {
      c.tty_size(size.ws_row, size.ws_col);
    }
  }
  if (!o.hostname.empty()) c.hostname(o.hostname);
  if (o.init) c.init(init_binary());
  for (const auto& [key, value] : o.env) c.env(key, value);
  if (!o.workdir.empty()) c.cwd(o.workdir);
  if (!o.user.empty()) {
    auto ids = hutch::resolve_user(roots, o.user);
    if (!ids) return hutch::invalid(fmt::format("--user {}", o.user), ids.error().message());
    // The user's id must be mapped in the user namespace. As root, map ids 0-65535 onto
    // themselves, as docker does without userns-remap, so the root filesystem's owners stay
    // who they are; rootless, only the caller's own id can be mapped (it is 0 inside).
    if (::geteuid() == 0) c.uid_map({{0, 0, 65536}}).gid_map({{0, 0, 65536}});
    c.user(ids->first, ids->second);
  }
  c.capabilities(capabilities(o));
  for (const auto& limit : o.ulimits) c.rlimit(limit.resource, limit.soft, limit.hard);
  if (!o.no_new_privs) c.no_new_privs(false);
  if (o.seccomp) c.seccomp(hutch::SeccompProgram(std::move(seccomp_program)));
  if (o.memory || o.cpus || o.pids || o.blkio_weight || !o.device_limits.empty()) {
    hutch::CGroup limits;
    if (o.memory) limits.memory_max(*o.memory);
    if (o.cpus) limits.cpu_max(*o.cpus);
    if (o.pids) limits.pids_max(*o.pids);
    if (o.blkio_weight) limits.blkio_weight(*o.blkio_weight);
    for (const auto& device : o.device_limits) limits.io_max(device);
    c.cgroup(limits);
  }
  return hutch::success();
}

}  // namespace hutch_run
