// hutch — users of a root filesystem: `docker run --user` resolved through the root's own
// /etc/passwd and /etc/group.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"

namespace hutch {

/// Resolves a user as `docker run --user` and an image's `User` give it ("name", "uid",
/// "name:group", "uid:gid") through the container's own /etc/passwd and /etc/group, looked up
/// in `roots`: a root filesystem directory, or an image's layers top first (the topmost file
/// is the one the container sees; an overlayfs whiteout hides the ones below).
inline result<std::pair<uid_t, gid_t>> resolve_user(const std::vector<std::string>& roots,
                                                    const std::string& spec) {
  if (spec.empty()) return std::pair<uid_t, gid_t>{0, 0};
  auto colon = spec.find(':');
  std::string user = spec.substr(0, colon);
  std::optional<std::string> group;
  if (colon != std::string::npos) group = spec.substr(colon + 1);
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  // name -> (id, gid) from passwd-like lines "name:x:id:gid:..."
  auto lookup = [&](const char* file,
                    const std::string& name) -> std::optional<std::pair<unsigned, unsigned>> {
    for (const std::string& dir : roots) {
      std::string path = dir + "/" + file;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) continue;
      if (S_ISCHR(st.st_mode)) break;  // a whiteout: deleted above
      std::ifstream in(path);
      for (std::string line; std::getline(in, line);) {
        std::vector<std::string> f;
        std::stringstream fields(line);
        for (std::string x; std::getline(fields, x, ':');) f.push_back(x);
        if (f.size() >= 3 && f[0] == name && numeric(f[2])) {
          unsigned second = f.size() >= 4 && numeric(f[3]) ? std::stoul(f[3]) : 0;
          return std::pair<unsigned, unsigned>{std::stoul(f[2]), second};
        }
      }
      break;  // the topmost file is the one the container sees
    }
    return std::nullopt;
  };
  uid_t uid;
  gid_t gid;
  if (numeric(user)) {
    uid = static_cast<uid_t>(std::stoul(user));
    gid = uid;
  } else {
    auto found = lookup("etc/passwd", user);
    if (!found) {
      return make_error(Step::validate, ENOENT, user,
                        "no such user in the container's /etc/passwd");
    }
    uid = found->first;
    gid = found->second;
  }
  if (group) {
    if (numeric(*group)) {
      gid = static_cast<gid_t>(std::stoul(*group));
    } else {
      auto found = lookup("etc/group", *group);
      if (!found) {
        return make_error(Step::validate, ENOENT, *group,
                          "no such group in the container's /etc/group");
      }
      gid = found->first;
    }
  }
  return std::pair<uid_t, gid_t>{uid, gid};
}

}  // namespace hutch
