// hutch — image module: Image, an OCI image opened from a layout or a `docker save` archive,
// its layers unpacked into a store and turned into a Container.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "../container.hpp"
#include "../error.hpp"
#include "../user.hpp"
#include "config.hpp"
#include "digest.hpp"
#include "docker_save.hpp"
#include "layout.hpp"
#include "store.hpp"
#include "unpacker.hpp"

namespace hutch {

namespace registry {
struct PullOptions;  // registry/pull.hpp, the hutch::registry module
}  // namespace registry

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
    if (path.empty() || path.size() > detail::max_image_path) {
      return make_error(image_step::open, ENAMETOOLONG, path.substr(0, 256), "the image path");
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return last_error(image_step::open, path);
    if (!S_ISDIR(st.st_mode)) return open_archive(path, reference, options);
    Image image;
    image.d_.dir = path;
    if (::access((path + "/index.json").c_str(), F_OK) == 0) {
      HUTCH_TRYV(detail::open_layout(image.d_, reference, options));
    } else if (::access((path + "/manifest.json").c_str(), F_OK) == 0) {
      HUTCH_TRYV(detail::open_docker_save(image.d_, reference, options));
    } else {
      return make_error(image_step::open, ENOENT, path,
                        "neither an OCI image layout (index.json) nor a docker save archive "
                        "(manifest.json)");
    }
    return image;
  }

  /// An image pulled into `store` before (see `pull`), by the reference it was pulled as,
  /// normalized: "docker.io/library/busybox:latest", "127.0.0.1:5000/app@sha256:...".
  /// ENOENT when it was never pulled there.
  static result<Image> stored(const std::string& reference, const ImageStore& store,
                              Options options = {}) {
    const std::string file = detail::ref_file(store, reference);
    auto text = detail::read_whole(file, 4096);
    if (!text && text.error().errno_value() == ENOENT) {
      return make_error(image_step::open, ENOENT, reference,
                        "the image was not pulled into " + store.dir());
    }
    if (!text) return text.error();
    const std::string_view record = *text;
    if (record.size() < 72 || !detail::valid_digest(record.substr(0, 71)) ||
        record.substr(71) != " " + reference + "\n") {
      return make_error(image_step::store, EINVAL, file, "not a reference record of hutch's");
    }
    Image image;
    image.d_.dir = store.dir();
    Descriptor manifest{std::string(media_type::oci_manifest),
                        std::string(record.substr(0, 71)),
                        0,
                        std::nullopt,
                        {}};
    HUTCH_TRY(const std::string manifest_text,
              detail::read_whole(detail::blob_path(image.d_, manifest.digest)));
    manifest.size = manifest_text.size();
    HUTCH_TRYV(detail::open_manifest(image.d_, manifest, options, false));
    return image;
  }

  /// Pulls `reference` ("busybox", "quay.io/team/app:v1", "host:5000/app@sha256:...") from
  /// its registry into `store` and returns it as `open` would: the manifest for this
  /// platform, its config, and its layers unpacked as they download (verified while they
  /// stream; those already in the store are not fetched). In the hutch::registry module:
  /// include <hutch/registry.hpp>.
  static inline result<Image> pull(const std::string& reference, const ImageStore& store,
                                   const registry::PullOptions& options);
  static inline result<Image> pull(const std::string& reference, const ImageStore& store);

  /// Whether every layer is unpacked in `store` already, so the image runs with nothing
  /// to fetch or unpack.
  bool unpacked_in(const ImageStore& store) const {
    const auto exists = [&](std::string_view sub, const std::string& digest) {
      auto e =
          detail::entry_exists(store.dir() + "/" + std::string(sub) + "/" + detail::hex_of(digest));
      return e && *e;
    };
    if (d_.layers.empty()) return false;
    if (::geteuid() != 0) return exists("flat/sha256", chain_id());
    for (const ImageLayer& layer : d_.layers) {
      if (!exists("layers/sha256", layer.diff_id)) return false;
    }
    return true;
  }

  const ImageConfig& config() const noexcept { return d_.config; }
  const std::vector<ImageLayer>& layers() const noexcept { return d_.layers; }
  /// The digest of the image's config blob: the image id.
  const std::string& id() const noexcept { return d_.config_digest; }

