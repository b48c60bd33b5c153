// hutch — the user namespace's id maps, written by the host while the child waits, and the
// dumpable window that decides when an unprivileged host may write them.
#pragma once

#include <sys/prctl.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../namespaces.hpp"
#include "syscall.hpp"

namespace hutch::detail {

inline std::string format_id_map(const std::vector<IdMap>& map) {
  std::string out;
  for (const IdMap& m : map) out += fmt::format("{} {} {}\n", m.inside, m.outside, m.count);
  return out;
}

/// Writes /proc/PID/{setgroups,uid_map,gid_map}. Without a map, container id 0 is the
/// caller's own id.
inline result<void> write_id_maps(std::vector<IdMap> uids, std::vector<IdMap> gids, long pid) {
  const bool root = ::geteuid() == 0;
  if (uids.empty()) uids.push_back({0, ::geteuid(), 1});
  if (gids.empty()) gids.push_back({0, ::getegid(), 1});
  const std::string base = fmt::format("/proc/{}/", pid);
  if (!root) {
    // Without CAP_SETGID a gid_map may only be written once setgroups is denied
    // (user_namespaces(7)).
    const std::string path = base + "setgroups";
    if (!sys::write_file(path.c_str(), "deny", 4) && errno != ENOENT) {
      return last_error(Step::write_setgroups, path);
    }
  }
  const std::string uid_text = format_id_map(uids), gid_text = format_id_map(gids);
  const std::string uid_path = base + "uid_map", gid_path = base + "gid_map";
  const char* privilege_note =
      root ? "" : "mapping ids other than your own needs CAP_SETUID and CAP_SETGID";
  if (!sys::write_file(uid_path.c_str(), uid_text.data(), uid_text.size())) {
    return last_error(Step::write_uid_map, uid_text.substr(0, uid_text.size() - 1),
                      errno == EPERM ? privilege_note : "");
  }
  if (!sys::write_file(gid_path.c_str(), gid_text.data(), gid_text.size())) {
    return last_error(Step::write_gid_map, gid_text.substr(0, gid_text.size() - 1),
                      errno == EPERM ? privilege_note : "");
  }
  return success();
}

/// The dumpable flag (prctl(2)) belongs to the mm, and every child shares ours until it execs
/// (CLONE_VM): a child that makes itself non-dumpable for its setup makes the host so too. A
/// window is open from the release of a child to its exec; when the last one closes, the
/// host's own flag comes back. While any window is open the /proc files of every child belong
/// to root, so a host without privilege writes id maps only when none is open.
class DumpableWindow {
 public:
  DumpableWindow() {
    std::lock_guard lock(state().mutex);
    if (state().open++ == 0) state().saved = ::prctl(PR_GET_DUMPABLE);
  }
  ~DumpableWindow() {
    std::lock_guard lock(state().mutex);
    if (--state().open == 0) {
      if (state().saved > 0 && ::prctl(PR_GET_DUMPABLE) != state().saved) {
        ::prctl(PR_SET_DUMPABLE, state().saved);
      }
      state().closed.notify_all();
    }
  }
  DumpableWindow(const DumpableWindow&) = delete;
  DumpableWindow& operator=(const DumpableWindow&) = delete;

  template <typename F>
  static auto when_all_closed(F f) {
    if (::geteuid() == 0) return f();  // root opens any /proc file
    std::unique_lock lock(state().mutex);
    state().closed.wait(lock, [] { return state().open == 0; });
    return f();
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable closed;
    int open = 0;
    int saved = 1;
  };
  static State& state() {
    static State s;
    return s;
  }
};

}  // namespace hutch::detail
