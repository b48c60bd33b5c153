// hutch — image module: one layer's tar entries written into a Tree (image/tree.hpp), never
// through a symlink: files, directories, links, devices, overlayfs whiteouts and opaque
// directories, each by name in a directory descriptor that was walked to without following
// any link.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "digest.hpp"
#include "tree.hpp"

namespace hutch {

/// Bounds on what unpacking an image may write: a stream of zeros compresses a thousandfold,
/// so the compressed size says nothing. Past either bound the unpack fails and leaves nothing.
struct UnpackLimits {
  std::uint64_t max_bytes = std::uint64_t{32} << 30;  // every file's size, summed
  std::uint64_t max_entries = std::uint64_t{1} << 22;
};

namespace detail {

/// One image's UnpackLimits as they are used up, by one layer at a time or by several
/// unpacking at once (a pull's concurrent layers).
class UnpackBudget {
 public:
  explicit UnpackBudget(UnpackLimits left) : left_(left) {}
  bool take_entry() {
    std::lock_guard lock(mutex_);
    if (left_.max_entries == 0) return false;
    --left_.max_entries;
    return true;
  }
  bool take_bytes(std::uint64_t n) {
    std::lock_guard lock(mutex_);
    if (n > left_.max_bytes) return false;
    left_.max_bytes -= n;
    return true;
  }

 private:
  std::mutex mutex_;
  UnpackLimits left_;
};

}  // namespace detail

namespace detail {

/// How a layer's whiteouts are written.
enum class Whiteouts {
  overlay,  // .wh.NAME -> a 0/0 character device, .wh..wh..opq -> overlay.opaque xattrs
  apply,    // delete what they name (flattening an image into one directory)
};

/// Whether an image may set this extended attribute: file capabilities and user.* names,
/// but never overlayfs's own (trusted.overlay.*, user.overlay.*: an image that set them could
/// fake whiteouts, opaque directories or redirects to other layers' files).
inline bool allowed_xattr(std::string_view name) {
  if (name == "security.capability") return true;
  return name.starts_with("user.") && !name.starts_with("user.overlay.");
}

/// Writes one layer's entries into a tree. Directories' modes, owners and times are set once
/// the layer is done (a directory the image makes read-only must still take its entries).
class LayerWriter {
 public:
  LayerWriter(Tree& tree, Whiteouts whiteouts, UnpackBudget& budget, std::string layer)
      : tree_(tree),
        whiteouts_(whiteouts),
        budget_(budget),
        layer_(std::move(layer)),
        privileged_(::geteuid() == 0) {
    if (whiteouts_ == Whiteouts::apply) {
      tree_.set_replaceable([this](const std::string& path) { return !written_.contains(path); });
    }
  }

  /// One entry; its data read from `tar`.
  result<void> write(archive* tar, archive_entry* entry) {
    if (!budget_.take_entry()) return refuse("", "the image has too many entries");
    HUTCH_TRY(const std::vector<std::string> parts,
              image_path(::archive_entry_pathname(entry) ? ::archive_entry_pathname(entry) : "",
                         "an entry's path"));
    if (parts.empty()) return success();  // the layer's root itself
    const std::string& name = parts.back();
    if (name.starts_with(".wh.")) return whiteout(parts);
    if (whiteouts_ == Whiteouts::apply) written_.insert(join(parts, parts.size()));
    HUTCH_TRY(const int dir, tree_.directory(parts, parts.size() - 1, true));
    const mode_t type = ::archive_entry_filetype(entry);
    if (type == AE_IFDIR) return directory(dir, parts, entry);
    HUTCH_TRYV(clear(dir, parts));
    if (const char* link = ::archive_entry_hardlink(entry)) {
      return hard_link(dir, parts, link);
    }
    switch (type) {
      case AE_IFREG:
        return regular(tar, dir, parts, entry);
      case AE_IFLNK:
        return symlink(dir, parts, entry);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        return node(dir, parts, entry, type);
      default:
        return success();  // sockets and the like: nothing to make
    }
  }

