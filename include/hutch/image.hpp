// hutch — OCI images: run what `docker run IMAGE` runs, from an OCI image layout or a
// `docker save` archive, with no daemon.
//
// The optional `hutch::image` module: link the `hutch::image` CMake target (it brings
// nlohmann/json, libarchive and OpenSSL's libcrypto for SHA-256).
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "container.hpp"
#include "error.hpp"
#include "fd.hpp"
#include "rootfs.hpp"

namespace hutch {

/// What an image's config says about running it (OCI image spec, "config").
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=VALUE"
  std::string working_dir;
  std::string user;                        // "name", "uid", "name:group" or "uid:gid"; empty: root
  std::vector<std::string> exposed_ports;  // noted only: hutch sets up no port forwarding
  std::string stop_signal;                 // e.g. "SIGQUIT"; empty: SIGTERM
  std::string os, architecture;
};

/// One layer of an image: its blob in the layout and the digest of its uncompressed tar.
struct ImageLayer {
  std::string digest;   // of the blob, "sha256:..."
  std::string diff_id;  // of the uncompressed tar, "sha256:..."
  std::string media_type;
  std::string blob;  // path of the blob file
  std::uint64_t size = 0;
};

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

/// SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(::EVP_MD_CTX_new()) { ::EVP_DigestInit_ex(ctx_.get(), ::EVP_sha256(), nullptr); }
  void update(const void* data, std::size_t size) { ::EVP_DigestUpdate(ctx_.get(), data, size); }
  /// "sha256:<64 hex digits>"
  std::string digest() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned size = 0;
    ::EVP_DigestFinal_ex(ctx_.get(), out, &size);
    std::string hex = "sha256:";
    for (unsigned i = 0; i < size; ++i) hex += fmt::format("{:02x}", out[i]);
    return hex;
  }
  static std::string of(std::string_view data) {
    Sha256 h;
    h.update(data.data(), data.size());
    return h.digest();
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { ::EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

/// "sha256:<64 lowercase hex>" and nothing else: a digest also names a file.
inline bool valid_digest(std::string_view d) {
  if (!d.starts_with("sha256:") || d.size() != 7 + 64) return false;
  return d.substr(7).find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

inline std::string hex_of(std::string_view digest) {
  return std::string(digest.substr(7));
}

inline result<std::string> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Step::image_open, errno ? errno : ENOENT, path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline result<nlohmann::json> parse_json(const std::string& text, const std::string& what) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return make_error(Step::image_open, EINVAL, what, "not a JSON object");
  }
  return json;
}

/// The host's architecture in OCI's words.
inline std::string host_architecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

inline std::vector<std::string> strings_of(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array()) {
    for (const auto& v : j[key]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

inline std::string string_of(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

/// Makes `dir` (and its parents) exist.
inline result<void> make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Step::image_unpack, ec.value(), dir, "creating a store directory");
  return success();
}

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
    if (!fd_) return last_error(Step::image_unpack, layer_.blob, "opening the layer blob");
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
      BOOST_OUTCOME_TRYV(extract(tar.get(), disk.get(), entry));
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
      return make_error(Step::image_verify, EBADMSG, layer_.blob,
                        fmt::format("the blob's digest is {}, not {}", got, layer_.digest));
    }
    if (std::string got = diff_hash_.digest(); !layer_.diff_id.empty() && got != layer_.diff_id) {
      return make_error(Step::image_verify, EBADMSG, layer_.blob,
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
    return make_error(Step::image_unpack, e > 0 ? e : EINVAL, subject, text ? text : "libarchive");
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
      return make_error(Step::image_unpack, EPERM, name,
                        fmt::format("an absolute {} in layer {}", what, layer_.digest));
    }
    for (std::string_view rest = name; !rest.empty();) {
      auto slash = rest.find('/');
      if (rest.substr(0, slash) == "..") {
        return make_error(Step::image_unpack, EPERM, name,
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
      if (target.empty()) return make_error(Step::image_unpack, EPERM, name, "a hard link to '.'");
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
    return make_error(Step::image_unpack, e > 0 ? e : EPERM, name,
                      fmt::format("{} (layer {})", text ? text : "refused", layer_.digest));
  }

  result<void> whiteout(const std::string& parent, const std::string& parent_path,
                        const std::string& hidden) {
    BOOST_OUTCOME_TRYV(make_dirs(parent_path));
    if (hidden == ".wh..opq") {
      if (whiteouts_ == Whiteouts::overlay) {
        // trusted.* for an overlay mounted by host root, user.* for one mounted inside a
        // user namespace (userxattr).
        for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
          if (::setxattr(parent_path.c_str(), name, "y", 1, 0) != 0) {
            return last_error(Step::image_unpack, parent_path, "marking an opaque directory");
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
      return make_error(Step::image_unpack, EPERM, target, "a whiteout of nothing");
    }
    if (whiteouts_ == Whiteouts::overlay) {
      if (::mknod(target.c_str(), S_IFCHR | 0600, ::makedev(0, 0)) != 0 && errno != EEXIST) {
        return last_error(Step::image_unpack, target, "creating an overlayfs whiteout");
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

/// A store entry: `final` if it exists, else `fill(tmp)` into a new temporary directory
/// renamed to `final`. Losing a race to another process is fine: its entry is the same.
template <typename Fill>
result<std::string> store_entry(const std::string& store, const std::string& final, Fill fill) {
  if (::access(final.c_str(), F_OK) == 0) return final;
  BOOST_OUTCOME_TRYV(make_dirs(store + "/tmp"));
  BOOST_OUTCOME_TRYV(make_dirs(std::filesystem::path(final).parent_path().string()));
  std::string tmp = store + "/tmp/unpack-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) return last_error(Step::image_unpack, tmp);
  ::chmod(tmp.c_str(), 0755);
  auto filled = fill(tmp);
  if (!filled) {
    (void)ScratchDir::remove_tree(tmp);
    return filled.error();
  }
  if (::rename(tmp.c_str(), final.c_str()) != 0) {
    int e = errno;
    (void)ScratchDir::remove_tree(tmp);
    if (e != EEXIST && e != ENOTEMPTY) return make_error(Step::image_unpack, e, final);
  }
  return final;
}

}  // namespace detail

/// How Image::open picks and places an image.
struct ImageOptions {
  std::string architecture = detail::host_architecture();  // picked from multi-platform indexes
  std::string os = "linux";
  std::optional<ImageStore> store = std::nullopt;  // where `docker save` archives are unpacked
};

/// An OCI image: its config and layers, read from an OCI image layout directory (what
/// `skopeo copy ... oci:DIR:TAG`, `umoci` and `buildah push oci:` write) or a `docker save`
/// archive. Every blob is checked against its digest before it is used.
class Image {
 public:
  using Options = ImageOptions;

  /// Opens the image `reference` (a tag such as "latest", the ref.name annotation, or a
  /// manifest digest "sha256:...") in `path`. An empty reference takes the only image there.
  static result<Image> open(const std::string& path, const std::string& reference = {},
                            Options options = {}) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return last_error(Step::image_open, path);
    std::string dir = path;
    if (!S_ISDIR(st.st_mode)) {
      ImageStore store = options.store ? *options.store : ImageStore::default_store();
      HUTCH_TRY(dir, unpack_archive(path, store));
    }
    Image image;
    image.dir_ = dir;
    if (::access((dir + "/index.json").c_str(), F_OK) == 0) {
      BOOST_OUTCOME_TRYV(image.open_layout(reference, options));
    } else if (::access((dir + "/manifest.json").c_str(), F_OK) == 0) {
      BOOST_OUTCOME_TRYV(image.open_docker_save(reference, options));
    } else {
      return make_error(Step::image_open, ENOENT, path,
                        "neither an OCI image layout (index.json) nor a docker save archive "
                        "(manifest.json)");
    }
    return image;
  }

  const ImageConfig& config() const noexcept { return config_; }
  const std::vector<ImageLayer>& layers() const noexcept { return layers_; }
  /// The digest of the image's config blob: the image id.
  const std::string& id() const noexcept { return config_digest_; }

  /// The command docker would run: Entrypoint + Cmd, or Entrypoint + `args` when the user
  /// gives a command (which replaces Cmd); without an Entrypoint, `args` alone.
  std::vector<std::string> command(const std::vector<std::string>& args = {}) const {
    std::vector<std::string> out = config_.entrypoint;
    const auto& tail = args.empty() ? config_.cmd : args;
    out.insert(out.end(), tail.begin(), tail.end());
    return out;
  }

  /// Unpacks the layers into `store` (once: what is there is reused) and returns the
  /// directories to stack, bottom first. With privilege (root) each layer is its own
  /// directory with overlayfs whiteouts, shared between images; without, the image is
  /// applied into one directory keyed by its chain id (files then belong to the caller:
  /// a warning in `ownership_note()`).
  result<std::vector<std::string>> unpack(const ImageStore& store,
                                          const ProgressCallback& progress = {}) const {
    if (layers_.empty()) return make_error(Step::image_unpack, EINVAL, id(), "no layers");
    const std::string base = store.dir();
    BOOST_OUTCOME_TRYV(detail::make_dirs(base));
    std::vector<std::string> dirs;
    if (::geteuid() == 0) {
      for (std::size_t i = 0; i < layers_.size(); ++i) {
        const ImageLayer& layer = layers_[i];
        const std::string final = base + "/layers/sha256/" + detail::hex_of(layer.diff_id);
        HUTCH_TRY(auto dir, detail::store_entry(base, final, [&](const std::string& tmp) {
                    detail::LayerUnpacker unpacker(
                        layer, tmp, detail::LayerUnpacker::Whiteouts::overlay, progress, state(i));
                    return unpacker.run();
                  }));
        dirs.push_back(std::move(dir));
      }
      return dirs;
    }
    const std::string final = base + "/flat/sha256/" + detail::hex_of(chain_id());
    HUTCH_TRY(auto dir,
              detail::store_entry(base, final, [&](const std::string& tmp) -> result<void> {
                for (std::size_t i = 0; i < layers_.size(); ++i) {
                  detail::LayerUnpacker unpacker(
                      layers_[i], tmp, detail::LayerUnpacker::Whiteouts::apply, progress, state(i));
                  BOOST_OUTCOME_TRYV(unpacker.run());
                }
                return success();
              }));
    dirs.push_back(std::move(dir));
    return dirs;
  }

  /// Without privilege files cannot keep their owners: they belong to the caller (root in
  /// the container's default user namespace). Empty when owners are kept.
  static std::string ownership_note() {
    return ::geteuid() == 0 ? std::string()
                            : "unpacked without privilege: every file belongs to the caller "
                              "(root inside the container)";
  }

  /// OCI's ChainID of the layers: the identity of the stack as a whole.
  std::string chain_id() const {
    std::string chain;
    for (const ImageLayer& l : layers_) {
      chain = chain.empty() ? l.diff_id : detail::Sha256::of(chain + " " + l.diff_id);
    }
    return chain;
  }

 private:
  LayerProgress state(std::size_t i) const {
    return {i, layers_.size(), layers_[i].digest, 0, layers_[i].size};
  }

  std::string blob_path(const std::string& digest) const {
    return dir_ + "/blobs/sha256/" + detail::hex_of(digest);
  }

  /// A blob named by a descriptor, read whole and checked against its digest and size.
  result<std::string> verified_blob(const nlohmann::json& descriptor) const {
    std::string digest = detail::string_of(descriptor, "digest");
    if (!detail::valid_digest(digest)) {
      return make_error(Step::image_open, EINVAL, digest, "not a sha256 digest");
    }
    const std::string path = blob_path(digest);
    auto text = detail::read_whole(path);
    if (!text)
      return make_error(Step::image_open, ENOENT, path, "the blob " + digest + " is missing");
    if (std::string got = detail::Sha256::of(*text); got != digest) {
      return make_error(Step::image_verify, EBADMSG, path,
                        fmt::format("the blob's digest is {}, not {}", got, digest));
    }
    if (descriptor.contains("size") && descriptor["size"].is_number_unsigned() &&
        descriptor["size"].get<std::uint64_t>() != text->size()) {
      return make_error(Step::image_verify, EBADMSG, path,
                        "the blob's size is not the descriptor's");
    }
    return text;
  }

  static bool is_index(std::string_view media_type) {
    return media_type == "application/vnd.oci.image.index.v1+json" ||
           media_type == "application/vnd.docker.distribution.manifest.list.v2+json";
  }

  result<void> open_layout(const std::string& reference, const Options& options) {
    HUTCH_TRY(auto layout_text, detail::read_whole(dir_ + "/oci-layout"));
    HUTCH_TRY(auto layout, detail::parse_json(layout_text, dir_ + "/oci-layout"));
    if (detail::string_of(layout, "imageLayoutVersion").empty()) {
      return make_error(Step::image_open, EINVAL, dir_ + "/oci-layout", "no imageLayoutVersion");
    }
    HUTCH_TRY(auto index_text, detail::read_whole(dir_ + "/index.json"));
    HUTCH_TRY(auto index, detail::parse_json(index_text, dir_ + "/index.json"));
    // The top-level index: pick by reference.
    std::optional<nlohmann::json> chosen;
    std::vector<std::string> names;
    const auto& manifests = index.contains("manifests") && index["manifests"].is_array()
                                ? index["manifests"]
                                : nlohmann::json::array();
    for (const auto& m : manifests) {
      std::string name;
      if (m.contains("annotations") && m["annotations"].is_object()) {
        name = detail::string_of(m["annotations"], "org.opencontainers.image.ref.name");
      }
      if (!name.empty()) names.push_back(name);
      bool match =
          reference.empty()
              ? manifests.size() == 1
              : (reference == name || reference == detail::string_of(m, "digest") ||
                 (m.contains("annotations") && m["annotations"].is_object() &&
                  reference == detail::string_of(m["annotations"], "io.containerd.image.name")));
      if (match) chosen = m;
    }
    if (!chosen) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      return make_error(
          Step::image_open, ENOENT, reference.empty() ? dir_ : reference,
          reference.empty()
              ? fmt::format("the layout holds {} images; name one ({})", manifests.size(), known)
              : fmt::format("no image of that name in {} (it has: {})", dir_,
                            known.empty() ? "none named" : known));
    }
    // Follow indexes down to a manifest for our platform.
    nlohmann::json descriptor = *chosen;
    for (int depth = 0; is_index(detail::string_of(descriptor, "mediaType")); ++depth) {
      if (depth > 8) return make_error(Step::image_open, ELOOP, dir_, "indexes nested too deep");
      HUTCH_TRY(auto text, verified_blob(descriptor));
      HUTCH_TRY(auto nested, detail::parse_json(text, detail::string_of(descriptor, "digest")));
      std::optional<nlohmann::json> next;
      std::vector<std::string> platforms;
      if (nested.contains("manifests") && nested["manifests"].is_array()) {
        for (const auto& m : nested["manifests"]) {
          if (!m.contains("platform") || !m["platform"].is_object()) {
            if (nested["manifests"].size() == 1) next = m;
            continue;
          }
          std::string os = detail::string_of(m["platform"], "os");
          std::string arch = detail::string_of(m["platform"], "architecture");
          platforms.push_back(os + "/" + arch);
          if (!next && os == options.os && arch == options.architecture) next = m;
        }
      }
      if (!next) {
        std::string have;
        for (const auto& p : platforms) have += (have.empty() ? "" : ", ") + p;
        return make_error(Step::image_open, ENOENT, options.os + "/" + options.architecture,
                          fmt::format("the image has no manifest for this platform (it has: {})",
                                      have.empty() ? "none" : have));
      }
      descriptor = *next;
    }
    HUTCH_TRY(auto manifest_text, verified_blob(descriptor));
    HUTCH_TRY(auto manifest,
              detail::parse_json(manifest_text, detail::string_of(descriptor, "digest")));
    if (!manifest.contains("config") || !manifest["config"].is_object()) {
      return make_error(Step::image_open, EINVAL, detail::string_of(descriptor, "digest"),
                        "the manifest has no config");
    }
    HUTCH_TRY(auto config_text, verified_blob(manifest["config"]));
    config_digest_ = detail::string_of(manifest["config"], "digest");
    std::vector<ImageLayer> layers;
    if (manifest.contains("layers") && manifest["layers"].is_array()) {
      for (const auto& l : manifest["layers"]) {
        ImageLayer layer;
        layer.digest = detail::string_of(l, "digest");
        layer.media_type = detail::string_of(l, "mediaType");
        if (!detail::valid_digest(layer.digest)) {
          return make_error(Step::image_open, EINVAL, layer.digest, "not a sha256 digest");
        }
        if (layer.media_type.find("tar") == std::string::npos) {
          return make_error(Step::image_open, ENOTSUP, layer.media_type,
                            "not a layer media type (tar, tar+gzip, tar+zstd)");
        }
        layer.blob = blob_path(layer.digest);
        layer.size = l.contains("size") && l["size"].is_number_unsigned()
                         ? l["size"].get<std::uint64_t>()
                         : 0;
        if (::access(layer.blob.c_str(), R_OK) != 0) {
          return make_error(Step::image_open, ENOENT, layer.blob,
                            "the blob " + layer.digest + " is missing");
        }
        layers.push_back(std::move(layer));
      }
    }
    return apply_config(config_text, std::move(layers), options);
  }

  result<void> open_docker_save(const std::string& reference, const Options& options) {
    HUTCH_TRY(auto text, detail::read_whole(dir_ + "/manifest.json"));
    auto list = nlohmann::json::parse(text, nullptr, false);
    if (list.is_discarded() || !list.is_array() || list.empty()) {
      return make_error(Step::image_open, EINVAL, dir_ + "/manifest.json",
                        "not a docker save manifest");
    }
    std::optional<nlohmann::json> chosen;
    for (const auto& m : list) {
      auto tags = detail::strings_of(m, "RepoTags");
      bool match = reference.empty()
                       ? list.size() == 1
                       : std::any_of(tags.begin(), tags.end(), [&](const std::string& t) {
                           return t == reference || t.ends_with(":" + reference);
                         });
      if (match) chosen = m;
    }
    if (!chosen) {
      return make_error(Step::image_open, ENOENT, reference.empty() ? dir_ : reference,
                        "no such image in the archive's manifest.json");
    }
    std::string config_name = detail::string_of(*chosen, "Config");
    // "<hex>.json" (docker < 25) or "blobs/sha256/<hex>": the name is the digest.
    std::string hex = std::filesystem::path(config_name).stem().string();
    if (config_name.starts_with("blobs/sha256/")) hex = config_name.substr(13);
    nlohmann::json config_descriptor = {{"digest", "sha256:" + hex}};
    if (!detail::valid_digest("sha256:" + hex) || config_name.find("..") != std::string::npos) {
      return make_error(Step::image_open, EINVAL, config_name, "not a config named by its digest");
    }
    HUTCH_TRY(auto config_text, detail::read_whole(dir_ + "/" + config_name));
    if (detail::Sha256::of(config_text) != "sha256:" + hex) {
      return make_error(Step::image_verify, EBADMSG, dir_ + "/" + config_name,
                        "the config's digest is not its name");
    }
    config_digest_ = "sha256:" + hex;
    std::vector<ImageLayer> layers;
    for (const auto& path : detail::strings_of(*chosen, "Layers")) {
      if (path.find("..") != std::string::npos || path.starts_with("/")) {
        return make_error(Step::image_open, EINVAL, path, "a layer path outside the archive");
      }
      ImageLayer layer;
      layer.blob = dir_ + "/" + path;
      layer.media_type = "application/vnd.docker.image.rootfs.diff.tar";
      struct stat st {};
      if (::stat(layer.blob.c_str(), &st) != 0) {
        return make_error(Step::image_open, ENOENT, layer.blob, "a layer is missing");
      }
      layer.size = static_cast<std::uint64_t>(st.st_size);
      layers.push_back(std::move(layer));
    }
    return apply_config(config_text, std::move(layers), options);
  }

  /// Reads the config blob: the run defaults and the diff_ids, which also key the store
  /// (docker save layers are uncompressed, so their diff_id is their digest too).
  result<void> apply_config(const std::string& text, std::vector<ImageLayer> layers,
                            const Options& options) {
    HUTCH_TRY(auto config, detail::parse_json(text, config_digest_));
    config_.os = detail::string_of(config, "os");
    config_.architecture = detail::string_of(config, "architecture");
    if (!options.architecture.empty() && !config_.architecture.empty() &&
        config_.architecture != options.architecture) {
      return make_error(Step::image_open, ENOEXEC, config_.os + "/" + config_.architecture,
                        fmt::format("the image is built for another architecture (this host "
                                    "runs {})",
                                    options.architecture));
    }
    if (config.contains("config") && config["config"].is_object()) {
      const auto& c = config["config"];
      config_.entrypoint = detail::strings_of(c, "Entrypoint");
      config_.cmd = detail::strings_of(c, "Cmd");
      config_.env = detail::strings_of(c, "Env");
      config_.working_dir = detail::string_of(c, "WorkingDir");
      config_.user = detail::string_of(c, "User");
      config_.stop_signal = detail::string_of(c, "StopSignal");
      if (c.contains("ExposedPorts") && c["ExposedPorts"].is_object()) {
        for (const auto& [port, _] : c["ExposedPorts"].items())
          config_.exposed_ports.push_back(port);
      }
    }
    std::vector<std::string> diff_ids;
    if (config.contains("rootfs") && config["rootfs"].is_object()) {
      diff_ids = detail::strings_of(config["rootfs"], "diff_ids");
    }
    if (diff_ids.size() != layers.size()) {
      return make_error(Step::image_open, EINVAL, config_digest_,
                        fmt::format("the config lists {} diff_ids for {} layers", diff_ids.size(),
                                    layers.size()));
    }
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (!detail::valid_digest(diff_ids[i])) {
        return make_error(Step::image_open, EINVAL, diff_ids[i], "not a sha256 diff_id");
      }
      layers[i].diff_id = diff_ids[i];
      if (layers[i].digest.empty()) layers[i].digest = diff_ids[i];
    }
    layers_ = std::move(layers);
    return success();
  }

  /// A `docker save` archive is unpacked once into the store, keyed by its own digest.
  static result<std::string> unpack_archive(const std::string& path, const ImageStore& store) {
    detail::Sha256 hash;
    {
      Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return last_error(Step::image_open, path);
      char buffer[65536];
      ssize_t n;
      while ((n = detail::sys::retry([&] { return ::read(fd.get(), buffer, sizeof buffer); })) >
             0) {
        hash.update(buffer, static_cast<std::size_t>(n));
      }
      if (n < 0) return last_error(Step::image_open, path);
    }
    const std::string final = store.dir() + "/archives/sha256/" + detail::hex_of(hash.digest());
    BOOST_OUTCOME_TRYV(detail::make_dirs(store.dir()));
    return detail::store_entry(store.dir(), final, [&](const std::string& tmp) -> result<void> {
      // The archive's files are plain data (never extracted as owners, devices or links
      // that leave it): a layer tar inside is verified and unpacked later on its own.
      archive* a = ::archive_read_new();
      ::archive_read_support_filter_all(a);
      ::archive_read_support_format_tar(a);
      std::unique_ptr<archive, int (*)(archive*)> owner(a, ::archive_read_free);
      if (::archive_read_open_filename(a, path.c_str(), 65536) != ARCHIVE_OK) {
        return make_error(Step::image_open, EINVAL, path, ::archive_error_string(a));
      }
      archive_entry* entry;
      int r;
      while ((r = ::archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
        std::string name = ::archive_entry_pathname(entry);
        while (name.starts_with("./")) name.erase(0, 2);
        if (name.empty() || name.starts_with("/") || name.find("..") != std::string::npos) {
          if (name.empty()) continue;
          return make_error(Step::image_open, EPERM, name, "an archive path outside the archive");
        }
        const std::string out = tmp + "/" + name;
        if (::archive_entry_filetype(entry) == AE_IFDIR) {
          BOOST_OUTCOME_TRYV(detail::make_dirs(out));
          continue;
        }
        if (::archive_entry_filetype(entry) != AE_IFREG) continue;
        BOOST_OUTCOME_TRYV(detail::make_dirs(std::filesystem::path(out).parent_path().string()));
        Fd file(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
        if (!file) return last_error(Step::image_open, out);
        if (::archive_read_data_into_fd(a, file.get()) != ARCHIVE_OK) {
          return make_error(Step::image_open, EIO, name, ::archive_error_string(a));
        }
      }
      if (r != ARCHIVE_EOF)
        return make_error(Step::image_open, EINVAL, path, ::archive_error_string(a));
      return success();
    });
  }

  std::string dir_;
  std::string config_digest_;
  ImageConfig config_;
  std::vector<ImageLayer> layers_;
};

/// A Container set up the way `docker run IMAGE` would: the image's layers under a writable
/// overlay, its Entrypoint + Cmd, Env (replacing hutch's minimal one), WorkingDir and User.
/// Change anything afterwards; `image.command(args)` applies docker's rules to a command of
/// your own. As root, a non-root `User` runs under an identity map of ids 0-65535 (as docker
/// without userns-remap does); rootless, only root is mapped.
inline result<Container> Container::from_image(const Image& image, const ImageStore& store,
                                               const ProgressCallback& progress) {
  HUTCH_TRY(auto dirs, image.unpack(store, progress));
  std::vector<std::string> top_first(dirs.rbegin(), dirs.rend());
  HUTCH_TRY(auto ids, resolve_user(top_first, image.config().user));
  Container c;
  auto command = image.command();
  if (command.empty()) {
    return make_error(Step::image_open, EINVAL, image.id(), "the image has no Entrypoint or Cmd");
  }
  c.command(command);
  c.env_clear();
  for (const std::string& kv : image.config().env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    c.env(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (!image.config().working_dir.empty()) c.cwd(image.config().working_dir);
  if (ids.first != 0 || ids.second != 0) {
    if (::geteuid() == 0) c.uid_map({{0, 0, 65536}}).gid_map({{0, 0, 65536}});
    c.user(ids.first, ids.second);
  }
  c.rootfs(RootFs::layers(std::move(dirs)));
  return c;
}

}  // namespace hutch
