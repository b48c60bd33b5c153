// hutch — checks on a container description before anything is created: every mistake the
// host can see fails spawn() here, with nothing made.
#pragma once

#include <fcntl.h>
#include <linux/filter.h>
#include <sys/resource.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "spec.hpp"

namespace hutch::detail {

inline bool valid_hostname(std::string_view name) {
  // sethostname(2) takes up to HOST_NAME_MAX (64) bytes; we also hold it to RFC 1123 labels
  // so what the container sees is a name resolvers accept.
  if (name.empty() || name.size() > 64) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || (label == 0 && c == '-') || ++label > 63) return false;
  }
  return name.back() != '-' && name.back() != '.';
}

inline bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

inline result<void> check_id_map(const std::vector<IdMap>& map, std::string_view which) {
  if (map.size() > 340) {
    return invalid(std::string(which), "at most 340 lines (user_namespaces(7))");
  }
  for (std::size_t i = 0; i < map.size(); ++i) {
    const IdMap& a = map[i];
    if (a.count == 0) return invalid(std::string(which), "a line maps zero ids");
    if (std::uint64_t{a.inside} + a.count > 0x100000000ull ||
        std::uint64_t{a.outside} + a.count > 0x100000000ull) {
      return invalid(std::string(which), "a line maps ids past 2^32 - 1");
    }
    for (std::size_t j = 0; j < i; ++j) {
      const IdMap& b = map[j];
      auto overlap = [](std::uint64_t x, std::uint64_t xn, std::uint64_t y, std::uint64_t yn) {
        return x < y + yn && y < x + xn;
      };
      if (overlap(a.inside, a.count, b.inside, b.count)) {
        return invalid(std::string(which), "lines overlap inside the container");
      }
      if (overlap(a.outside, a.count, b.outside, b.count)) {
        return invalid(std::string(which), "lines overlap on the host");
      }
    }
  }
  return success();
}

/// With a user namespace, the command's uid, gid and groups must be mapped in it; say so
/// here rather than let setresuid fail with a bare EINVAL inside.
inline result<void> check_user(const ProcessSpec& c, Namespaces namespaces,
                               const std::vector<IdMap>& uid_map,
                               const std::vector<IdMap>& gid_map) {
  if (!c.user || !namespaces.contains(Namespace::user)) return success();
  auto mapped = [](const std::vector<IdMap>& map, std::uint32_t id) {
    if (map.empty()) return id == 0;  // the default maps container root alone
    return std::any_of(map.begin(), map.end(),
                       [&](const IdMap& m) { return id >= m.inside && id - m.inside < m.count; });
  };
  auto unmapped = [](std::string_view what, std::uint32_t id, const std::vector<IdMap>& map) {
    std::string ranges = map.empty() ? "0" : "";
    for (const IdMap& m : map) {
      if (!ranges.empty()) ranges += ", ";
      ranges += m.count == 1 ? std::to_string(m.inside)
                             : fmt::format("{}-{}", m.inside, m.inside + m.count - 1);
    }
    return invalid(
        fmt::format("{} {}", what, id),
        fmt::format("not mapped in the container's user namespace (it maps {})", ranges));
  };
  if (!mapped(uid_map, c.user->uid)) return unmapped("uid", c.user->uid, uid_map);
  if (!mapped(gid_map, c.user->gid)) return unmapped("gid", c.user->gid, gid_map);
  for (gid_t g : c.user->groups) {
    if (!mapped(gid_map, g)) return unmapped("group", g, gid_map);
  }
  return success();
}

/// The command and its environment.
inline result<void> check_command(const ProcessSpec& c) {
  if (c.argv.empty() || c.argv[0].empty()) return invalid("command", "the command is empty");
  for (const auto& a : c.argv) {
    if (has_nul(a)) return invalid(a, "an argument contains a NUL byte");
  }
  for (const auto& [key, value] : c.env_changes) {
    if (key.empty() || key.find('=') != std::string::npos || has_nul(key)) {
      return invalid(key, "environment variable names may not be empty or contain '='");
    }
    if (value && has_nul(*value)) return invalid(key, "the value contains a NUL byte");
  }
  if (c.cwd && (c.cwd->empty() || has_nul(*c.cwd))) {
    return invalid(c.cwd.value_or(""), "the working directory is empty or has a NUL byte");
  }
  if (c.oom_score_adj && (*c.oom_score_adj < -1000 || *c.oom_score_adj > 1000)) {
    return invalid(std::to_string(*c.oom_score_adj), "oom_score_adj is -1000..1000");
  }
  return success();
}

/// The container's namespaces and id maps.
inline result<void> check_process(const Spec& c) {
  HUTCH_TRYV(check_command(c));
  if (c.hostname) {
    if (!c.namespaces.contains(Namespace::uts)) {
      return invalid(*c.hostname, "setting a hostname needs Namespace::uts");
    }
    if (!valid_hostname(*c.hostname)) {
      return invalid(*c.hostname, "a hostname is 1-64 characters of letters, digits, '-' and '.'");
    }
  }
  if ((!c.uid_map.empty() || !c.gid_map.empty()) && !c.namespaces.contains(Namespace::user)) {
    return invalid("uid_map", "id maps need Namespace::user");
  }
  HUTCH_TRYV(check_id_map(c.uid_map, "uid_map"));
  HUTCH_TRYV(check_id_map(c.gid_map, "gid_map"));
  if (c.time_offsets && !c.namespaces.contains(Namespace::time)) {
    return invalid("time_offsets", "clock offsets need Namespace::time");
  }
  return check_user(c, c.namespaces, c.uid_map, c.gid_map);
}

