// hutch — directories that must be the caller's own: a scratch parent, the image store.
// Another user who could write one could swap what hutch creates in it between its creation
// and its use (a container's root, its volume), or plant entries hutch would trust.
#pragma once

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "../error.hpp"
#include "../fd.hpp"

namespace hutch::detail {

/// Who may use a directory: the caller (or root, which the caller trusts anyway), not as a
/// symlink, and, unless `others_may_read`, with no access for group or others at all.
struct DirectoryRule {
  bool others_may_read = false;  // 0755 allowed; never group/other write
  bool create = false;           // make it (mode 0700) when missing
  bool repair = false;           // take group/other access away when the caller owns it
};

inline std::string mode_text(mode_t mode) {
  return fmt::format("{:04o}", mode & 07777);
}

/// Checks (and per the rule creates or repairs) `dir`. The error names the directory, its
/// owner and its mode.
inline result<void> private_directory(const std::string& dir, Step step, DirectoryRule rule) {
  if (rule.create && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return last_error(step, dir, "creating a private directory");
  }
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    return last_error(step, dir,
                      errno == ENOTDIR || errno == ELOOP ? "not a directory (a symlink?)" : "");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return last_error(step, dir);
  const uid_t me = ::geteuid();
  if (st.st_uid != me && st.st_uid != 0) {
    return make_error(step, EPERM, dir,
                      fmt::format("it belongs to uid {}, not to the caller (uid {}): another "
                                  "user could swap what hutch makes in it",
                                  st.st_uid, me));
  }
  const mode_t forbidden = rule.others_may_read ? 022 : 077;
  if ((st.st_mode & forbidden) == 0) return success();
  if (rule.repair && st.st_uid == me && ::fchmod(fd.get(), st.st_mode & 07700) == 0) {
    return success();
  }
  return make_error(
      step, EPERM, dir,
      fmt::format("mode {} lets other users {} it; it must be {}", mode_text(st.st_mode),
                  rule.others_may_read ? "write in" : "reach into",
                  rule.others_may_read ? "0700 or 0755" : "0700"));
}

/// The caller's home directory: $HOME, else the password database's entry for the effective
/// uid. Empty when neither says (never a shared fallback such as /tmp).
inline std::string home_directory() {
  if (const char* home = ::getenv("HOME"); home && *home == '/') return home;
  passwd entry{};
  passwd* found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(::geteuid(), &entry, buffer, sizeof buffer, &found) == 0 && found &&
      found->pw_dir && *found->pw_dir == '/') {
    return found->pw_dir;
  }
  return {};
}

}  // namespace hutch::detail
