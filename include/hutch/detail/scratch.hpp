// hutch — scratch directories on the host: where an overlay's writable layer lives.
#pragma once

#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "../error.hpp"

namespace hutch::detail {

/// A scratch directory on the host, removed (with everything below it) when dropped unless
/// kept. Holds an overlay's writable layer.
class ScratchDir {
 public:
  ScratchDir() = default;
  ScratchDir(ScratchDir&& other) noexcept
      : path_(std::exchange(other.path_, {})), keep_(other.keep_) {}
  ScratchDir& operator=(ScratchDir&& other) noexcept {
    if (this != &other) {
      (void)remove();
      path_ = std::exchange(other.path_, {});
      keep_ = other.keep_;
    }
    return *this;
  }
  ~ScratchDir() { (void)remove(); }

  static result<ScratchDir> create(const std::string& parent, bool keep) {
    std::string pattern = parent + "/hutch-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return last_error(Step::prepare_rootfs, parent, "creating the overlay scratch directory");
    }
    ScratchDir s;
    s.path_ = std::move(pattern);
    s.keep_ = keep;
    return s;
  }
  const std::string& path() const noexcept { return path_; }
  /// Removes the directory now; errors are reported, not thrown.
  result<void> remove() noexcept {
    if (path_.empty() || keep_) return success();
    std::string path = std::exchange(path_, {});
    // Usually empty: the writable layer was a tmpfs in the container's mount namespace.
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return success();
    return remove_tree(path);
  }

  /// Removes `path` and everything below it. overlayfs leaves work/work with mode 000, so
  /// every directory is first made ours to empty.
  static result<void> remove_tree(const std::string& path) noexcept {
    std::error_code ec;
    ::chmod(path.c_str(), 0700);
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
    ec.clear();
    std::filesystem::remove_all(path, ec);
    if (ec) return make_error(Step::remove_scratch, ec.value(), path);
    return success();
  }

 private:
  std::string path_;
  bool keep_ = false;
};

/// The default place for scratch directories: $XDG_RUNTIME_DIR if usable, else /dev/shm if
/// it is a usable tmpfs, else /tmp. The directory is only a mount point (the writable layer
/// is a tmpfs mounted on it inside the container), and on a tmpfs creating and removing it
/// costs no disk I/O: on a disk mounted with `discard` the rmdir alone waits for the device.
inline std::string default_scratch_parent() {
  const char* runtime = ::getenv("XDG_RUNTIME_DIR");
  if (runtime && *runtime && ::access(runtime, W_OK | X_OK) == 0) return runtime;
  static const bool shm = [] {
    struct statfs info {};
    return ::statfs("/dev/shm", &info) == 0 && info.f_type == TMPFS_MAGIC &&
           ::access("/dev/shm", W_OK | X_OK) == 0;
  }();
  return shm ? "/dev/shm" : "/tmp";
}

}  // namespace hutch::detail
