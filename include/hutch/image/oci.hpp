// hutch — image module: the OCI image spec's documents (descriptors, indexes, manifests),
// and Docker's schema 2 equivalents, read from text strictly. A layout (image/layout.hpp) and
// a registry read the same documents through these.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "digest.hpp"
#include "json.hpp"

namespace hutch {

namespace media_type {
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view docker_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_manifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
}  // namespace media_type

/// Where an image runs (the index's "platform").
struct Platform {
  std::string os, architecture, variant;
};

/// A content descriptor: what a blob is, its digest and its size.
struct Descriptor {
  std::string media_type;
  std::string digest;
  std::uint64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
};

namespace detail {

inline bool is_index_type(std::string_view t) {
  return t == media_type::oci_index || t == media_type::docker_list;
}
inline bool is_manifest_type(std::string_view t) {
  return t == media_type::oci_manifest || t == media_type::docker_manifest;
}
inline bool is_config_type(std::string_view t) {
  return t == media_type::oci_config || t == media_type::docker_config;
}
/// A layer: a tar, uncompressed, gzip or zstd (OCI's, also non-distributable; Docker's).
inline bool is_layer_type(std::string_view t) {
  for (std::string_view prefix : {"application/vnd.oci.image.layer.v1.tar",
                                  "application/vnd.oci.image.layer.nondistributable.v1.tar"}) {
    if (t.starts_with(prefix)) {
      const std::string_view rest = t.substr(prefix.size());
      return rest.empty() || rest == "+gzip" || rest == "+zstd";
    }
  }
  return t == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
         t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" ||
         t == "application/vnd.docker.image.rootfs.diff.tar";
}

inline result<Descriptor> parse_descriptor(const nlohmann::json& j, std::string_view where) {
  if (!j.is_object()) return bad_field(where, "descriptor", "must be an object");
  Descriptor d;
  HUTCH_TRY(d.media_type, string_field(j, "mediaType", where));
  if (d.media_type.empty()) return bad_field(where, "mediaType", "is missing");
  HUTCH_TRY(d.digest, string_field(j, "digest", where));
  if (!valid_digest(d.digest)) return bad_field(where, "digest", "is not a sha256 digest");
  HUTCH_TRY(d.size, size_field(j, "size", where));
  HUTCH_TRY(const nlohmann::json* platform, object_field(j, "platform", where));
  if (platform) {
    Platform p;
    HUTCH_TRY(p.os, string_field(*platform, "os", where));
    HUTCH_TRY(p.architecture, string_field(*platform, "architecture", where));
    HUTCH_TRY(p.variant, string_field(*platform, "variant", where));
    d.platform = std::move(p);
  }
  HUTCH_TRY(const nlohmann::json* annotations, object_field(j, "annotations", where));
  if (annotations) {
    for (const auto& [key, value] : annotations->items()) {
      if (!value.is_string()) return bad_field(where, "annotations", "must map strings to strings");
      d.annotations[key] = value.get<std::string>();
    }
  }
  return d;
}

/// Checks a document's own mediaType (optional in it) against what named it.
inline result<void> check_media_type(const nlohmann::json& j, std::string_view expected_kind,
                                     bool (*ok)(std::string_view), std::string_view where) {
  HUTCH_TRY(const std::string type, string_field(j, "mediaType", where));
  if (!type.empty() && !ok(type)) {
    return bad_field(where, "mediaType", fmt::format("is {}, not {}", type, expected_kind));
  }
  return success();
}

/// An index (or Docker manifest list): its manifests.
inline result<std::vector<Descriptor>> parse_index(std::string_view text, std::string_view where) {
  try {
    HUTCH_TRY(const nlohmann::json j, parse_json(text, where));
    HUTCH_TRYV(check_media_type(j, "an index", is_index_type, where));
    const auto it = j.find("manifests");
    if (it == j.end() || !it->is_array()) return bad_field(where, "manifests", "must be an array");
    std::vector<Descriptor> out;
    for (const auto& m : *it) {
      HUTCH_TRY(Descriptor d, parse_descriptor(m, where));
      out.push_back(std::move(d));
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return make_error(image_step::open, EINVAL, std::string(where), e.what());
  }
}

struct Manifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

/// An image manifest: its config and layers, each of a media type hutch can use.
inline result<Manifest> parse_manifest(std::string_view text, std::string_view where) {
  try {
    HUTCH_TRY(const nlohmann::json j, parse_json(text, where));
    HUTCH_TRYV(check_media_type(j, "an image manifest", is_manifest_type, where));
    const auto config = j.find("config");
    if (config == j.end()) return bad_field(where, "config", "is missing");
    Manifest m;
    HUTCH_TRY(m.config, parse_descriptor(*config, where));
    if (!is_config_type(m.config.media_type)) {
      return bad_field(where, "config.mediaType",
                       fmt::format("is {}, not an image config", m.config.media_type));
    }
    const auto layers = j.find("layers");
    if (layers == j.end() || !layers->is_array()) {
      return bad_field(where, "layers", "must be an array");
    }
    for (const auto& l : *layers) {
      HUTCH_TRY(Descriptor d, parse_descriptor(l, where));
      if (!is_layer_type(d.media_type)) {
        return make_error(
            image_step::open, ENOTSUP, d.media_type,
            fmt::format("not a layer media type (a tar, plain, gzip or zstd), in {}", where));
      }
      m.layers.push_back(std::move(d));
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    return make_error(image_step::open, EINVAL, std::string(where), e.what());
  }
}

/// The manifest of an index for `want`: os and architecture must match, and the variant when
/// both name one. None: an error that lists what the index has.
inline result<Descriptor> pick_platform(const std::vector<Descriptor>& manifests,
                                        const Platform& want) {
  std::string have;
  for (const auto& m : manifests) {
    if (!m.platform) {
      if (manifests.size() == 1) return m;
      continue;
    }
    const Platform& p = *m.platform;
    if (p.os == "unknown" && p.architecture == "unknown") continue;  // attestations
    have += fmt::format("{}{}/{}{}{}", have.empty() ? "" : ", ", p.os, p.architecture,
                        p.variant.empty() ? "" : "/", p.variant);
    if (p.os == want.os && p.architecture == want.architecture &&
        (want.variant.empty() || p.variant.empty() || p.variant == want.variant)) {
      return m;
    }
  }
  return make_error(image_step::open, ENOENT,
                    fmt::format("{}/{}{}{}", want.os, want.architecture,
                                want.variant.empty() ? "" : "/", want.variant),
                    fmt::format("the image has no manifest for this platform (it has: {})",
                                have.empty() ? "none" : have));
}

}  // namespace detail
}  // namespace hutch
