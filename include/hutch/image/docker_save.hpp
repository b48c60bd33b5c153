// hutch — image module: reading a `docker save` archive, unpacked once into the store.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "config.hpp"
#include "digest.hpp"
#include "json.hpp"
#include "store.hpp"

namespace hutch::detail {

inline result<void> open_docker_save(ImageData& d, const std::string& reference,
                                     const ImageOptions& options) {
  HUTCH_TRY(auto text, read_whole(d.dir + "/manifest.json"));
  auto list = nlohmann::json::parse(text, nullptr, false);
  if (list.is_discarded() || !list.is_array() || list.empty()) {
    return make_error(image_step::open, EINVAL, d.dir + "/manifest.json",
                      "not a docker save manifest");
  }
  std::optional<nlohmann::json> chosen;
  for (const auto& m : list) {
    auto tags = strings_of(m, "RepoTags");
    bool match = reference.empty()
                     ? list.size() == 1
                     : std::any_of(tags.begin(), tags.end(), [&](const std::string& t) {
                         return t == reference || t.ends_with(":" + reference);
                       });
    if (match) chosen = m;
  }
  if (!chosen) {
    return make_error(image_step::open, ENOENT, reference.empty() ? d.dir : reference,
                      "no such image in the archive's manifest.json");
  }
  std::string config_name = string_of(*chosen, "Config");
  // "<hex>.json" (docker < 25) or "blobs/sha256/<hex>": the name is the digest.
  std::string hex = std::filesystem::path(config_name).stem().string();
  if (config_name.starts_with("blobs/sha256/")) hex = config_name.substr(13);
  nlohmann::json config_descriptor = {{"digest", "sha256:" + hex}};
  if (!valid_digest("sha256:" + hex) || config_name.find("..") != std::string::npos) {
    return make_error(image_step::open, EINVAL, config_name, "not a config named by its digest");
  }
  HUTCH_TRY(auto config_text, read_whole(d.dir + "/" + config_name));
  if (Sha256::of(config_text) != "sha256:" + hex) {
    return make_error(image_step::verify, EBADMSG, d.dir + "/" + config_name,
                      "the config's digest is not its name");
  }
  d.config_digest = "sha256:" + hex;
  std::vector<ImageLayer> layers;
  for (const auto& path : strings_of(*chosen, "Layers")) {
    if (path.find("..") != std::string::npos || path.starts_with("/")) {
      return make_error(image_step::open, EINVAL, path, "a layer path outside the archive");
    }
    ImageLayer layer;
    layer.blob = d.dir + "/" + path;
    layer.media_type = "application/vnd.docker.image.rootfs.diff.tar";
    struct stat st {};
    if (::stat(layer.blob.c_str(), &st) != 0) {
      return make_error(image_step::open, ENOENT, layer.blob, "a layer is missing");
    }
    layer.size = static_cast<std::uint64_t>(st.st_size);
    layers.push_back(std::move(layer));
  }
  return apply_config(d, config_text, std::move(layers), options);
}

/// A `docker save` archive is unpacked once into the store, keyed by its own digest.
inline result<std::string> unpack_archive(const std::string& path, const ImageStore& store) {
  Sha256 hash;
  {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return last_error(image_step::open, path);
    char buffer[65536];
    ssize_t n;
    while ((n = sys::retry([&] { return ::read(fd.get(), buffer, sizeof buffer); })) > 0) {
      hash.update(buffer, static_cast<std::size_t>(n));
    }
    if (n < 0) return last_error(image_step::open, path);
  }
  const std::string final = store.dir() + "/archives/sha256/" + hex_of(hash.digest());
  HUTCH_TRYV(make_dirs(store.dir()));
  return store_entry(store.dir(), final, [&](const std::string& tmp) -> result<void> {
    // The archive's files are plain data (never extracted as owners, devices or links
    // that leave it): a layer tar inside is verified and unpacked later on its own.
    archive* a = ::archive_read_new();
    ::archive_read_support_filter_all(a);
    ::archive_read_support_format_tar(a);
    std::unique_ptr<archive, int (*)(archive*)> owner(a, ::archive_read_free);
    if (::archive_read_open_filename(a, path.c_str(), 65536) != ARCHIVE_OK) {
      return make_error(image_step::open, EINVAL, path, ::archive_error_string(a));
    }
    archive_entry* entry;
    int r;
    while ((r = ::archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
      std::string name = ::archive_entry_pathname(entry);
      while (name.starts_with("./")) name.erase(0, 2);
      if (name.empty() || name.starts_with("/") || name.find("..") != std::string::npos) {
        if (name.empty()) continue;
        return make_error(image_step::open, EPERM, name, "an archive path outside the archive");
      }
      const std::string out = tmp + "/" + name;
      if (::archive_entry_filetype(entry) == AE_IFDIR) {
        HUTCH_TRYV(make_dirs(out));
        continue;
      }
      if (::archive_entry_filetype(entry) != AE_IFREG) continue;
      HUTCH_TRYV(make_dirs(std::filesystem::path(out).parent_path().string()));
      Fd file(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
      if (!file) return last_error(image_step::open, out);
      if (::archive_read_data_into_fd(a, file.get()) != ARCHIVE_OK) {
        return make_error(image_step::open, EIO, name, ::archive_error_string(a));
      }
    }
    if (r != ARCHIVE_EOF)
      return make_error(image_step::open, EINVAL, path, ::archive_error_string(a));
    return success();
  });
}

}  // namespace hutch::detail
