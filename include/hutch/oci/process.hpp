// hutch — OCI module: a runtime-spec config's "process" (a container's first process, or one
// `exec --process` runs) read into a Container or a Process.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../container.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "../rootfs.hpp"
#include "../security.hpp"
#include "mount_options.hpp"
#include "seccomp.hpp"

namespace hutch::oci {

namespace detail {

using nlohmann::json;
using oci::detail::bad;

inline result<std::string> string_at(const json& j, const char* key, std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return bad(fmt::format("{}.{}", where, key), "must be a string");
  return it->get<std::string>();
}

inline result<std::vector<std::string>> strings_at(const json& j, const char* key,
                                                   std::string_view where) {
  std::vector<std::string> out;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return bad(fmt::format("{}.{}", where, key), "must be an array of strings");
  for (const auto& v : *it) {
    if (!v.is_string()) return bad(fmt::format("{}.{}", where, key), "must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

/// An integer field; absent gives nothing.
inline result<std::optional<std::int64_t>> integer_at(const json& j, const char* key,
                                                      std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::int64_t>();
  if (!it->is_number_integer()) return bad(fmt::format("{}.{}", where, key), "must be an integer");
  return std::optional<std::int64_t>(it->get<std::int64_t>());
}

/// Fields of `j` that no key in `known` names are refused: what hutch does not know it cannot
/// honour.
inline result<void> only(const json& j, std::string_view where,
                         std::initializer_list<std::string_view> known) {
  if (!j.is_object()) return bad(where, "must be an object");
  for (const auto& [key, value] : j.items()) {
    if (value.is_null()) continue;
    bool found = false;
    for (std::string_view k : known) found |= key == k;
    if (!found) {
      return bad(fmt::format("{}.{}", where, key),
                 "a field hutch cannot honour (it could change what the container may reach)");
    }
  }
  return success();
}

/// Whether the Linux security module `name` ("apparmor", "selinux") is active on this host.
/// A label for an LSM that is not active is left unapplied, as runc and crun do: there is
/// nothing it would confine.
inline bool lsm_active(std::string_view name) {
  Fd fd(::open("/sys/kernel/security/lsm", O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buffer[512];
  const ssize_t n = ::read(fd.get(), buffer, sizeof buffer - 1);
  if (n <= 0) return false;
  const std::string list = std::string(",").append(buffer, static_cast<std::size_t>(n)).append(",");
  return list.find("," + std::string(name) + ",") != std::string::npos;
}

inline result<Capabilities> capability_set(const json& caps, const char* set) {
  HUTCH_TRY(const std::vector<std::string> names, strings_at(caps, set, "process.capabilities"));
  Capabilities out = Capabilities::none();
  for (const auto& name : names) {
    // A capability newer than hutch's list cannot be granted: leaving it out gives less.
    if (auto c = parse_capability(name)) out = out.add(*c);
  }
  return out;
}

template <class Builder>
inline result<void> read_capabilities(const json& p, Builder& c) {
  const auto it = p.find("capabilities");
  if (it == p.end() || it->is_null()) {
    c.capabilities(Capabilities::none());
    return success();
  }
  HUTCH_TRYV(only(*it, "process.capabilities",
                  {"bounding", "effective", "inheritable", "permitted", "ambient"}));
  CapabilitySets sets;
  HUTCH_TRY(sets.bounding, capability_set(*it, "bounding"));
  HUTCH_TRY(sets.effective, capability_set(*it, "effective"));
  HUTCH_TRY(sets.inheritable, capability_set(*it, "inheritable"));
  HUTCH_TRY(sets.permitted, capability_set(*it, "permitted"));
  HUTCH_TRY(const Capabilities ambient, capability_set(*it, "ambient"));
  // The kernel raises an ambient capability only if it is permitted and inheritable; engines
  // (and `runc spec`) list ambient ones without inheritable, and runc and crun skip what the
  // kernel refuses. So does hutch: an ambient set never grants what the other sets do not.
  sets.ambient = Capabilities::none();
  for (unsigned c = 0; c < 64; ++c) {
    const auto cap = static_cast<Capability>(c);
    if (ambient.contains(cap) && sets.permitted.contains(cap) && sets.inheritable.contains(cap)) {
      sets.ambient = sets.ambient.add(cap);
    }
  }
  c.capability_sets(sets);
  return success();
}

inline result<int> rlimit_number(const std::string& type) {
  static const std::pair<const char*, int> names[] = {{"RLIMIT_AS", RLIMIT_AS},
                                                      {"RLIMIT_CORE", RLIMIT_CORE},
                                                      {"RLIMIT_CPU", RLIMIT_CPU},
                                                      {"RLIMIT_DATA", RLIMIT_DATA},
                                                      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
                                                      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
                                                      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
                                                      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
                                                      {"RLIMIT_NICE", RLIMIT_NICE},
                                                      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
                                                      {"RLIMIT_NPROC", RLIMIT_NPROC},
                                                      {"RLIMIT_RSS", RLIMIT_RSS},
                                                      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
                                                      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
                                                      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
                                                      {"RLIMIT_STACK", RLIMIT_STACK}};
  for (const auto& [name, number] : names) {
    if (type == name) return number;
  }
  return bad(type, "not an rlimit");
}

template <class Builder>
inline result<void> read_rlimits(const json& p, Builder& c) {
  const auto it = p.find("rlimits");
  if (it == p.end() || it->is_null()) return success();
  if (!it->is_array()) return bad("process.rlimits", "must be an array");
  for (const auto& r : *it) {
    HUTCH_TRY(const std::string type, string_at(r, "type", "process.rlimits"));
    HUTCH_TRY(const int resource, rlimit_number(type));
    if (!r.contains("hard") || !r.contains("soft") || !r["hard"].is_number_unsigned() ||
        !r["soft"].is_number_unsigned()) {
      return bad(type, "an rlimit has a hard and a soft value");
    }
    c.rlimit(resource, r["soft"].get<std::uint64_t>(), r["hard"].get<std::uint64_t>());
  }
  return success();
}

inline result<void> read_user(const json& p, auto& c) {
  const auto it = p.find("user");
  if (it == p.end() || it->is_null()) return success();
  HUTCH_TRYV(only(*it, "process.user", {"uid", "gid", "umask", "additionalGids", "username"}));
  HUTCH_TRY(const auto uid, integer_at(*it, "uid", "process.user"));
  HUTCH_TRY(const auto gid, integer_at(*it, "gid", "process.user"));
  std::vector<gid_t> groups;
  if (it->contains("additionalGids") && (*it)["additionalGids"].is_array()) {
    for (const auto& g : (*it)["additionalGids"]) {
      if (!g.is_number_unsigned()) return bad("process.user.additionalGids", "are ids");
      groups.push_back(static_cast<gid_t>(g.get<std::uint64_t>()));
    }
  }
  c.user(static_cast<uid_t>(uid.value_or(0)), static_cast<gid_t>(gid.value_or(0)),
         std::move(groups));
  HUTCH_TRY(const auto umask, integer_at(*it, "umask", "process.user"));
  if (umask) c.umask(static_cast<mode_t>(*umask));
  return success();
}

/// process.env, as it is: no default PATH added.
template <class Builder>
inline result<void> read_env(const json& p, Builder& c) {
  HUTCH_TRY(const std::vector<std::string> env, strings_at(p, "env", "process"));
  c.env_clear();
  for (const auto& kv : env) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return bad(kv, "process.env holds KEY=VALUE");
    c.env(std::string_view(kv).substr(0, eq), std::string_view(kv).substr(eq + 1));
  }
  return success();
}

/// The parts of "process" a Container and an exec'd Process share.
template <class Builder>
inline result<void> read_process_common(const json& p, Builder& c) {
  HUTCH_TRYV(
      only(p, "process",
           {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
            "noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel"}));
  HUTCH_TRY(const std::vector<std::string> args, strings_at(p, "args", "process"));
  if (args.empty()) return bad("process.args", "the command is missing");
  c.command(args);
  HUTCH_TRYV(read_env(p, c));
  HUTCH_TRY(const std::string cwd, string_at(p, "cwd", "process"));
  if (cwd.empty() || cwd[0] != '/') return bad("process.cwd", "must be an absolute path");
  c.cwd(cwd);
  HUTCH_TRYV(read_user(p, c));
  HUTCH_TRYV(read_rlimits(p, c));
  c.no_new_privs(p.value("noNewPrivileges", false));
  if (p.contains("oomScoreAdj") && p["oomScoreAdj"].is_number_integer()) {
    c.oom_score_adj(p["oomScoreAdj"].get<int>());
  }
  for (auto [label, lsm] :
       {std::pair{"apparmorProfile", "apparmor"}, {"selinuxLabel", "selinux"}}) {
    HUTCH_TRY(const std::string value, string_at(p, label, "process"));
    if (!value.empty() && lsm_active(lsm)) {
      return bad(fmt::format("process.{}", label),
                 "hutch has no AppArmor or SELinux support: the label cannot be applied");
    }
  }
  const bool terminal = p.value("terminal", false);
  c.tty(terminal);
  if (terminal && p.contains("consoleSize") && p["consoleSize"].is_object()) {
    c.tty_size(p["consoleSize"].value("height", 24), p["consoleSize"].value("width", 80));
  }
  return success();
}

}  // namespace detail

/// An `exec --process` file: a runtime-spec process, as a Process.
inline result<Process> parse_process(std::string_view text) {
  try {
    auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return detail::bad("process", "not a JSON object");
    Process p;
    HUTCH_TRYV(detail::read_process_common(j, p));
    HUTCH_TRYV(detail::read_capabilities(j, p));
    return p;
  } catch (const nlohmann::json::exception& e) {
    return detail::bad("process", e.what());
  }
}

}  // namespace hutch::oci