  /// The command docker would run: Entrypoint + Cmd, or Entrypoint + `args` when the user
  /// gives a command (which replaces Cmd); without an Entrypoint, `args` alone.
  std::vector<std::string> command(const std::vector<std::string>& args = {}) const {
    std::vector<std::string> out = d_.config.entrypoint;
    const auto& tail = args.empty() ? d_.config.cmd : args;
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
    if (d_.layers.empty()) return make_error(image_step::unpack, EINVAL, id(), "no layers");
    HUTCH_TRYV(detail::open_store(store));
    detail::UnpackBudget budget(store.limits());
    std::vector<std::string> dirs;
    if (::geteuid() == 0) {
      for (std::size_t i = 0; i < d_.layers.size(); ++i) {
        const ImageLayer& layer = d_.layers[i];
        HUTCH_TRY(auto dir,
                  detail::store_entry(store, "layers/sha256", detail::hex_of(layer.diff_id),
                                      [&](const std::string& tmp) -> result<void> {
                                        return unpack_layers(tmp, i, i + 1, budget, progress);
                                      }));
        dirs.push_back(std::move(dir));
      }
      return dirs;
    }
    HUTCH_TRY(auto dir, detail::store_entry(store, "flat/sha256", detail::hex_of(chain_id()),
                                            [&](const std::string& tmp) -> result<void> {
                                              return unpack_layers(tmp, 0, d_.layers.size(), budget,
                                                                   progress);
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
  std::string chain_id() const { return detail::chain_id(d_.layers); }

  /// A Container set up the way `docker run IMAGE` would: the image's layers under a writable
  /// overlay, its Entrypoint + Cmd, Env (replacing hutch's minimal one), WorkingDir and User.
  /// Change anything afterwards; `image.command(args)` applies docker's rules to a command of
  /// your own. As root, a non-root `User` runs under an identity map of ids 0-65535 (as docker
  /// without userns-remap does); rootless, only root is mapped.
  result<Container> container(const ImageStore& store,
                              const ProgressCallback& progress = {}) const {
    const Image& image = *this;
    HUTCH_TRY(auto dirs, image.unpack(store, progress));
    std::vector<std::string> top_first(dirs.rbegin(), dirs.rend());
    HUTCH_TRY(auto ids, resolve_user(top_first, image.config().user));
    Container c;
    auto command = image.command();
    if (command.empty()) {
      return make_error(image_step::open, EINVAL, image.id(), "the image has no Entrypoint or Cmd");
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

 private:
  /// A `docker save` archive: unpacked into the store, then read. An archive that is not a
  /// valid image is removed from the store again (a missing tag is not the archive's fault).
  static result<Image> open_archive(const std::string& path, const std::string& reference,
                                    const Options& options) {
    ImageStore store("");
    if (options.store) {
      store = *options.store;
    } else {
      HUTCH_TRY(store, ImageStore::default_store());
    }
    HUTCH_TRY(const std::string dir, detail::unpack_archive(path, store));
    Image image;
    image.d_.dir = dir;
    auto opened = detail::open_docker_save(image.d_, reference, options);
    if (!opened) {
      const bool missing_tag = opened.error().errno_value() == ENOENT && !reference.empty() &&
                               opened.error().subject == reference;
      if (!missing_tag) (void)detail::ScratchDir::remove_tree(dir);
      return opened.error();
    }
    return image;
  }

  /// Layers [first, last) into one directory: each its own with overlayfs whiteouts, or
  /// several applied one over the other (flattened).
  result<void> unpack_layers(const std::string& dir, std::size_t first, std::size_t last,
                             detail::UnpackBudget& budget, const ProgressCallback& progress) const {
    HUTCH_TRY(detail::Tree tree, detail::Tree::open(dir));
    const auto whiteouts = ::geteuid() == 0 ? detail::Whiteouts::overlay : detail::Whiteouts::apply;
    for (std::size_t i = first; i < last; ++i) {
      if (d_.layers[i].blob.empty()) {
        return make_error(image_step::unpack, ENOENT, d_.layers[i].digest,
                          "the layer is not unpacked in the store, and a pulled image keeps no "
                          "layer blobs: pull the image again");
      }
      detail::LayerUnpacker unpacker(d_.layers[i], tree, whiteouts, budget, progress, state(i));
      HUTCH_TRYV(unpacker.run());
    }
    return success();
  }

  LayerProgress state(std::size_t i) const {
    return {i, d_.layers.size(), d_.layers[i].digest, 0, d_.layers[i].size};
  }

  detail::ImageData d_;
};

}  // namespace hutch
