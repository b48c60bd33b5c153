// hutch — users of a root filesystem: `docker run --user` resolved through the root's own
// /etc/passwd and /etc/group, read as the container would see them and never outside it.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/syscall.hpp"
#include "error.hpp"
#include "fd.hpp"

namespace hutch {
namespace detail {

/// The most of a root's passwd or group file hutch reads.
inline constexpr std::size_t max_account_file = 1 << 20;

struct OpenHowUser {
  std::uint64_t flags, mode, resolve;
};

/// openat2(2) of `path` inside `root` as if it were "/" (RESOLVE_IN_ROOT; no magic links).
inline int open_inside(int root, const std::string& path, int flags) {
  OpenHowUser how{static_cast<std::uint64_t>(flags | O_CLOEXEC), 0, 0x10 | 0x02};
  return static_cast<int>(
      ::syscall(SYS_openat2, root, path.empty() ? "." : path.c_str(), &how, sizeof how));
}

/// Reads regular file `fd` (at most max_account_file bytes).
inline result<std::string> read_bounded(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return last_error(Step::resolve_user, path);
  if (!S_ISREG(st.st_mode)) {
    return make_error(Step::resolve_user, EINVAL, path, "not a regular file in the container");
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = sys::retry([&] { return ::read(fd, buffer, sizeof buffer); });
    if (n < 0) return last_error(Step::resolve_user, path);
    if (n == 0) return text;
    if (text.size() + static_cast<std::size_t>(n) > max_account_file) {
      return make_error(Step::resolve_user, EFBIG, path, "larger than hutch reads of it");
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

/// What one layer says of `dir/name`: the file, nothing (look lower), hidden (a whiteout or
/// an opaque directory stops the search), or a symlink to follow.
struct LayerLookup {
  enum class Kind { file, absent, hidden, link } kind = Kind::absent;
  std::string text;  // the file's content, or the link's target
};

inline bool opaque_dir(int dir) {
  char value[2];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    if (::fgetxattr(dir, name, value, sizeof value) == 1 && value[0] == 'y') return true;
  }
  return false;
}

inline result<LayerLookup> look_in_layer(const std::string& layer, const std::string& dir,
                                         const std::string& name) {
  LayerLookup out;
  Fd root(::open(layer.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root && errno == ENOENT) return out;
  if (!root) return last_error(Step::resolve_user, layer);
  Fd parent(open_inside(root.get(), dir, O_RDONLY | O_DIRECTORY));
  if (!parent) {
    struct stat st {};
    if (::fstatat(root.get(), dir.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode)) {
      out.kind = LayerLookup::Kind::hidden;  // the directory is whited out
    }
    return out;
  }
  struct stat st {};
  if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (opaque_dir(parent.get())) out.kind = LayerLookup::Kind::hidden;
    return out;
  }
  if (S_ISCHR(st.st_mode) && st.st_rdev == ::makedev(0, 0)) {
    out.kind = LayerLookup::Kind::hidden;
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = ::readlinkat(parent.get(), name.c_str(), target, sizeof target - 1);
    if (n <= 0) return last_error(Step::resolve_user, dir + "/" + name);
    out.kind = LayerLookup::Kind::link;
    out.text.assign(target, static_cast<std::size_t>(n));
  } else {
    Fd file(::openat(parent.get(), name.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
    if (!file) return last_error(Step::resolve_user, dir + "/" + name);
    HUTCH_TRY(out.text, read_bounded(file.get(), "/" + dir + "/" + name));
    out.kind = LayerLookup::Kind::file;
  }
  return out;
}

/// The file at `path` (relative to the container's root) as the container sees it through
/// `layers`, top first: the topmost layer that has it wins, a whiteout or an opaque directory
/// hides the ones below, and a symlink is followed by hand inside the container (at most 8).
inline result<std::optional<std::string>> read_in_layers(const std::vector<std::string>& layers,
                                                         std::string path) {
  for (int links = 0; links <= 8; ++links) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
    const std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1);
    std::optional<LayerLookup> found;
    for (const auto& layer : layers) {
      HUTCH_TRY(LayerLookup lookup, look_in_layer(layer, dir, name));
      if (lookup.kind == LayerLookup::Kind::absent) continue;
      found = std::move(lookup);
      break;
    }
    if (!found || found->kind == LayerLookup::Kind::hidden) return std::optional<std::string>();
    if (found->kind == LayerLookup::Kind::file) return std::optional<std::string>(found->text);
    const std::string& target = found->text;
    path = target[0] == '/' ? target.substr(target.find_first_not_of('/') == std::string::npos
                                                ? target.size()
                                                : target.find_first_not_of('/'))
                            : (dir.empty() ? target : dir + "/" + target);
  }
  return make_error(Step::resolve_user, ELOOP, path, "too many symlinks in the container");
}

/// A uid or gid as /etc/passwd writes it: digits, at most 2^32 - 2.
inline std::optional<std::uint32_t> account_id(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v >= 0xffffffffull) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

/// "name:x:id:gid:..." lines: the id (and the gid, for passwd) of `name`.
inline std::optional<std::pair<std::uint32_t, std::uint32_t>> find_account(std::string_view text,
                                                                           std::string_view name) {
  for (std::string_view rest = text; !rest.empty();) {
    const auto end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    std::string_view field[4];
    std::size_t n = 0;
    for (std::string_view l = line; n < 4;) {
      const auto colon = l.find(':');
      field[n++] = l.substr(0, colon);
      if (colon == std::string_view::npos) break;
      l.remove_prefix(colon + 1);
    }
    if (n < 3 || field[0] != name) continue;
    const auto id = account_id(field[2]);
    if (!id) continue;
    const auto second = n >= 4 ? account_id(field[3]) : std::nullopt;
    return std::pair{*id, second.value_or(0)};
  }
  return std::nullopt;
}

}  // namespace detail

/// Resolves a user as `docker run --user` and an image's `User` give it ("name", "uid",
/// "name:group", "uid:gid") through the container's own /etc/passwd and /etc/group, looked up
/// in `roots`: a root filesystem directory, or an image's layers top first (the topmost file
/// is the one the container sees; a whiteout hides the ones below). The files are read inside
/// the root (a symlink in it cannot lead to a host file), only if they are regular files, and
/// at most 1 MiB of each.
inline result<std::pair<uid_t, gid_t>> resolve_user(const std::vector<std::string>& roots,
                                                    const std::string& spec) {
  if (spec.empty()) return std::pair<uid_t, gid_t>{0, 0};
  const auto colon = spec.find(':');
  const std::string user = spec.substr(0, colon);
  const std::optional<std::string> group =
      colon == std::string::npos ? std::nullopt : std::optional(spec.substr(colon + 1));
  auto lookup = [&](const char* file, const std::string& name)
      -> result<std::optional<std::pair<std::uint32_t, std::uint32_t>>> {
    HUTCH_TRY(const auto text, detail::read_in_layers(roots, file));
    if (!text) return std::optional<std::pair<std::uint32_t, std::uint32_t>>();
    return detail::find_account(*text, name);
  };
  uid_t uid;
  gid_t gid;
  if (auto id = detail::account_id(user)) {
    uid = gid = *id;
  } else {
    HUTCH_TRY(const auto found, lookup("etc/passwd", user));
    if (!found) {
      return make_error(Step::resolve_user, ENOENT, user,
                        "no such user in the container's /etc/passwd");
    }
    uid = found->first;
    gid = found->second;
  }
  if (group) {
    if (auto id = detail::account_id(*group)) {
      gid = *id;
    } else {
      HUTCH_TRY(const auto found, lookup("etc/group", *group));
      if (!found) {
        return make_error(Step::resolve_user, ENOENT, *group,
                          "no such group in the container's /etc/group");
      }
      gid = found->first;
    }
  }
  return std::pair<uid_t, gid_t>{uid, gid};
}

}  // namespace hutch
