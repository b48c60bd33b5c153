// hutch — image module: reading an OCI image layout (what `skopeo copy ... oci:DIR:TAG`,
// umoci and `buildah push oci:` write): the index, nested indexes down to this platform's
// manifest, the config, the layers. Every blob is checked against its digest and size.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "config.hpp"
#include "digest.hpp"
#include "json.hpp"
#include "oci.hpp"

namespace hutch::detail {

inline std::string blob_path(const ImageData& d, const std::string& digest) {
  return d.dir + "/blobs/sha256/" + hex_of(digest);
}

/// A blob named by a descriptor, read whole (at most `max` bytes) and checked against its
/// digest and size.
inline result<std::string> verified_blob(const ImageData& d, const Descriptor& descriptor,
                                         std::size_t max) {
  const std::string path = blob_path(d, descriptor.digest);
  if (descriptor.size > max) {
    return make_error(image_step::open, EFBIG, descriptor.digest,
                      fmt::format("the descriptor's size {} is above the {} bytes hutch reads",
                                  descriptor.size, max));
  }
  auto text = read_whole(path, max);
  if (!text && text.error().errno_value() == ENOENT) {
    return make_error(image_step::open, ENOENT, path,
                      "the blob " + descriptor.digest + " is missing");
  }
  if (!text) return text.error();
  if (std::string got = Sha256::of(*text); got != descriptor.digest) {
    return make_error(image_step::verify, EBADMSG, path,
                      fmt::format("the blob's digest is {}, not {}", got, descriptor.digest));
  }
  if (descriptor.size != text->size()) {
    return make_error(image_step::verify, EBADMSG, path, "the blob's size is not the descriptor's");
  }
  return text;
}

/// The top-level index's entry named `reference` (a ref.name annotation, containerd's image
/// name, or a digest); an empty reference takes the only one.
inline result<Descriptor> pick_reference(const std::vector<Descriptor>& manifests,
                                         const std::string& reference, const std::string& dir) {
  std::vector<std::string> names;
  const Descriptor* chosen = nullptr;
  for (const auto& m : manifests) {
    auto name = m.annotations.find("org.opencontainers.image.ref.name");
    if (name != m.annotations.end()) names.push_back(name->second);
    auto containerd = m.annotations.find("io.containerd.image.name");
    const bool match =
        reference.empty()
            ? manifests.size() == 1
            : ((name != m.annotations.end() && name->second == reference) ||
               m.digest == reference ||
               (containerd != m.annotations.end() && containerd->second == reference));
    if (match) chosen = &m;
  }
  if (chosen) return *chosen;
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  return make_error(image_step::open, ENOENT, reference.empty() ? dir : reference,
                    reference.empty() ? fmt::format("the layout holds {} images; name one ({})",
                                                    manifests.size(), known)
                                      : fmt::format("no image of that name in {} (it has: {})", dir,
                                                    known.empty() ? "none named" : known));
}

/// Follows indexes down to the manifest for `options`' platform.
inline result<Descriptor> resolve_manifest(const ImageData& d, Descriptor descriptor,
                                           const ImageOptions& options) {
  for (int depth = 0; is_index_type(descriptor.media_type); ++depth) {
    if (depth > 8) return make_error(image_step::open, ELOOP, d.dir, "indexes nested too deep");
    HUTCH_TRY(const std::string text, verified_blob(d, descriptor, max_manifest_size));
    HUTCH_TRY(const std::vector<Descriptor> nested, parse_index(text, descriptor.digest));
    HUTCH_TRY(descriptor, pick_platform(nested, {options.os, options.architecture, {}}));
  }
  if (!is_manifest_type(descriptor.media_type)) {
    return make_error(
        image_step::open, ENOTSUP, descriptor.media_type,
        fmt::format("not an image manifest or index media type ({})", descriptor.digest));
  }
  return descriptor;
}

/// A layer's blob must be a regular file of the descriptor's size.
inline result<ImageLayer> layout_layer(const ImageData& d, const Descriptor& l) {
  ImageLayer layer;
  layer.digest = l.digest;
  layer.media_type = l.media_type;
  layer.size = l.size;
  layer.blob = blob_path(d, l.digest);
  struct stat st {};
  if (::stat(layer.blob.c_str(), &st) != 0) {
    return make_error(image_step::open, ENOENT, layer.blob, "the blob " + l.digest + " is missing");
  }
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != l.size) {
    return make_error(image_step::verify, EBADMSG, layer.blob,
                      "the blob is not a file of the descriptor's size");
  }
  return layer;
}

/// The image a manifest blob describes: its config and its layers, whose blobs are in the
/// layout (`with_blobs`) or, for an image pulled into a store, were unpacked as they streamed.
inline result<void> open_manifest(ImageData& d, const Descriptor& manifest_descriptor,
                                  const ImageOptions& options, bool with_blobs) {
  HUTCH_TRY(const std::string manifest_text,
            verified_blob(d, manifest_descriptor, max_manifest_size));
  HUTCH_TRY(const Manifest manifest, parse_manifest(manifest_text, manifest_descriptor.digest));
  HUTCH_TRY(const std::string config_text, verified_blob(d, manifest.config, max_config_size));
  d.config_digest = manifest.config.digest;
  std::vector<ImageLayer> layers;
  for (const auto& l : manifest.layers) {
    if (with_blobs) {
      HUTCH_TRY(ImageLayer layer, layout_layer(d, l));
      layers.push_back(std::move(layer));
    } else {
      layers.push_back({l.digest, {}, l.media_type, {}, l.size});
    }
  }
  return apply_config(d, config_text, std::move(layers), options);
}

inline result<void> open_layout(ImageData& d, const std::string& reference,
                                const ImageOptions& options) {
  HUTCH_TRY(const std::string layout_text, read_whole(d.dir + "/oci-layout"));
  HUTCH_TRY(const nlohmann::json layout, parse_json(layout_text, d.dir + "/oci-layout"));
  HUTCH_TRY(const std::string version,
            string_field(layout, "imageLayoutVersion", d.dir + "/oci-layout"));
  if (version.empty()) {
    return make_error(image_step::open, EINVAL, d.dir + "/oci-layout", "no imageLayoutVersion");
  }
  HUTCH_TRY(const std::string index_text, read_whole(d.dir + "/index.json"));
  HUTCH_TRY(const std::vector<Descriptor> top, parse_index(index_text, d.dir + "/index.json"));
  HUTCH_TRY(const Descriptor chosen, pick_reference(top, reference, d.dir));
  HUTCH_TRY(const Descriptor manifest_descriptor, resolve_manifest(d, chosen, options));
  return open_manifest(d, manifest_descriptor, options, true);
}

}  // namespace hutch::detail
