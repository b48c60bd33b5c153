// hutch — host-side work for one container between its clone and its exec, done by an
// optional module (hutch::net: its network) through an interface the core defines, so that the
// core never names a module.
//
// An Attacher is part of a Container's description. For each spawn it prepares an Attachment
// before the clone (files the container's root gets, e.g. /etc/resolv.conf); after the clone,
// once the child's namespaces exist and its ids are mapped, the host calls attach() while the
// child waits at the network_ready sync point (detail/sync.hpp) before it execs. The
// Attachment lives as long as the container: destroying it undoes what it did, on the
// janitor's thread once the container is gone.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"

namespace hutch {

/// What a container's network looks like from the host once it is attached.
struct NetworkInfo {
  struct Address {
    std::string interface;  // inside the container, e.g. "eth0"
    std::string address;    // with its prefix: "10.77.0.5/24", "fd00::5/64"
    std::string gateway;    // empty when there is none
  };
  std::string name;  // the network's name ("hutch", a conflist's name, "pasta")
  std::vector<Address> addresses;
  /// The first address without its prefix ("10.77.0.5"); empty with no address.
  std::string ip() const {
    if (addresses.empty()) return {};
    const std::string& a = addresses.front().address;
    return a.substr(0, a.find('/'));
  }
};

/// The container an Attachment works on: its host pid and descriptors of its network and
/// user namespaces (-1 without a user namespace), opened by the host while it still could (a
/// rootless host cannot open them once the child has made itself non-dumpable for its setup;
/// a helper such as pasta gets them as inherited descriptors).
struct AttachTarget {
  pid_t pid = -1;
  int netns_fd = -1;
  int userns_fd = -1;
};

/// One container's share of an Attacher's work. Destroying it undoes attach().
class Attachment {
 public:
  virtual ~Attachment() = default;
  /// A file made before the clone, bound into the container's root at `inside`.
  struct File {
    std::string host, inside;
  };
  virtual std::vector<File> files() const { return {}; }
  /// Host side, after clone: the child's namespaces are made and its ids mapped; it waits
  /// until this returns. An error ends the spawn (the Attachment is destroyed: what was done
  /// is undone). The descriptors are the host's, closed after this returns.
  virtual result<void> attach(const AttachTarget& target) = 0;
  /// After attach(): what the container got.
  virtual NetworkInfo info() const { return {}; }
  /// Whether what attach() set up is still there and as it was (CNI CHECK). Host side, any
  /// time after attach() while the container runs.
  virtual result<void> check() const { return success(); }
  /// The container started as `pid` (its host pid, for a later recovery to check).
  virtual void started(pid_t /*pid*/) {}
  /// The container outlives its handle (Child::detach): what was attached stays, and is
  /// reclaimed once the container is gone. Destroyed after this.
  virtual void keep() noexcept {}
};

/// Part of a Container's description: makes one Attachment per spawn.
class Attacher {
 public:
  virtual ~Attacher() = default;
  /// Whether the container shares the host's network namespace (none is made for it).
  virtual bool host_network() const { return false; }
  /// Before clone, on the caller's thread. `hostname` is the container's.
  virtual result<std::unique_ptr<Attachment>> prepare(
      const std::optional<std::string>& hostname) const = 0;
};

}  // namespace hutch
