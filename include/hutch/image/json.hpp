// hutch — image module: reading the image's JSON documents (nlohmann/json, whose exceptions
// never leave this file: parse errors come back as Errors).
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../error.hpp"
#include "digest.hpp"

namespace hutch::detail {

inline result<std::string> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(image_step::open, errno ? errno : ENOENT, path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline result<nlohmann::json> parse_json(const std::string& text, const std::string& what) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return make_error(image_step::open, EINVAL, what, "not a JSON object");
  }
  return json;
}

inline std::vector<std::string> strings_of(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array()) {
    for (const auto& v : j[key]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

inline std::string string_of(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

}  // namespace hutch::detail