  /// Applies the directories' metadata, deepest first.
  result<void> finish() {
    for (auto it = directories_.rbegin(); it != directories_.rend(); ++it) {
      HUTCH_TRY(const int fd, tree_.directory(it->parts, it->parts.size(), false));
      if (fd < 0) continue;  // removed by a later entry of the layer
      HUTCH_TRYV(owner_and_mode(fd, it->parts, it->uid, it->gid, it->mode));
      const timespec times[2] = {it->mtime, it->mtime};
      ::futimens(fd, times);
    }
    tree_.forget();
    return success();
  }

 private:
  struct PendingDirectory {
    std::vector<std::string> parts;
    uid_t uid;
    gid_t gid;
    mode_t mode;
    timespec mtime;
  };

  Error refuse(const std::string& path, const std::string& why, int error = EPERM) const {
    return make_error(image_step::unpack, error, path, fmt::format("{} (layer {})", why, layer_));
  }

  /// What is in the way of a new entry (a lower layer's, or an earlier entry's) is removed,
  /// never written through (it may be a hard link to another file, or a symlink).
  result<void> clear(int dir, const std::vector<std::string>& parts) {
    // `dir` is the walk's current directory: removing an entry in it leaves it open.
    const int e = remove_at(dir, parts.back().c_str());
    if (e) return make_error(image_step::unpack, e, join(parts, parts.size()));
    return success();
  }

  result<void> owner_and_mode(int fd, const std::vector<std::string>& parts, uid_t uid, gid_t gid,
                              mode_t mode) {
    // chown first: it clears setuid and setgid, which the mode then sets again.
    if (privileged_ && ::fchown(fd, uid, gid) != 0) {
      return last_error(image_step::unpack, join(parts, parts.size()), "setting the owner");
    }
    if (::fchmod(fd, mode & 07777) != 0) {
      return last_error(image_step::unpack, join(parts, parts.size()), "setting the mode");
    }
    return success();
  }

  result<void> xattrs(int fd, archive_entry* entry, const std::vector<std::string>& parts) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    ::archive_entry_xattr_reset(entry);
    while (::archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      if (!name || !allowed_xattr(name)) continue;
      if (::fsetxattr(fd, name, value, size, 0) != 0 && privileged_ && errno != ENOTSUP) {
        return last_error(image_step::unpack, join(parts, parts.size()), name);
      }
    }
    return success();
  }

  result<void> directory(int dir, const std::vector<std::string>& parts, archive_entry* entry) {
    const char* name = parts.back().c_str();
    struct stat st {};
    if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
      HUTCH_TRYV(clear(dir, parts));
    }
    if (::mkdirat(dir, name, 0755) != 0 && errno != EEXIST) {
      return last_error(image_step::unpack, join(parts, parts.size()), "creating a directory");
    }
    HUTCH_TRY(const int fd, tree_.directory(parts, parts.size(), false));
    if (fd < 0) return refuse(join(parts, parts.size()), "a directory vanished", ENOENT);
    HUTCH_TRYV(xattrs(fd, entry, parts));
    directories_.push_back({parts,
                            static_cast<uid_t>(::archive_entry_uid(entry)),
                            static_cast<gid_t>(::archive_entry_gid(entry)),
                            static_cast<mode_t>(::archive_entry_perm(entry)),
                            {::archive_entry_mtime(entry), ::archive_entry_mtime_nsec(entry)}});
    return success();
  }

