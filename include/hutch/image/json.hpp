// hutch — image module: reading the image's JSON documents strictly (nlohmann/json, whose
// exceptions never leave this file: a malformed document comes back as an Error that names
// the field and the document).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../detail/syscall.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "digest.hpp"

namespace hutch::detail {

/// The largest manifest or index hutch reads (the common limit among registries).
inline constexpr std::size_t max_manifest_size = 4 << 20;
/// The largest image config hutch reads.
inline constexpr std::size_t max_config_size = 16 << 20;

/// A whole regular file of at most `max` bytes: never a FIFO (opened without blocking), a
/// device or a file that grows past the bound while it is read.
inline result<std::string> read_whole(const std::string& path,
                                      std::size_t max = max_manifest_size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return last_error(image_step::open, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return last_error(image_step::open, path);
  if (!S_ISREG(st.st_mode)) return make_error(image_step::open, EINVAL, path, "not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max) {
    return make_error(image_step::open, EFBIG, path,
                      fmt::format("larger than the {} bytes hutch reads of it", max));
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n =
        sys::retry([&] { return ::read(fd.get(), text.data() + done, text.size() - done); });
    if (n < 0) return last_error(image_step::open, path);
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  text.resize(done);
  char extra;
  if (sys::retry([&] { return ::read(fd.get(), &extra, 1); }) > 0) {
    return make_error(image_step::open, EFBIG, path, "the file grew while it was read");
  }
  return text;
}

inline Error bad_field(std::string_view where, std::string_view field, std::string_view why) {
  return make_error(image_step::open, EINVAL, std::string(where),
                    fmt::format("\"{}\" {}", field, why));
}

inline result<nlohmann::json> parse_json(std::string_view text, std::string_view where) {
  auto json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return make_error(image_step::open, EINVAL, std::string(where), "not a JSON object");
  }
  return json;
}

/// An optional string field: absent (or null) is empty; any other type is an error.
inline result<std::string> string_field(const nlohmann::json& j, const char* key,
                                        std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return bad_field(where, key, "must be a string");
  return it->get<std::string>();
}

/// An optional array of strings: absent (or null) is empty.
inline result<std::vector<std::string>> strings_field(const nlohmann::json& j, const char* key,
                                                      std::string_view where) {
  std::vector<std::string> out;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return bad_field(where, key, "must be an array of strings");
  for (const auto& v : *it) {
    if (!v.is_string()) return bad_field(where, key, "must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

/// An optional object field: absent (or null) gives nullptr.
inline result<const nlohmann::json*> object_field(const nlohmann::json& j, const char* key,
                                                  std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return static_cast<const nlohmann::json*>(nullptr);
  if (!it->is_object()) return bad_field(where, key, "must be an object");
  return &*it;
}

/// A required non-negative integer.
inline result<std::uint64_t> size_field(const nlohmann::json& j, const char* key,
                                        std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end()) return bad_field(where, key, "is missing");
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer()) return bad_field(where, key, "is negative");
  return bad_field(where, key, "must be a non-negative integer");
}

}  // namespace hutch::detail
