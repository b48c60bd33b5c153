// hutch — image module: the store that unpacked layers live in, private to its owner.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

#include "../detail/private_dir.hpp"
#include "../detail/scratch.hpp"
#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "digest.hpp"
#include "entries.hpp"
#include "tree.hpp"

namespace hutch {

/// The content-addressed store unpacked layers live in: `DIR/layers/sha256/<diff_id>` (as
/// overlayfs lower layers; privileged), `DIR/flat/sha256/<chain id>` (a whole image applied
/// into one directory; what an unprivileged caller gets, since it cannot create overlayfs
/// whiteouts), `DIR/archives/` (`docker save` archives, unpacked), and for pulled images
/// `DIR/blobs/sha256/<digest>` (their manifests and configs: layers are unpacked as they
/// stream, never kept) with `DIR/refs/sha256/<sha256 of the reference>` (which manifest a
/// reference such as "docker.io/library/busybox:latest" was pulled as). Every entry is written
/// to a temporary directory and renamed into place, so processes sharing a store never see
/// a half-written one.
///
/// The store is its owner's alone: layers keep an image's setuid binaries and device nodes,
/// which any user who could reach them could run or open outside a container. Its directory
/// must belong to the caller (or root) and is kept at mode 0700 (a wider mode is repaired when
/// the store is used; a directory of another user, or a symlink, is refused), as Docker keeps
/// /var/lib/docker. An entry another user planted is refused, never used.
class ImageStore {
 public:
  explicit ImageStore(std::string dir, UnpackLimits limits = {})
      : dir_(std::move(dir)), limits_(limits) {}
  /// $XDG_CACHE_HOME/hutch, else ~/.cache/hutch (the home directory from $HOME or, without
  /// it, the password database: never a shared directory); /var/cache/hutch for root.
  static result<ImageStore> default_store() {
    if (::geteuid() == 0) return ImageStore("/var/cache/hutch");
    const char* cache = ::getenv("XDG_CACHE_HOME");
    if (cache && *cache == '/') return ImageStore(std::string(cache) + "/hutch");
    const std::string home = detail::home_directory();
    if (home.empty()) {
      return make_error(image_step::store, ENOENT, "HOME",
                        "no home directory for the image store: set HOME or XDG_CACHE_HOME, or "
                        "name a store");
    }
    return ImageStore(home + "/.cache/hutch");
  }
  const std::string& dir() const noexcept { return dir_; }
  /// Bounds on what unpacking one image may write (UnpackLimits).
  const UnpackLimits& limits() const noexcept { return limits_; }

