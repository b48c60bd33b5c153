// hutch — image module: a directory tree written from hostile input. Every path an image
// names is split into components and walked from the tree's root one directory descriptor at
// a time (openat with O_NOFOLLOW | O_DIRECTORY): no symlink, no "..", no absolute path can
// lead a write, a whiteout, an opaque marker or a removal out of the tree.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/scratch.hpp"
#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "digest.hpp"

namespace hutch::detail {

inline constexpr std::size_t max_image_path = 4096;

/// A path from an image, as its components: relative, no "..", no NUL; "." and empty
/// components dropped (so "./a//b/" is {"a", "b"}); the root itself is no components.
inline result<std::vector<std::string>> image_path(std::string_view path, std::string_view what) {
  auto refuse = [&](const char* why) {
    return make_error(image_step::unpack, EPERM, std::string(path.substr(0, 256)),
                      fmt::format("{} {}", what, why));
  };
  if (path.size() > max_image_path) return refuse("is longer than PATH_MAX");
  if (path.find('\0') != std::string_view::npos) return refuse("has a NUL byte");
  if (!path.empty() && path[0] == '/') return refuse("is absolute");
  std::vector<std::string> parts;
  for (std::string_view rest = path; !rest.empty();) {
    const auto slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part == "..") return refuse("has '..'");
    if (part.size() > 255) return refuse("has a component longer than NAME_MAX");
    if (!part.empty() && part != ".") parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return parts;
}

inline std::string join(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count && i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

/// A directory tree written from an image's entries.
class Tree {
 public:
  /// Decides, in a flattened image, whether a non-directory met on the way to an entry may be
  /// replaced by a directory: what a lower layer left there (overlayfs would show this
  /// layer's directory over it), not what this layer wrote itself.
  using Replaceable = std::function<bool(const std::string& path)>;

  static result<Tree> open(const std::string& dir) {
    Tree t;
    t.root_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!t.root_) return last_error(image_step::unpack, dir, "opening the layer directory");
    return t;
  }

  void set_replaceable(Replaceable r) { replaceable_ = std::move(r); }
  int root() const noexcept { return root_.get(); }

  /// The directory of the first `count` components, walked from the root; with `create`,
  /// missing ones are made (mode 0755). A descriptor readable as a directory (for fsetxattr,
  /// fchown, getdents); -1 in `fd` with ENOENT when missing and not created.
  result<int> directory(const std::vector<std::string>& parts, std::size_t count, bool create) {
    if (count == 0) return root_.get();
    const std::string key = join(parts, count);
    if (cached_ && cached_path_ == key) return cached_.get();
    Fd current;
    int at = root_.get();
    for (std::size_t i = 0; i < count; ++i) {
      Fd next(::openat(at, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next && (errno == ENOTDIR || errno == ELOOP)) {
        HUTCH_TRYV(replace_with_directory(at, parts, i));
        next.reset(::openat(at, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      } else if (!next && errno == ENOENT && create) {
        if (::mkdirat(at, parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
          return last_error(image_step::unpack, join(parts, i + 1), "creating a directory");
        }
        next.reset(::openat(at, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      if (!next) {
        if (errno == ENOENT && !create) return -1;
        return last_error(image_step::unpack, join(parts, i + 1), "opening a directory");
      }
      current = std::move(next);
      at = current.get();
    }
    cached_ = std::move(current);
    cached_path_ = key;
    return cached_.get();
  }

  /// Forgets the cached directory (after a removal that may have taken it).
  void forget() noexcept {
    cached_.reset();
    cached_path_.clear();
  }

 private:
  /// A non-directory on the way: refused (a symlink this layer wrote would lead the write
  /// elsewhere), or, where Replaceable allows, removed and made a directory.
  result<void> replace_with_directory(int at, const std::vector<std::string>& parts,
                                      std::size_t i) {
    const std::string path = join(parts, i + 1);
    struct stat st {};
    const bool link =
        ::fstatat(at, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
    if (!replaceable_ || !replaceable_(path)) {
      return make_error(image_step::unpack, link ? ELOOP : ENOTDIR, path,
                        link ? "an entry's path goes through a symlink" : "not a directory");
    }
    if (int e = remove_at(at, parts[i].c_str())) return make_error(image_step::unpack, e, path);
    if (::mkdirat(at, parts[i].c_str(), 0755) != 0) {
      return last_error(image_step::unpack, path, "creating a directory");
    }
    return success();
  }

  Fd root_;
  Fd cached_;
  std::string cached_path_;
  Replaceable replaceable_;
};

}  // namespace hutch::detail
