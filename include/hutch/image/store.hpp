// hutch — image module: the store that unpacked layers live in.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "../detail/scratch.hpp"
#include "../error.hpp"
#include "digest.hpp"

namespace hutch {

/// The content-addressed store unpacked layers live in: `DIR/layers/sha256/<diff_id>` (as
/// overlayfs lower layers; privileged), `DIR/flat/sha256/<chain id>` (a whole image applied
/// into one directory; what an unprivileged caller gets, since it cannot create overlayfs
/// whiteouts) and `DIR/archives/` (`docker save` archives, unpacked). Every entry is written
/// to a temporary directory and renamed into place, so processes sharing a store never see
/// a half-written one.
class ImageStore {
 public:
  explicit ImageStore(std::string dir) : dir_(std::move(dir)) {}
  /// $XDG_CACHE_HOME/hutch (or ~/.cache/hutch); /var/cache/hutch for root.
  static ImageStore default_store() {
    if (::geteuid() == 0) return ImageStore("/var/cache/hutch");
    const char* cache = ::getenv("XDG_CACHE_HOME");
    if (cache && *cache) return ImageStore(std::string(cache) + "/hutch");
    const char* home = ::getenv("HOME");
    return ImageStore(std::string(home && *home ? home : "/tmp") + "/.cache/hutch");
  }
  const std::string& dir() const noexcept { return dir_; }

 private:
  std::string dir_;
};

namespace detail {

/// Makes `dir` (and its parents) exist.
inline result<void> make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(image_step::unpack, ec.value(), dir, "creating a store directory");
  return success();
}

/// A store entry: `final` if it exists, else `fill(tmp)` into a new temporary directory
/// renamed to `final`. Losing a race to another process is fine: its entry is the same.
template <typename Fill>
result<std::string> store_entry(const std::string& store, const std::string& final, Fill fill) {
  if (::access(final.c_str(), F_OK) == 0) return final;
  HUTCH_TRYV(make_dirs(store + "/tmp"));
  HUTCH_TRYV(make_dirs(std::filesystem::path(final).parent_path().string()));
  std::string tmp = store + "/tmp/unpack-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) return last_error(image_step::unpack, tmp);
  ::chmod(tmp.c_str(), 0755);
  auto filled = fill(tmp);
  if (!filled) {
    (void)ScratchDir::remove_tree(tmp);
    return filled.error();
  }
  if (::rename(tmp.c_str(), final.c_str()) != 0) {
    int e = errno;
    (void)ScratchDir::remove_tree(tmp);
    if (e != EEXIST && e != ENOTEMPTY) return make_error(image_step::unpack, e, final);
  }
  return final;
}

}  // namespace detail
}  // namespace hutch
