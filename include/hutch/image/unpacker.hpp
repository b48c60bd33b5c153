// hutch — image module: unpacking one layer (a tar, any compression) into a directory,
// verifying its digests on the way.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#include "../detail/scratch.hpp"
#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "digest.hpp"
#include "store.hpp"

namespace hutch {

/// One layer of an image: its blob in the layout and the digest of its uncompressed tar.
struct ImageLayer {
  std::string digest;   // of the blob, "sha256:..."
  std::string diff_id;  // of the uncompressed tar, "sha256:..."
  std::string media_type;
  std::string blob;  // path of the blob file
  std::uint64_t size = 0;
};

/// Progress while unpacking an image: bytes of layer `layer` (of `layers`) read so far.
struct LayerProgress {
  std::size_t layer = 0, layers = 0;
  std::string digest;
  std::uint64_t done = 0, total = 0;
};
using ProgressCallback = std::function<void(const LayerProgress&)>;

namespace detail {

/// Unpacks one layer blob into `dest`, verifying on the way both the blob's digest (of the
/// bytes read) and its diff_id (of the decompressed tar) in a single pass: libarchive stage
/// one decompresses the file (any filter) as raw data, stage two reads the tar from it.
class LayerUnpacker {
 public:
  enum class Whiteouts {
    overlay,  // .wh.NAME -> a 0/0 character device, .wh..wh..opq -> overlay.opaque xattrs
    apply,    // delete what they name (flattening an image into one directory)
  };

  LayerUnpacker(const ImageLayer& layer, std::string dest, Whiteouts whiteouts,
                const ProgressCallback& progress, LayerProgress state)
      : layer_(layer),
        dest_(std::move(dest)),
        whiteouts_(whiteouts),
        progress_(progress),
        state_(std::move(state)) {}

