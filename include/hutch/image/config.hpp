// hutch — image module: the image config (OCI image spec, "config") and what an opened image
// holds.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "digest.hpp"
#include "json.hpp"
#include "store.hpp"
#include "unpacker.hpp"

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

namespace detail {

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

}  // namespace detail

/// How Image::open picks and places an image.
struct ImageOptions {
  std::string architecture = detail::host_architecture();  // picked from multi-platform indexes
  std::string os = "linux";
  std::optional<ImageStore> store = std::nullopt;  // where `docker save` archives are unpacked
};

namespace detail {

/// What an opened image holds: where its blobs are, its config and its layers.
struct ImageData {
  std::string dir;
  std::string config_digest;
  ImageConfig config;
  std::vector<ImageLayer> layers;
};

/// Reads the config blob: the run defaults and the diff_ids, which also key the store
/// (docker save layers are uncompressed, so their diff_id is their digest too).
inline result<void> apply_config(ImageData& d, const std::string& text,
                                 std::vector<ImageLayer> layers, const ImageOptions& options) {
  HUTCH_TRY(auto config, parse_json(text, d.config_digest));
  d.config.os = string_of(config, "os");
  d.config.architecture = string_of(config, "architecture");
  if (!options.architecture.empty() && !d.config.architecture.empty() &&
      d.config.architecture != options.architecture) {
    return make_error(image_step::open, ENOEXEC, d.config.os + "/" + d.config.architecture,
                      fmt::format("the image is built for another architecture (this host "
                                  "runs {})",
                                  options.architecture));
  }
  if (config.contains("config") && config["config"].is_object()) {
    const auto& c = config["config"];
    d.config.entrypoint = strings_of(c, "Entrypoint");
    d.config.cmd = strings_of(c, "Cmd");
    d.config.env = strings_of(c, "Env");
    d.config.working_dir = string_of(c, "WorkingDir");
    d.config.user = string_of(c, "User");
    d.config.stop_signal = string_of(c, "StopSignal");
    if (c.contains("ExposedPorts") && c["ExposedPorts"].is_object()) {
      for (const auto& [port, _] : c["ExposedPorts"].items())
        d.config.exposed_ports.push_back(port);
    }
  }
  std::vector<std::string> diff_ids;
  if (config.contains("rootfs") && config["rootfs"].is_object()) {
    diff_ids = strings_of(config["rootfs"], "diff_ids");
  }
  if (diff_ids.size() != layers.size()) {
    return make_error(
        image_step::open, EINVAL, d.config_digest,
        fmt::format("the config lists {} diff_ids for {} layers", diff_ids.size(), layers.size()));
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (!valid_digest(diff_ids[i])) {
      return make_error(image_step::open, EINVAL, diff_ids[i], "not a sha256 diff_id");
    }
    layers[i].diff_id = diff_ids[i];
    if (layers[i].digest.empty()) layers[i].digest = diff_ids[i];
  }
  d.layers = std::move(layers);
  return success();
}

}  // namespace detail
}  // namespace hutch
