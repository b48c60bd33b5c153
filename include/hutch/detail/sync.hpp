// hutch — the handshake between host and child: named sync points on one socket.
//
// The whole sequence of a spawn (S: the sync socket, a SOCK_SEQPACKET pair; R: the report
// pipe, close-on-exec, written only by a failing child):
//
//   host                                        child
//   ----                                        -----
//   plan, pipes, (v2) cgroup
//   clone3 ------------------------------------> starts: closes unneeded fds, death signal
//   writes uid_map / gid_map                    await(ids_mapped)
//   (v2 without CLONE_INTO_CGROUP: attach)
//   release(ids_mapped) ----------------------->  resets signals, hostname, loopback,
//                                                 mounts ... up to the enter_cgroup step
//   (v1) creates the cgroup, attaches the child   (v1) await(cgroup_joined)
//   release(cgroup_joined) -------------------->  unshares the cgroup namespace, mounts
//                                                 /sys/fs/cgroup, pivot_root
//   (attacher) Attachment::attach(pid): CNI        (attacher) await(network_ready)
//   plugins or pasta work on the child's netns
//   release(network_ready) -------------------->  fds, session, rlimits, capabilities,
//                                                 ids, cwd
//   (create) await_child(ready) <---------------  (create) announce(ready), await(start)
//   (start) release(start) -------------------->
//                                                 seccomp, execve
//   reads R: EOF = exec'd; a record = failure   (a failure: one record on R, _exit)
//
// Each point is one byte whose value names it, so a child that reads the wrong one (a bug)
// stops rather than go on with a step the host has not done; end of file means the host gave
// up or died, and the child exits. The host writes with MSG_NOSIGNAL: a child that died early
// cannot raise SIGPIPE in the host.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>

#include "../error.hpp"
#include "syscall.hpp"

namespace hutch::detail {

enum class SyncPoint : char {
  ids_mapped = 1,     // host -> child: id maps written (and, v2, cgroup attached)
  cgroup_joined = 2,  // host -> child: (v1) the child is in its cgroup
  ready = 3,          // child -> host: (create) set up, waiting for start
  start = 4,          // host -> child: (start) go on to exec
  network_ready = 5,  // host -> child: the Attachment (a network) is attached
};

/// Host side: lets the waiting child pass `point`.
inline result<void> release(int sync_fd, SyncPoint point) {
  const char byte = static_cast<char>(point);
  if (sys::retry([&] { return ::send(sync_fd, &byte, 1, MSG_NOSIGNAL); }) != 1) {
    return last_error(Step::release_child);
  }
  return success();
}

/// Host side: waits for the child to announce `point`. End of file: it failed (its report
/// says why) or was killed.
inline result<void> await_child(int sync_fd, SyncPoint point) {
  char byte = 0;
  ssize_t got = sys::retry([&] { return ::recv(sync_fd, &byte, 1, 0); });
  if (got < 0) return last_error(Step::read_child_report);
  if (got == 0) {
    return make_error(Step::read_child_report, ECHILD, "", "the container ended during its setup");
  }
  if (byte != static_cast<char>(point)) {
    return make_error(Step::read_child_report, EPROTO, "", "the container is out of step");
  }
  return success();
}

}  // namespace hutch::detail
