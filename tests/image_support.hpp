// Images built in code for the tests: tars (files, directories, links, devices, xattrs),
// gzip, and OCI image layouts written blob by blob.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <fstream>
#include <hutch/image.hpp>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

namespace hutch_test {

namespace fs = std::filesystem;
using nlohmann::json;

struct TarEntry {
  TarEntry(std::string p, char t = 'f', std::string c = {}, unsigned m = 0644)
      : path(std::move(p)), type(t), content_or_target(std::move(c)), mode(m) {}
  TarEntry xattr(std::string name, std::string value) const {
    TarEntry e = *this;
    e.xattrs.emplace_back(std::move(name), std::move(value));
    return e;
  }
  TarEntry device(unsigned major_number, unsigned minor_number) const {
    TarEntry e = *this;
    e.major = major_number;
    e.minor = minor_number;
    return e;
  }
  std::string path;
  char type;  // f file, d dir, l symlink, h hard link, c/b char/block device, p fifo
  std::string content_or_target;
  unsigned mode;
  std::vector<std::pair<std::string, std::string>> xattrs = {};
  unsigned major = 0, minor = 0;
  unsigned uid = 0, gid = 0;
};

inline la_ssize_t append(archive*, void* out, const void* data, std::size_t size) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return static_cast<la_ssize_t>(size);
}

inline std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr, append, nullptr);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_mtime(entry, 1700000000, 0);
    archive_entry_set_uid(entry, e.uid);
    archive_entry_set_gid(entry, e.gid);
    for (const auto& [name, value] : e.xattrs) {
      archive_entry_xattr_add_entry(entry, name.c_str(), value.data(), value.size());
    }
    switch (e.type) {
      case 'd':
        archive_entry_set_filetype(entry, AE_IFDIR);
        archive_entry_set_perm(entry, 0755);
        break;
      case 'l':
        archive_entry_set_filetype(entry, AE_IFLNK);
        archive_entry_set_perm(entry, 0777);
        archive_entry_set_symlink(entry, e.content_or_target.c_str());
        break;
      case 'c':
      case 'b':
        archive_entry_set_filetype(entry, e.type == 'c' ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_perm(entry, e.mode);
        archive_entry_set_rdevmajor(entry, e.major);
        archive_entry_set_rdevminor(entry, e.minor);
        break;
      case 'p':
        archive_entry_set_filetype(entry, AE_IFIFO);
        archive_entry_set_perm(entry, e.mode);
        break;
      case 'h':
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_perm(entry, e.mode);
        archive_entry_set_hardlink(entry, e.content_or_target.c_str());
        break;
      default:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_perm(entry, e.mode);
        archive_entry_set_size(entry, static_cast<la_int64_t>(e.content_or_target.size()));
    }
    archive_write_header(a, entry);
    if (e.type == 'f')
      archive_write_data(a, e.content_or_target.data(), e.content_or_target.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline std::string gzip(const std::string& data) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_add_filter_gzip(a);
  archive_write_open(a, &out, nullptr, append, nullptr);
  archive_entry* entry = archive_entry_new();
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_write_header(a, entry);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(entry);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline std::string file_bytes(const std::string& path) {
  return read_file(path);
}

/// Writes an OCI image layout, blob by blob.
class Layout {
 public:
  explicit Layout(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_ / "blobs/sha256");
    std::ofstream(dir_ / "oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
  }
  json blob(const std::string& media_type, const std::string& bytes) {
    std::string digest = hutch::detail::Sha256::of(bytes);
    std::ofstream(dir_ / "blobs/sha256" / digest.substr(7), std::ios::binary) << bytes;
    return {{"mediaType", media_type}, {"digest", digest}, {"size", bytes.size()}};
  }
  /// An image manifest for `layers` (uncompressed tars; `gzipped[i]` compresses one).
  json image(const std::vector<std::string>& layers, const std::vector<bool>& gzipped,
             json run_config, const std::string& arch = hutch::detail::host_architecture()) {
    json diff_ids = json::array(), descriptors = json::array();
    for (std::size_t i = 0; i < layers.size(); ++i) {
      diff_ids.push_back(hutch::detail::Sha256::of(layers[i]));
      descriptors.push_back(
          gzipped[i] ? blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip(layers[i]))
                     : blob("application/vnd.oci.image.layer.v1.tar", layers[i]));
    }
    json config = {{"architecture", arch},
                   {"os", "linux"},
                   {"config", std::move(run_config)},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config", blob("application/vnd.oci.image.config.v1+json", config.dump())},
                     {"layers", descriptors}};
    return blob("application/vnd.oci.image.manifest.v1+json", manifest.dump());
  }
  void index(std::vector<std::pair<std::string, json>> tagged) {
    json manifests = json::array();
    for (auto& [tag, descriptor] : tagged) {
      if (!tag.empty()) descriptor["annotations"] = {{"org.opencontainers.image.ref.name", tag}};
      manifests.push_back(descriptor);
    }
    std::ofstream(dir_ / "index.json")
        << json{{"schemaVersion", 2}, {"manifests", manifests}}.dump();
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

/// The base layer: static busybox and a few of its applets.
inline std::string busybox_layer() {
  std::vector<TarEntry> e = {{"bin", 'd'},
                             {"etc", 'd'},
                             {"tmp", 'd'},
                             {"bin/busybox", 'f', file_bytes("/bin/busybox"), 0755}};
  for (const char* applet : {"sh", "ls", "cat", "id", "echo", "test", "pwd", "true"}) {
    e.push_back({std::string("bin/") + applet, 'l', "busybox"});
  }
  e.push_back({"etc/passwd", 'f', "root:x:0:0:root:/root:/bin/sh\n"});
  return make_tar(e);
}

/// An index under `tag` with two images, each busybox and /arch ("host\n" or "other\n",
/// printed by its Cmd): one for this host's architecture, one for s390x (listed first).
inline void two_platform_image(Layout& layout, const std::string& tag) {
  auto host = layout.image({busybox_layer(), make_tar({{"arch", 'f', "host\n"}})}, {true, false},
                           {{"Cmd", {"/bin/cat", "/arch"}}});
  auto other = layout.image({busybox_layer(), make_tar({{"arch", 'f', "other\n"}})}, {true, false},
                            {{"Cmd", {"/bin/cat", "/arch"}}}, "s390x");
  other["platform"] = {{"os", "linux"}, {"architecture", "s390x"}};
  host["platform"] = {{"os", "linux"}, {"architecture", hutch::detail::host_architecture()}};
  const json index = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.index.v1+json"},
                      {"manifests", {other, host}}};
  layout.index({{tag, layout.blob("application/vnd.oci.image.index.v1+json", index.dump())}});
}

}  // namespace hutch_test