 private:
  std::string dir_;
  UnpackLimits limits_;
};

namespace detail {

/// Makes the store's directories exist, the store's own private: its root (and the parent
/// directories it needs, as mkdir -p would, mode 0700), then `sub` below it.
inline result<void> open_store(const ImageStore& store, std::string_view sub = {}) {
  const std::string& root = store.dir();
  if (root.empty() || root[0] != '/') {
    return make_error(image_step::store, EINVAL, root, "the store's path must be absolute");
  }
  for (std::size_t slash = root.find('/', 1); slash != std::string::npos;
       slash = root.find('/', slash + 1)) {
    ::mkdir(root.substr(0, slash).c_str(), 0700);  // parents: what exists is left as it is
  }
  HUTCH_TRYV(private_directory(root, image_step::store, {.create = true, .repair = true}));
  std::string path = root;
  for (std::string_view rest = sub; !rest.empty();) {
    const auto slash = rest.find('/');
    path.append("/").append(rest.substr(0, slash));
    HUTCH_TRYV(private_directory(path, image_step::store, {.create = true, .repair = true}));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return success();
}

/// An existing entry is used only if it is a directory of the caller's (or root's).
inline result<bool> entry_exists(const std::string& entry) {
  struct stat st {};
  if (::lstat(entry.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return last_error(image_step::store, entry);
  }
  if (!S_ISDIR(st.st_mode) || (st.st_uid != ::geteuid() && st.st_uid != 0)) {
    return make_error(image_step::store, EPERM, entry,
                      fmt::format("a store entry that is not a directory of the caller's "
                                  "(uid {}, mode {}): refused",
                                  st.st_uid, mode_text(st.st_mode)));
  }
  return true;
}

/// Removes the temporary directories of unpackers that died (killed mid-way, e.g. on a huge
/// layer): each live one holds a lock on its directory, so one whose lock can be taken, and
/// that has not changed for a minute, is abandoned.
inline void reclaim_unpacks(const std::string& tmp) {
  DIR* d = ::opendir(tmp.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (!name.starts_with("unpack-")) continue;
    Fd dir(::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!dir || ::fstat(dir.get(), &st) != 0 || st.st_uid != ::geteuid() || !older_than(st, 60) ||
        ::flock(dir.get(), LOCK_EX | LOCK_NB) != 0) {
      continue;
    }
    remove_at(::dirfd(d), e->d_name);
  }
  ::closedir(d);
}

/// A store entry: `final` (in `sub`, e.g. "layers/sha256") if it exists, else `fill(tmp)`
/// into a new temporary directory renamed to `final`. The temporary directory is locked while
/// it fills; whatever fails, nothing is left. Losing a race to another process is fine: its
/// entry is the same.
template <typename Fill>
result<std::string> store_entry(const ImageStore& store, std::string_view sub,
                                const std::string& name, Fill fill) {
  const std::string final = store.dir() + "/" + std::string(sub) + "/" + name;
  HUTCH_TRY(const bool exists, entry_exists(final));
  if (exists) return final;
  HUTCH_TRYV(open_store(store, "tmp"));
  HUTCH_TRYV(open_store(store, sub));
  reclaim_unpacks(store.dir() + "/tmp");
  std::string tmp = store.dir() + "/tmp/unpack-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) return last_error(image_step::store, tmp);
  Fd lock(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0 || ::fchmod(lock.get(), 0755) != 0) {
    const Error e = last_error(image_step::store, tmp);
    (void)ScratchDir::remove_tree(tmp);
    return e;
  }
  auto filled = fill(tmp);
  if (!filled) {
    (void)ScratchDir::remove_tree(tmp);
    return filled.error();
  }
  if (::rename(tmp.c_str(), final.c_str()) != 0) {
    int e = errno;
    (void)ScratchDir::remove_tree(tmp);
    if (e != EEXIST && e != ENOTEMPTY) return make_error(image_step::store, e, final);
    HUTCH_TRY(const bool raced, entry_exists(final));
    if (!raced) return make_error(image_step::store, e, final);
  }
  return final;
}

/// Writes `text` to `dir/name` whole or not at all (a temporary file renamed into place).
inline result<void> store_file(const std::string& dir, const std::string& name,
                               std::string_view text) {
  std::string tmp = dir + "/." + name + ".XXXXXX";
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) return last_error(image_step::store, tmp);
  if (!sys::write_all(fd.get(), text.data(), text.size())) {
    const Error e = last_error(image_step::store, tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::fchmod(fd.get(), 0644) != 0 || ::rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) {
    const Error e = last_error(image_step::store, dir + "/" + name);
    ::unlink(tmp.c_str());
    return e;
  }
  return success();
}

/// A pulled image's manifest or config, kept by its digest (verified by the caller).
inline result<void> store_blob(const ImageStore& store, const std::string& digest,
                               std::string_view text) {
  HUTCH_TRYV(open_store(store, "blobs/sha256"));
  return store_file(store.dir() + "/blobs/sha256", hex_of(digest), text);
}

/// The file that says which manifest `reference` was pulled as.
inline std::string ref_file(const ImageStore& store, const std::string& reference) {
  return store.dir() + "/refs/sha256/" + hex_of(Sha256::of(reference));
}

/// Records that `reference` names the manifest `digest` (already in the store's blobs).
inline result<void> store_ref(const ImageStore& store, const std::string& reference,
                              const std::string& digest) {
  HUTCH_TRYV(open_store(store, "refs/sha256"));
  return store_file(store.dir() + "/refs/sha256", hex_of(Sha256::of(reference)),
                    digest + " " + reference + "\n");
}

}  // namespace detail
}  // namespace hutch