  result<void> regular(archive* tar, int dir, const std::vector<std::string>& parts,
                       archive_entry* entry) {
    const std::string path = join(parts, parts.size());
    const la_int64_t size = ::archive_entry_size(entry);
    if (size < 0 || !budget_.take_bytes(static_cast<std::uint64_t>(size))) {
      return refuse(path, "the image unpacks to more than its limit", EFBIG);
    }
    Fd file(::openat(dir, parts.back().c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file) return last_error(image_step::unpack, path, "creating a file");
    const void* block = nullptr;
    std::size_t length = 0;
    la_int64_t offset = 0;
    int r;
    while ((r = ::archive_read_data_block(tar, &block, &length, &offset)) == ARCHIVE_OK) {
      if (offset < 0 ||
          static_cast<std::uint64_t>(offset) + length > static_cast<std::uint64_t>(size)) {
        return refuse(path, "a file's data runs past its size");
      }
      for (std::size_t done = 0; done < length;) {
        ssize_t n = sys::retry([&] {
          return ::pwrite(file.get(), static_cast<const char*>(block) + done, length - done,
                          offset + static_cast<la_int64_t>(done));
        });
        if (n <= 0) return last_error(image_step::unpack, path, "writing a file");
        done += static_cast<std::size_t>(n);
      }
    }
    if (r != ARCHIVE_EOF) {
      const char* text = ::archive_error_string(tar);
      return refuse(path, text ? text : "the layer's data ends early", EBADMSG);
    }
    if (::ftruncate(file.get(), size) != 0) return last_error(image_step::unpack, path);
    HUTCH_TRYV(owner_and_mode(file.get(), parts, static_cast<uid_t>(::archive_entry_uid(entry)),
                              static_cast<gid_t>(::archive_entry_gid(entry)),
                              static_cast<mode_t>(::archive_entry_perm(entry))));
    HUTCH_TRYV(xattrs(file.get(), entry, parts));
    const timespec times[2] = {{::archive_entry_mtime(entry), ::archive_entry_mtime_nsec(entry)},
                               {::archive_entry_mtime(entry), ::archive_entry_mtime_nsec(entry)}};
    ::futimens(file.get(), times);
    return success();
  }

  result<void> symlink(int dir, const std::vector<std::string>& parts, archive_entry* entry) {
    const char* target = ::archive_entry_symlink(entry);
    const std::string path = join(parts, parts.size());
    if (!target || !*target || std::string_view(target).size() > max_image_path) {
      return refuse(path, "a symlink without a target");
    }
    // The link is made, never followed: it may point anywhere, as in any root filesystem;
    // inside a container it resolves in the container's root.
    if (::symlinkat(target, dir, parts.back().c_str()) != 0) {
      return last_error(image_step::unpack, path, "creating a symlink");
    }
    if (privileged_) {
      ::fchownat(dir, parts.back().c_str(), static_cast<uid_t>(::archive_entry_uid(entry)),
                 static_cast<gid_t>(::archive_entry_gid(entry)), AT_SYMLINK_NOFOLLOW);
    }
    const timespec times[2] = {{::archive_entry_mtime(entry), 0},
                               {::archive_entry_mtime(entry), 0}};
    ::utimensat(dir, parts.back().c_str(), times, AT_SYMLINK_NOFOLLOW);
    return success();
  }

  /// A hard link to an earlier entry (or, flattened, a lower layer's file): both ends walked
  /// inside the tree; the target's last component is never followed (linkat without
  /// AT_SYMLINK_FOLLOW links a symlink itself).
  result<void> hard_link(int dir, const std::vector<std::string>& parts, const char* link) {
    HUTCH_TRY(const std::vector<std::string> target, image_path(link, "a hard link's target"));
    const std::string path = join(parts, parts.size());
    if (target.empty()) return refuse(path, "a hard link to the layer's root");
    // The destination's directory must stay open while the target's is walked (the walk
    // keeps one directory at a time).
    Fd destination(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
    if (!destination) return last_error(image_step::unpack, path);
    HUTCH_TRY(const int from, tree_.directory(target, target.size() - 1, false));
    if (from < 0) return refuse(path, "a hard link to a missing file", ENOENT);
    if (::linkat(from, target.back().c_str(), destination.get(), parts.back().c_str(), 0) != 0) {
      return last_error(image_step::unpack, path, "creating a hard link");
    }
    return success();
  }

  /// Device nodes and FIFOs. Without privilege a device cannot be made (and could not be
  /// opened in a container anyway): it is left out.
  result<void> node(int dir, const std::vector<std::string>& parts, archive_entry* entry,
                    mode_t type) {
    if (type != AE_IFIFO && !privileged_) return success();
    const mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
    const dev_t device = type == AE_IFIFO ? 0
                                          : ::makedev(::archive_entry_rdevmajor(entry),
                                                      ::archive_entry_rdevminor(entry));
    if (::mknodat(dir, parts.back().c_str(), kind | 0600, device) != 0) {
      return last_error(image_step::unpack, join(parts, parts.size()), "creating a device node");
    }
    if (privileged_) {
      ::fchownat(dir, parts.back().c_str(), static_cast<uid_t>(::archive_entry_uid(entry)),
                 static_cast<gid_t>(::archive_entry_gid(entry)), AT_SYMLINK_NOFOLLOW);
    }
    // Its mode, on the node just made (a name this walk made: not a link).
    ::fchmodat(dir, parts.back().c_str(), ::archive_entry_perm(entry) & 07777, 0);
    return success();
  }

  /// `.wh.NAME` and `.wh..wh..opq`, in the directory they sit in, which must be a real
  /// directory of the tree (never a symlink: the whiteout would delete what it points to).
  result<void> whiteout(const std::vector<std::string>& parts) {
    const std::string hidden = parts.back().substr(4);
    const std::string path = join(parts, parts.size());
    if (hidden.starts_with(".wh.") && hidden != ".wh..opq") return success();  // aufs metadata
    if (hidden.empty()) return refuse(path, "a whiteout of nothing");
    HUTCH_TRY(const int dir, tree_.directory(parts, parts.size() - 1, true));
    if (hidden == ".wh..opq") return opaque(dir, parts);
    if (whiteouts_ == Whiteouts::overlay) {
      if (::mknodat(dir, hidden.c_str(), S_IFCHR | 0600, ::makedev(0, 0)) != 0 && errno != EEXIST) {
        return last_error(image_step::unpack, path, "creating an overlayfs whiteout");
      }
      return success();
    }
    const int e = remove_at(dir, hidden.c_str());
    if (e) return make_error(image_step::unpack, e, path, "applying a whiteout");
    return success();
  }

  result<void> opaque(int dir, const std::vector<std::string>& parts) {
    const std::string where = join(parts, parts.size() - 1);
    if (whiteouts_ == Whiteouts::overlay) {
      // trusted.* for an overlay mounted by host root, user.* for one mounted inside a user
      // namespace (userxattr).
      for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
        if (::fsetxattr(dir, name, "y", 1, 0) != 0) {
          return last_error(image_step::unpack, where.empty() ? "." : where,
                            "marking an opaque directory");
        }
      }
      return success();
    }
    // Flattening: what lower layers put here goes; what this layer wrote stays.
    std::vector<std::string> names;
    {
      Fd copy(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      DIR* d = copy ? ::fdopendir(copy.release()) : nullptr;
      if (!d) return last_error(image_step::unpack, where, "reading an opaque directory");
      while (dirent* e = ::readdir(d)) {
        const std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
      }
      ::closedir(d);
    }
    for (const auto& n : names) {
      const std::string rel = where.empty() ? n : where + "/" + n;
      if (written_.contains(rel)) continue;
      if (int e = remove_at(dir, n.c_str())) return make_error(image_step::unpack, e, rel);
    }
    return success();
  }

  Tree& tree_;
  Whiteouts whiteouts_;
  UnpackBudget& budget_;
  std::string layer_;
  bool privileged_;
  std::set<std::string> written_;  // flattening: the paths this layer wrote
  std::vector<PendingDirectory> directories_;
};

}  // namespace detail
}  // namespace hutch
