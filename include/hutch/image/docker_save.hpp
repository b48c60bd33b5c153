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
#include "tree.hpp"

namespace hutch::detail {

/// The entry of a `docker save` manifest.json for `reference` (a RepoTag, or its tag).
inline result<nlohmann::json> pick_saved(const nlohmann::json& list, const std::string& reference,
                                         const std::string& where) {
  std::optional<nlohmann::json> chosen;
  std::string known;
  for (const auto& m : list) {
    if (!m.is_object()) return bad_field(where, "manifest", "must be a list of objects");
    HUTCH_TRY(const std::vector<std::string> tags, strings_field(m, "RepoTags", where));
    bool match = reference.empty() && list.size() == 1;
    for (const auto& t : tags) {
      known += (known.empty() ? "" : ", ") + t;
      match |= !reference.empty() && (t == reference || t.ends_with(":" + reference));
    }
    if (match) chosen = m;
  }
  if (!chosen) {
    return make_error(image_step::open, ENOENT, reference.empty() ? where : reference,
                      fmt::format("no such image in the archive's manifest.json (it has: {})",
                                  known.empty() ? "none tagged" : known));
  }
  return *chosen;
}

/// A path inside the archive, never leaving it.
inline result<std::string> archive_member(const std::string& name, std::string_view what) {
  HUTCH_TRY(const std::vector<std::string> parts, image_path(name, what));
  if (parts.empty()) return make_error(image_step::open, EINVAL, name, fmt::format("no {}", what));
  return join(parts, parts.size());
}

inline result<void> open_docker_save(ImageData& d, const std::string& reference,
                                     const ImageOptions& options) {
  const std::string where = d.dir + "/manifest.json";
  HUTCH_TRY(const std::string text, read_whole(where));
  const auto list = nlohmann::json::parse(text, nullptr, false);
  if (list.is_discarded() || !list.is_array() || list.empty()) {
    return make_error(image_step::open, EINVAL, where, "not a docker save manifest");
  }
  HUTCH_TRY(const nlohmann::json chosen, pick_saved(list, reference, where));
  HUTCH_TRY(const std::string config_field, string_field(chosen, "Config", where));
  HUTCH_TRY(const std::string config_name, archive_member(config_field, "config path"));
  // "<hex>.json" (docker < 25) or "blobs/sha256/<hex>": the name is the digest.
  std::string hex = config_name.substr(config_name.rfind('/') + 1);
  if (hex.ends_with(".json")) hex.resize(hex.size() - 5);
  if (!valid_digest("sha256:" + hex)) {
    return make_error(image_step::open, EINVAL, config_name, "not a config named by its digest");
  }
  HUTCH_TRY(const std::string config_text, read_whole(d.dir + "/" + config_name, max_config_size));
  if (Sha256::of(config_text) != "sha256:" + hex) {
    return make_error(image_step::verify, EBADMSG, d.dir + "/" + config_name,
                      "the config's digest is not its name");
  }
  d.config_digest = "sha256:" + hex;
  std::vector<ImageLayer> layers;
  HUTCH_TRY(const std::vector<std::string> paths, strings_field(chosen, "Layers", where));
  for (const auto& path : paths) {
    HUTCH_TRY(const std::string member, archive_member(path, "layer path"));
    ImageLayer layer;
    layer.blob = d.dir + "/" + member;
    layer.media_type = "application/vnd.docker.image.rootfs.diff.tar";
    struct stat st {};
    if (::lstat(layer.blob.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return make_error(image_step::open, ENOENT, layer.blob, "a layer is missing");
    }
    layer.size = static_cast<std::uint64_t>(st.st_size);
    layers.push_back(std::move(layer));
  }
  return apply_config(d, config_text, std::move(layers), options);
}

/// One member of the archive written into the tree: directories and regular files only
/// (owners, devices and links that could leave it are never made; a layer tar inside is
/// verified and unpacked later on its own).
inline result<void> save_member(archive* a, archive_entry* entry, Tree& tree,
                                UnpackLimits& budget) {
  HUTCH_TRY(const std::vector<std::string> parts,
            image_path(::archive_entry_pathname(entry) ? ::archive_entry_pathname(entry) : "",
                       "an archive path"));
  if (parts.empty()) return success();
  const mode_t type = ::archive_entry_filetype(entry);
  if (type == AE_IFDIR) {
    HUTCH_TRY(const int dir, tree.directory(parts, parts.size(), true));
    (void)dir;
    return success();
  }
  if (type != AE_IFREG) return success();
  const la_int64_t size = ::archive_entry_size(entry);
  if (size < 0 || static_cast<std::uint64_t>(size) > budget.max_bytes) {
    return make_error(image_step::open, EFBIG, join(parts, parts.size()),
                      "the archive unpacks to more than its limit");
  }
  budget.max_bytes -= static_cast<std::uint64_t>(size);
  HUTCH_TRY(const int dir, tree.directory(parts, parts.size() - 1, true));
  Fd file(::openat(dir, parts.back().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                   0644));
  if (!file) return last_error(image_step::open, join(parts, parts.size()));
  if (::archive_read_data_into_fd(a, file.get()) != ARCHIVE_OK) {
    return make_error(image_step::open, EIO, join(parts, parts.size()), ::archive_error_string(a));
  }
  return success();
}

/// A `docker save` archive is unpacked once into the store, keyed by its own digest.
inline result<std::string> unpack_archive(const std::string& path, const ImageStore& store) {
  Sha256 hash;
  {
    Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) return last_error(image_step::open, path);
    if (!S_ISREG(st.st_mode)) return make_error(image_step::open, EINVAL, path, "not a file");
    char buffer[65536];
    ssize_t n;
    while ((n = sys::retry([&] { return ::read(fd.get(), buffer, sizeof buffer); })) > 0) {
      hash.update(buffer, static_cast<std::size_t>(n));
    }
    if (n < 0) return last_error(image_step::open, path);
  }
  return store_entry(
      store, "archives/sha256", hex_of(hash.digest()), [&](const std::string& tmp) -> result<void> {
        archive* a = ::archive_read_new();
        ::archive_read_support_filter_all(a);
        ::archive_read_support_format_tar(a);
        std::unique_ptr<archive, int (*)(archive*)> owner(a, ::archive_read_free);
        if (::archive_read_open_filename(a, path.c_str(), 65536) != ARCHIVE_OK) {
          return make_error(image_step::open, EINVAL, path, ::archive_error_string(a));
        }
        HUTCH_TRY(Tree tree, Tree::open(tmp));
        UnpackLimits budget = store.limits();
        archive_entry* entry;
        int r;
        while ((r = ::archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
          HUTCH_TRYV(save_member(a, entry, tree, budget));
        }
        if (r != ARCHIVE_EOF) {
          return make_error(image_step::open, EINVAL, path, ::archive_error_string(a));
        }
        return success();
      });
}

}  // namespace hutch::detail