/// Whether `key` is a kernel parameter of a namespace the container has (never one of the
/// host's alone): net.* with a network namespace, the System V IPC and mqueue ones with an ipc
/// namespace, the uts names with a uts namespace.
inline bool namespaced_sysctl(std::string_view key, Namespaces ns) {
  if (key.starts_with("net.")) return ns.contains(Namespace::net);
  if (key.starts_with("fs.mqueue.")) return ns.contains(Namespace::ipc);
  for (std::string_view ipc :
       {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}) {
    if (key == ipc) return ns.contains(Namespace::ipc);
  }
  if (key == "kernel.domainname" || key == "kernel.hostname") return ns.contains(Namespace::uts);
  return false;
}

/// Domain name, sysctls, joined namespaces.
inline result<void> check_namespaces(const Spec& c) {
  if (c.domainname) {
    if (!c.namespaces.contains(Namespace::uts)) {
      return invalid(*c.domainname, "setting a domain name needs Namespace::uts");
    }
    if (c.domainname->empty() || c.domainname->size() > 64 || has_nul(*c.domainname)) {
      return invalid(*c.domainname, "a domain name is 1-64 bytes");
    }
  }
  for (const auto& [key, value] : c.sysctls) {
    const bool shaped =
        !key.empty() && key.size() < 200 &&
        key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") == std::string::npos &&
        key.find("..") == std::string::npos && key.front() != '.' && key.back() != '.';
    if (!shaped || !namespaced_sysctl(key, c.namespaces)) {
      return invalid(key, "not a kernel parameter of the container's own namespaces");
    }
    if (has_nul(value) || value.size() > 4096) return invalid(key, "the value is not text");
    if (c.network_made_ahead && key.starts_with("net.") && c.namespaces.contains(Namespace::user)) {
      return invalid(key,
                     "a network namespace made ahead belongs to the host's user namespace: "
                     "the container's root may not set its net.* sysctls");
    }
  }
  for (const auto& j : c.joined) {
    if (j.type == Namespace::user || j.type == Namespace::mount) {
      return invalid(j.path, fmt::format("joining an existing {} namespace is not supported",
                                         proc_name(j.type)));
    }
    if (j.path.empty() || j.path[0] != '/' || has_nul(j.path)) {
      return invalid(j.path, "a namespace to join is named by an absolute path");
    }
  }
  return success();
}

/// Descriptors passed in, stdio sources.
inline result<void> check_fds(const ProcessSpec& c) {
  if (c.passed_fds.size() > 60) return invalid("pass_fd", "at most 60 passed descriptors");
  for (std::size_t i = 0; i < c.passed_fds.size(); ++i) {
    const auto& p = c.passed_fds[i];
    if (p.inside < 3) {
      return invalid(std::to_string(p.inside), "pass_fd targets 3 and up; use std_in/out/err");
    }
    if (p.inside > 1023) return invalid(std::to_string(p.inside), "pass_fd targets below 1024");
    if (::fcntl(p.host, F_GETFD) < 0) {
      return make_error(Step::validate, EBADF, std::to_string(p.host), "pass_fd source");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (c.passed_fds[j].inside == p.inside) {
        return invalid(std::to_string(p.inside), "two fds passed to the same number");
      }
    }
  }
  for (const auto& s : c.stdio) {
    if (s.kind() == Stdio::Kind::fd && ::fcntl(s.borrowed_fd(), F_GETFD) < 0) {
      return make_error(Step::validate, EBADF, std::to_string(s.borrowed_fd()), "Stdio::fd source");
    }
  }
  return success();
}

/// umask, seccomp program, rlimits.
inline result<void> check_limits(const ProcessSpec& c) {
  if (c.umask > 0777) return invalid(fmt::format("{:o}", c.umask), "a umask is at most 0777");
  if (c.seccomp.size() > BPF_MAXINSNS) {
    return invalid(std::to_string(c.seccomp.size()),
                   "a seccomp program has at most 4096 instructions");
  }
  for (const Rlimit& r : c.rlimits) {
    if (r.resource < 0 || r.resource >= RLIM_NLIMITS) {
      return invalid(std::to_string(r.resource), "not an RLIMIT_* resource");
    }
    if (r.soft > r.hard) {
      return invalid(fmt::format("{} {}", r.soft, r.hard), "the soft limit exceeds the hard");
    }
  }
  return success();
}

/// Every check on a description that needs no kernel object.
inline result<void> validate(const Spec& c) {
  HUTCH_TRYV(check_process(c));
  HUTCH_TRYV(check_namespaces(c));
  HUTCH_TRYV(check_fds(c));
  return check_limits(c);
}

}  // namespace hutch::detail