  result<void> run() {
    fd_.reset(::open(layer_.blob.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) return last_error(image_step::unpack, layer_.blob, "opening the layer blob");
    Archive raw(::archive_read_new());
    archive_entry* raw_entry = nullptr;
    ::archive_read_support_filter_all(raw.get());
    ::archive_read_support_format_raw(raw.get());
    if (::archive_read_open(raw.get(), this, nullptr, &LayerUnpacker::read_blob, nullptr) !=
            ARCHIVE_OK ||
        ::archive_read_next_header(raw.get(), &raw_entry) != ARCHIVE_OK) {
      return archive_error(raw.get(), layer_.digest);
    }
    raw_ = raw.get();
    Archive tar(::archive_read_new());
    ::archive_read_support_format_tar(tar.get());
    ::archive_read_support_format_gnutar(tar.get());
    if (::archive_read_open(tar.get(), this, nullptr, &LayerUnpacker::read_tar, nullptr) !=
        ARCHIVE_OK) {
      return archive_error(tar.get(), layer_.digest);
    }
    Writer disk(::archive_write_disk_new());
    int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
    if (::geteuid() == 0) flags |= ARCHIVE_EXTRACT_OWNER;
    ::archive_write_disk_set_options(disk.get(), flags);

    archive_entry* entry = nullptr;
    int r;
    while ((r = ::archive_read_next_header(tar.get(), &entry)) == ARCHIVE_OK) {
      HUTCH_TRYV(extract(tar.get(), disk.get(), entry));
    }
    if (r != ARCHIVE_EOF) return archive_error(tar.get(), layer_.digest);
    if (::archive_write_close(disk.get()) != ARCHIVE_OK) {
      return archive_error(disk.get(), layer_.digest);
    }
    // The tar's end does not have to be the stream's: hash what follows (padding) too.
    char rest[65536];
    la_ssize_t n;
    while ((n = ::archive_read_data(raw_, rest, sizeof rest)) > 0) {
      diff_hash_.update(rest, static_cast<std::size_t>(n));
    }
    if (n < 0) return archive_error(raw_, layer_.digest);
    while (read_blob(nullptr, this, nullptr) > 0) {
    }
    if (std::string got = blob_hash_.digest(); got != layer_.digest) {
      return make_error(image_step::verify, EBADMSG, layer_.blob,
                        fmt::format("the blob's digest is {}, not {}", got, layer_.digest));
    }
    if (std::string got = diff_hash_.digest(); !layer_.diff_id.empty() && got != layer_.diff_id) {
      return make_error(image_step::verify, EBADMSG, layer_.blob,
                        fmt::format("the uncompressed layer's digest is {}, not the config's "
                                    "diff_id {}",
                                    got, layer_.diff_id));
    }
    return success();
  }

  /// Paths this layer wrote (flattening: an opaque directory keeps only these).
  std::set<std::string> written;

 private:
  struct ArchiveFree {
    void operator()(archive* a) const { ::archive_read_free(a); }
  };
  struct WriterFree {
    void operator()(archive* a) const { ::archive_write_free(a); }
  };
  using Archive = std::unique_ptr<archive, ArchiveFree>;
  using Writer = std::unique_ptr<archive, WriterFree>;

  Error archive_error(archive* a, const std::string& subject) const {
    const char* text = ::archive_error_string(a);
    int e = ::archive_errno(a);
    return make_error(image_step::unpack, e > 0 ? e : EINVAL, subject, text ? text : "libarchive");
  }

  static la_ssize_t read_blob(archive*, void* self_ptr, const void** buffer) {
    auto* self = static_cast<LayerUnpacker*>(self_ptr);
    ssize_t n = sys::retry(
        [&] { return ::read(self->fd_.get(), self->blob_buffer_, sizeof self->blob_buffer_); });
    if (n > 0) {
      self->blob_hash_.update(self->blob_buffer_, static_cast<std::size_t>(n));
      self->state_.done += static_cast<std::uint64_t>(n);
      if (self->progress_) self->progress_(self->state_);
    }
    if (buffer) *buffer = self->blob_buffer_;
    return n;
  }

  static la_ssize_t read_tar(archive*, void* self_ptr, const void** buffer) {
    auto* self = static_cast<LayerUnpacker*>(self_ptr);
    la_ssize_t n = ::archive_read_data(self->raw_, self->tar_buffer_, sizeof self->tar_buffer_);
    if (n > 0) self->diff_hash_.update(self->tar_buffer_, static_cast<std::size_t>(n));
    *buffer = self->tar_buffer_;
    return n;
  }

  /// The entry's path inside the layer, or an error if it would leave it.
  result<std::string> inside_path(const char* raw, const char* what) const {
    std::string name = raw ? raw : "";
    while (name.starts_with("./")) name.erase(0, 2);
    while (!name.empty() && name.back() == '/') name.pop_back();
    if (name.empty() || name == ".") return std::string();
    if (name[0] == '/') {
      return make_error(image_step::unpack, EPERM, name,
                        fmt::format("an absolute {} in layer {}", what, layer_.digest));
    }
    for (std::string_view rest = name; !rest.empty();) {
      auto slash = rest.find('/');
      if (rest.substr(0, slash) == "..") {
        return make_error(image_step::unpack, EPERM, name,
                          fmt::format("a {} with '..' in layer {}", what, layer_.digest));
      }
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
    return name;
  }

  result<void> extract(archive* tar, archive* disk, archive_entry* entry) {
    HUTCH_TRY(auto name, inside_path(::archive_entry_pathname(entry), "path"));
    if (name.empty()) return success();  // the layer's root itself
    const auto slash = name.rfind('/');
    const std::string parent = slash == std::string::npos ? "" : name.substr(0, slash);
    const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    const std::string parent_path = parent.empty() ? dest_ : dest_ + "/" + parent;
    if (base.starts_with(".wh.")) return whiteout(parent, parent_path, base.substr(4));

    const std::string path = dest_ + "/" + name;
    if (const char* link = ::archive_entry_hardlink(entry)) {
      HUTCH_TRY(auto target, inside_path(link, "hard link target"));
      if (target.empty()) return make_error(image_step::unpack, EPERM, name, "a hard link to '.'");
      ::archive_entry_set_hardlink(entry, (dest_ + "/" + target).c_str());
    }
    if (whiteouts_ == Whiteouts::apply) {
      // What a lower layer put here is replaced, never written through (it may be a hard
      // link); a later layer may also turn a directory into a file or back.
      struct stat st {};
      bool entry_is_dir = ::archive_entry_filetype(entry) == AE_IFDIR;
      if (::lstat(path.c_str(), &st) == 0 && (!S_ISDIR(st.st_mode) || !entry_is_dir)) {
        (void)detail::ScratchDir::remove_tree(path);
      }
      written.insert(name);
    }
    ::archive_entry_set_pathname(entry, path.c_str());
    int r = ::archive_write_header(disk, entry);
    if (r < ARCHIVE_WARN) return refused(disk, name);
    const void* block;
    std::size_t size;
    la_int64_t offset;
    while ((r = ::archive_read_data_block(tar, &block, &size, &offset)) == ARCHIVE_OK) {
      if (::archive_write_data_block(disk, block, size, offset) < ARCHIVE_WARN) {
        return refused(disk, name);
      }
    }
    if (r != ARCHIVE_EOF) return archive_error(tar, layer_.digest);
    if (::archive_write_finish_entry(disk) < ARCHIVE_WARN) return refused(disk, name);
    return success();
  }

  Error refused(archive* disk, const std::string& name) const {
    const char* text = ::archive_error_string(disk);
    int e = ::archive_errno(disk);
    return make_error(image_step::unpack, e > 0 ? e : EPERM, name,
                      fmt::format("{} (layer {})", text ? text : "refused", layer_.digest));
  }

  result<void> whiteout(const std::string& parent, const std::string& parent_path,
                        const std::string& hidden) {
    HUTCH_TRYV(make_dirs(parent_path));
    if (hidden == ".wh..opq") {
      if (whiteouts_ == Whiteouts::overlay) {
        // trusted.* for an overlay mounted by host root, user.* for one mounted inside a
        // user namespace (userxattr).
        for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
          if (::setxattr(parent_path.c_str(), name, "y", 1, 0) != 0) {
            return last_error(image_step::unpack, parent_path, "marking an opaque directory");
          }
        }
        return success();
      }
      // Flattening: what lower layers put here goes; what this layer wrote stays.
      std::error_code ec;
      for (auto& e : std::filesystem::directory_iterator(parent_path, ec)) {
        std::string rel = (parent.empty() ? "" : parent + "/") + e.path().filename().string();
        if (!written.contains(rel)) (void)detail::ScratchDir::remove_tree(e.path().string());
      }
      return success();
    }
    const std::string target = parent_path + "/" + hidden;
    if (hidden.empty() || hidden == "." || hidden == "..") {
      return make_error(image_step::unpack, EPERM, target, "a whiteout of nothing");
    }
    if (whiteouts_ == Whiteouts::overlay) {
      if (::mknod(target.c_str(), S_IFCHR | 0600, ::makedev(0, 0)) != 0 && errno != EEXIST) {
        return last_error(image_step::unpack, target, "creating an overlayfs whiteout");
      }
      return success();
    }
    struct stat st {};
    if (::lstat(target.c_str(), &st) == 0) (void)detail::ScratchDir::remove_tree(target);
    return success();
  }

  const ImageLayer& layer_;
  std::string dest_;
  Whiteouts whiteouts_;
  const ProgressCallback& progress_;
  LayerProgress state_;
  Fd fd_;
  archive* raw_ = nullptr;
  Sha256 blob_hash_, diff_hash_;
  char blob_buffer_[65536];
  char tar_buffer_[65536];
};

}  // namespace detail
}  // namespace hutch
