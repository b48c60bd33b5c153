// hutch — image module: reading an OCI image layout (what `skopeo copy ... oci:DIR:TAG`,
// umoci and `buildah push oci:` write): the index, nested indexes down to this platform's
// manifest, the config, the layers. Every blob is checked against its digest.
#pragma once

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "config.hpp"
#include "digest.hpp"
#include "json.hpp"

namespace hutch::detail {

inline std::string blob_path(const ImageData& d, const std::string& digest) {
  return d.dir + "/blobs/sha256/" + hex_of(digest);
}

/// A blob named by a descriptor, read whole and checked against its digest and size.
inline result<std::string> verified_blob(const ImageData& d, const nlohmann::json& descriptor) {
  std::string digest = string_of(descriptor, "digest");
  if (!valid_digest(digest)) {
    return make_error(image_step::open, EINVAL, digest, "not a sha256 digest");
  }
  const std::string path = blob_path(d, digest);
  auto text = read_whole(path);
  if (!text)
    return make_error(image_step::open, ENOENT, path, "the blob " + digest + " is missing");
  if (std::string got = Sha256::of(*text); got != digest) {
    return make_error(image_step::verify, EBADMSG, path,
                      fmt::format("the blob's digest is {}, not {}", got, digest));
  }
  if (descriptor.contains("size") && descriptor["size"].is_number_unsigned() &&
      descriptor["size"].get<std::uint64_t>() != text->size()) {
    return make_error(image_step::verify, EBADMSG, path, "the blob's size is not the descriptor's");
  }
  return text;
}

inline bool is_index(std::string_view media_type) {
  return media_type == "application/vnd.oci.image.index.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.list.v2+json";
}

inline result<void> open_layout(ImageData& d, const std::string& reference,
                                const ImageOptions& options) {
  HUTCH_TRY(auto layout_text, read_whole(d.dir + "/oci-layout"));
  HUTCH_TRY(auto layout, parse_json(layout_text, d.dir + "/oci-layout"));
  if (string_of(layout, "imageLayoutVersion").empty()) {
    return make_error(image_step::open, EINVAL, d.dir + "/oci-layout", "no imageLayoutVersion");
  }
  HUTCH_TRY(auto index_text, read_whole(d.dir + "/index.json"));
  HUTCH_TRY(auto index, parse_json(index_text, d.dir + "/index.json"));
  // The top-level index: pick by reference.
  std::optional<nlohmann::json> chosen;
  std::vector<std::string> names;
  const auto& manifests = index.contains("manifests") && index["manifests"].is_array()
                              ? index["manifests"]
                              : nlohmann::json::array();
  for (const auto& m : manifests) {
    std::string name;
    if (m.contains("annotations") && m["annotations"].is_object()) {
      name = string_of(m["annotations"], "org.opencontainers.image.ref.name");
    }
    if (!name.empty()) names.push_back(name);
    bool match = reference.empty()
                     ? manifests.size() == 1
                     : (reference == name || reference == string_of(m, "digest") ||
                        (m.contains("annotations") && m["annotations"].is_object() &&
                         reference == string_of(m["annotations"], "io.containerd.image.name")));
    if (match) chosen = m;
  }
  if (!chosen) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return make_error(image_step::open, ENOENT, reference.empty() ? d.dir : reference,
                      reference.empty() ? fmt::format("the layout holds {} images; name one ({})",
                                                      manifests.size(), known)
                                        : fmt::format("no image of that name in {} (it has: {})",
                                                      d.dir, known.empty() ? "none named" : known));
  }
  // Follow indexes down to a manifest for our platform.
  nlohmann::json descriptor = *chosen;
  for (int depth = 0; is_index(string_of(descriptor, "mediaType")); ++depth) {
    if (depth > 8) return make_error(image_step::open, ELOOP, d.dir, "indexes nested too deep");
    HUTCH_TRY(auto text, verified_blob(d, descriptor));
    HUTCH_TRY(auto nested, parse_json(text, string_of(descriptor, "digest")));
    std::optional<nlohmann::json> next;
    std::vector<std::string> platforms;
    if (nested.contains("manifests") && nested["manifests"].is_array()) {
      for (const auto& m : nested["manifests"]) {
        if (!m.contains("platform") || !m["platform"].is_object()) {
          if (nested["manifests"].size() == 1) next = m;
          continue;
        }
        std::string os = string_of(m["platform"], "os");
        std::string arch = string_of(m["platform"], "architecture");
        platforms.push_back(os + "/" + arch);
        if (!next && os == options.os && arch == options.architecture) next = m;
      }
    }
    if (!next) {
      std::string have;
      for (const auto& p : platforms) have += (have.empty() ? "" : ", ") + p;
      return make_error(image_step::open, ENOENT, options.os + "/" + options.architecture,
                        fmt::format("the image has no manifest for this platform (it has: {})",
                                    have.empty() ? "none" : have));
    }
    descriptor = *next;
  }
  HUTCH_TRY(auto manifest_text, verified_blob(d, descriptor));
  HUTCH_TRY(auto manifest, parse_json(manifest_text, string_of(descriptor, "digest")));
  if (!manifest.contains("config") || !manifest["config"].is_object()) {
    return make_error(image_step::open, EINVAL, string_of(descriptor, "digest"),
                      "the manifest has no config");
  }
  HUTCH_TRY(auto config_text, verified_blob(d, manifest["config"]));
  d.config_digest = string_of(manifest["config"], "digest");
  std::vector<ImageLayer> layers;
  if (manifest.contains("layers") && manifest["layers"].is_array()) {
    for (const auto& l : manifest["layers"]) {
      ImageLayer layer;
      layer.digest = string_of(l, "digest");
      layer.media_type = string_of(l, "mediaType");
      if (!valid_digest(layer.digest)) {
        return make_error(image_step::open, EINVAL, layer.digest, "not a sha256 digest");
      }
      if (layer.media_type.find("tar") == std::string::npos) {
        return make_error(image_step::open, ENOTSUP, layer.media_type,
                          "not a layer media type (tar, tar+gzip, tar+zstd)");
      }
      layer.blob = blob_path(d, layer.digest);
      layer.size =
          l.contains("size") && l["size"].is_number_unsigned() ? l["size"].get<std::uint64_t>() : 0;
      if (::access(layer.blob.c_str(), R_OK) != 0) {
        return make_error(image_step::open, ENOENT, layer.blob,
                          "the blob " + layer.digest + " is missing");
      }
      layers.push_back(std::move(layer));
    }
  }
  return apply_config(d, config_text, std::move(layers), options);
}

}  // namespace hutch::detail
