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
#include "oci.hpp"
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
inline result<void> read_run_config(const nlohmann::json& c, ImageConfig& out,
                                    std::string_view where) {
  HUTCH_TRY(out.entrypoint, strings_field(c, "Entrypoint", where));
  HUTCH_TRY(out.cmd, strings_field(c, "Cmd", where));
  HUTCH_TRY(out.env, strings_field(c, "Env", where));
  for (const auto& kv : out.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=' ||
        kv.find('\0') != std::string::npos) {
      return bad_field(where, "Env", fmt::format("has \"{}\", not KEY=VALUE", kv.substr(0, 64)));
    }
  }
  HUTCH_TRY(out.working_dir, string_field(c, "WorkingDir", where));
  HUTCH_TRY(out.user, string_field(c, "User", where));
  HUTCH_TRY(out.stop_signal, string_field(c, "StopSignal", where));
  HUTCH_TRY(const nlohmann::json* ports, object_field(c, "ExposedPorts", where));
  if (ports) {
    for (const auto& item : ports->items()) out.exposed_ports.push_back(item.key());
  }
  return success();
}

/// Reads the config blob: the run defaults and the diff_ids, which also key the store
/// (docker save layers are uncompressed, so their diff_id is their digest too). Every field
/// of the wrong type is an error that names it.
inline result<void> apply_config(ImageData& d, std::string_view text,
                                 std::vector<ImageLayer> layers, const ImageOptions& options) {
  const std::string where = d.config_digest.empty() ? "the image config" : d.config_digest;
  try {
    HUTCH_TRY(const nlohmann::json config, parse_json(text, where));
    HUTCH_TRY(d.config.os, string_field(config, "os", where));
    HUTCH_TRY(d.config.architecture, string_field(config, "architecture", where));
    if (!options.architecture.empty() && !d.config.architecture.empty() &&
        d.config.architecture != options.architecture) {
      return make_error(image_step::open, ENOEXEC, d.config.os + "/" + d.config.architecture,
                        fmt::format("the image is built for another architecture (this host "
                                    "runs {})",
                                    options.architecture));
    }
    HUTCH_TRY(const nlohmann::json* run, object_field(config, "config", where));
    if (run) HUTCH_TRYV(read_run_config(*run, d.config, where));
    HUTCH_TRY(const nlohmann::json* rootfs, object_field(config, "rootfs", where));
    if (!rootfs) return bad_field(where, "rootfs", "is missing");
    HUTCH_TRY(const std::string type, string_field(*rootfs, "type", where));
    if (type != "layers") return bad_field(where, "rootfs.type", "must be \"layers\"");
    HUTCH_TRY(const std::vector<std::string> diff_ids, strings_field(*rootfs, "diff_ids", where));
    if (diff_ids.size() != layers.size()) {
      return make_error(image_step::open, EINVAL, where,
                        fmt::format("the config lists {} diff_ids for {} layers", diff_ids.size(),
                                    layers.size()));
    }
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (!valid_digest(diff_ids[i])) {
        return make_error(image_step::open, EINVAL, diff_ids[i], "not a sha256 diff_id");
      }
      layers[i].diff_id = diff_ids[i];
      if (layers[i].digest.empty()) layers[i].digest = diff_ids[i];
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(image_step::open, EINVAL, where, e.what());
  }
  d.layers = std::move(layers);
  return success();
}

}  // namespace detail
}  // namespace hutch
