// hutch — image module: unpacking one layer (a tar, any compression) into a directory,
// verifying its digests on the way; the entries are written by image/entries.hpp, never
// through a symlink.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "digest.hpp"
#include "entries.hpp"
#include "tree.hpp"

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
  bool cached = false;  // already in the store: nothing read
};
using ProgressCallback = std::function<void(const LayerProgress&)>;

namespace detail {

/// OCI's ChainID of a stack of layers (bottom first).
inline std::string chain_id(const std::vector<ImageLayer>& layers) {
  std::string chain;
  for (const ImageLayer& l : layers) {
    chain = chain.empty() ? l.diff_id : Sha256::of(chain + " " + l.diff_id);
  }
  return chain;
}

/// Unpacks one layer blob into `tree`, verifying on the way both the blob's digest (of the
/// bytes read) and its diff_id (of the decompressed tar) in a single pass: libarchive stage
/// one decompresses the file (any filter) as raw data, stage two reads the tar from it.
class LayerUnpacker {
 public:
  LayerUnpacker(const ImageLayer& layer, Tree& tree, Whiteouts whiteouts, UnpackBudget& budget,
                const ProgressCallback& progress, LayerProgress state)
      : layer_(layer),
        writer_(tree, whiteouts, budget, layer.digest.empty() ? layer.blob : layer.digest),
        progress_(progress),
        state_(std::move(state)) {}

  result<void> run() {
    fd_.reset(::open(layer_.blob.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd_) return last_error(image_step::unpack, layer_.blob, "opening the layer blob");
    // Only a regular file, read to the size it has now: never a FIFO or a device that would
    // feed the digest forever.
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return last_error(image_step::unpack, layer_.blob);
    if (!S_ISREG(st.st_mode)) {
      return make_error(image_step::unpack, EINVAL, layer_.blob, "the layer blob is not a file");
    }
    remaining_ = static_cast<std::uint64_t>(st.st_size);
    return unpack();
  }

  /// The layer's blob read from `source` (a pipe or socket its download feeds), exactly the
  /// descriptor's size of it: a stream that ends early fails the tar or the digest.
  result<void> run(Fd source) {
    fd_ = std::move(source);
    remaining_ = layer_.size;
    return unpack();
  }

 private:
  result<void> unpack() {
    Archive raw(::archive_read_new());
    archive_entry* raw_entry = nullptr;
    ::archive_read_support_filter_all(raw.get());
    ::archive_read_support_format_raw(raw.get());
    if (::archive_read_open(raw.get(), this, nullptr, &LayerUnpacker::read_blob, nullptr) !=
            ARCHIVE_OK ||
        ::archive_read_next_header(raw.get(), &raw_entry) != ARCHIVE_OK) {
      return archive_error(raw.get());
    }
    raw_ = raw.get();
    Archive tar(::archive_read_new());
    ::archive_read_support_format_tar(tar.get());
    ::archive_read_support_format_gnutar(tar.get());
    if (::archive_read_open(tar.get(), this, nullptr, &LayerUnpacker::read_tar, nullptr) !=
        ARCHIVE_OK) {
      return archive_error(tar.get());
    }
    archive_entry* entry = nullptr;
    int r;
    while ((r = ::archive_read_next_header(tar.get(), &entry)) == ARCHIVE_OK) {
      HUTCH_TRYV(writer_.write(tar.get(), entry));
    }
    if (r != ARCHIVE_EOF) return archive_error(tar.get());
    HUTCH_TRYV(writer_.finish());
    return verify();
  }

  /// The blob's file, or its digest when it comes from a stream.
  const std::string& where() const { return layer_.blob.empty() ? layer_.digest : layer_.blob; }

  struct ArchiveFree {
    void operator()(archive* a) const { ::archive_read_free(a); }
  };
  using Archive = std::unique_ptr<archive, ArchiveFree>;

  Error archive_error(archive* a) const {
    const char* text = ::archive_error_string(a);
    int e = ::archive_errno(a);
    return make_error(image_step::unpack, e > 0 ? e : EINVAL, layer_.digest,
                      text ? text : "libarchive");
  }

  /// The rest of the stream (the tar's end need not be the stream's: padding is hashed too),
  /// then both digests.
  result<void> verify() {
    char rest[65536];
    la_ssize_t n;
    while ((n = ::archive_read_data(raw_, rest, sizeof rest)) > 0) {
      diff_hash_.update(rest, static_cast<std::size_t>(n));
    }
    if (n < 0) return archive_error(raw_);
    while (read_blob(nullptr, this, nullptr) > 0) {
    }
    if (std::string got = blob_hash_.digest(); got != layer_.digest) {
      return make_error(image_step::verify, EBADMSG, where(),
                        fmt::format("the blob's digest is {}, not {}", got, layer_.digest));
    }
    if (std::string got = diff_hash_.digest(); !layer_.diff_id.empty() && got != layer_.diff_id) {
      return make_error(image_step::verify, EBADMSG, where(),
                        fmt::format("the uncompressed layer's digest is {}, not the config's "
                                    "diff_id {}",
                                    got, layer_.diff_id));
    }
    return success();
  }

  static la_ssize_t read_blob(archive*, void* self_ptr, const void** buffer) {
    auto* self = static_cast<LayerUnpacker*>(self_ptr);
    const std::size_t want =
        self->remaining_ < sizeof self->blob_buffer_ ? self->remaining_ : sizeof self->blob_buffer_;
    ssize_t n = want == 0
                    ? 0
                    : sys::retry([&] { return ::read(self->fd_.get(), self->blob_buffer_, want); });
    if (n > 0) {
      self->remaining_ -= static_cast<std::uint64_t>(n);
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

  const ImageLayer& layer_;
  LayerWriter writer_;
  ProgressCallback progress_;  // a copy: the caller's may be a temporary
  LayerProgress state_;
  Fd fd_;
  std::uint64_t remaining_ = 0;
  archive* raw_ = nullptr;
  Sha256 blob_hash_, diff_hash_;
  char blob_buffer_[65536];
  char tar_buffer_[65536];
};

}  // namespace detail
}  // namespace hutch
