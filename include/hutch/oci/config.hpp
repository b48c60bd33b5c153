// hutch — OCI module: a bundle's config.json (runtime-spec 1.0–1.2) read into a Container,
// with the parts a runtime keeps for itself (hooks, annotations, the root, the cgroup path).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../cgroup.hpp"
#include "../container.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "../rootfs.hpp"
#include "linux.hpp"
#include "mount_options.hpp"
#include "process.hpp"
#include "seccomp.hpp"

namespace hutch::oci {

/// A hook: a host program run at one point of the container's life, given the state on stdin.
struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout_seconds;
};

struct Hooks {
  std::vector<Hook> prestart;          // deprecated; run with createRuntime
  std::vector<Hook> create_runtime;    // after the container exists, in the runtime's namespaces
  std::vector<Hook> create_container;  // after create_runtime, in the container's namespaces
  std::vector<Hook> start_container;   // at start, in the container, before its command
  std::vector<Hook> poststart;         // after the command started, in the runtime's namespaces
  std::vector<Hook> poststop;          // at delete, in the runtime's namespaces
};

/// A bundle's config.json as hutch runs it.
struct Config {
  std::string oci_version;
  Container container;
  std::string root;  // the root directory, absolute
  bool terminal = false;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  nlohmann::json document;  // the whole config, as read
};

/// The largest config.json read (podman's and Kubernetes' are a few tens of KiB).
inline constexpr std::size_t max_config_size = 4 << 20;

namespace detail {

using nlohmann::json;

inline result<Hook> read_hook(const json& h) {
  HUTCH_TRYV(only(h, "hooks[]", {"path", "args", "env", "timeout"}));
  Hook out;
  HUTCH_TRY(out.path, string_at(h, "path", "hooks[]"));
  if (out.path.empty() || out.path[0] != '/') return bad(out.path, "a hook's path is absolute");
  HUTCH_TRY(out.args, strings_at(h, "args", "hooks[]"));
  HUTCH_TRY(out.env, strings_at(h, "env", "hooks[]"));
  HUTCH_TRY(const auto timeout, integer_at(h, "timeout", "hooks[]"));
  if (timeout) {
    if (*timeout <= 0) return bad(out.path, "a hook's timeout is more than 0 seconds");
    out.timeout_seconds = static_cast<int>(std::min<std::int64_t>(*timeout, 86400));
  }
  return out;
}

inline result<Hooks> read_hooks(const json& j) {
  Hooks out;
  if (!j.contains("hooks") || j["hooks"].is_null()) return out;
  const json& h = j["hooks"];
  HUTCH_TRYV(only(
      h, "hooks",
      {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}));
  for (auto [key, list] : {std::pair{"prestart", &out.prestart},
                           {"createRuntime", &out.create_runtime},
                           {"createContainer", &out.create_container},
                           {"startContainer", &out.start_container},
                           {"poststart", &out.poststart},
                           {"poststop", &out.poststop}}) {
    if (!h.contains(key) || h[key].is_null()) continue;
    if (!h[key].is_array()) return bad(fmt::format("hooks.{}", key), "must be an array");
    for (const auto& one : h[key]) {
      HUTCH_TRY(Hook hook, read_hook(one));
      list->push_back(std::move(hook));
    }
  }
  return out;
}

/// linux.cgroupsPath: absolute from each hierarchy's root (as engines give it), one relative
/// name below the runtime's own cgroup, or absent (the container's id there).
inline result<CGroup> cgroup_of(const json& lx, const std::string& id) {
  HUTCH_TRY(const std::string path, string_at(lx, "cgroupsPath", "linux"));
  if (path.empty()) return CGroup(id);
  if (path.find(':') != std::string::npos) {
    return bad(path,
               "a systemd cgroup (slice:prefix:name) needs systemd; hutch-runtime "
               "manages cgroupfs (use the engine's cgroupfs manager)");
  }
  for (std::string_view part : {"/../", "/./"}) {
    if (("/" + path + "/").find(part) != std::string::npos) {
      return bad(path, "a cgroup path has no . or .. parts");
    }
  }
  if (path[0] == '/') {
    if (path.size() < 2) return bad(path, "the root cgroup is not a container's");
    CGroup g;
    g.at(path);
    return g;
  }
  if (path.find('/') != std::string::npos) {
    return bad(path, "a relative cgroup path is one name (below the runtime's cgroup)");
  }
  return CGroup(path);
}

inline result<void> read_time_offsets(const json& lx, Container& c) {
  if (!lx.contains("timeOffsets") || lx["timeOffsets"].is_null()) return success();
  const json& t = lx["timeOffsets"];
  HUTCH_TRYV(only(t, "linux.timeOffsets", {"monotonic", "boottime"}));
  TimeOffsets offsets;
  for (auto [clock, secs, nanos] :
       {std::tuple{"monotonic", &offsets.monotonic_seconds, &offsets.monotonic_nanoseconds},
        {"boottime", &offsets.boottime_seconds, &offsets.boottime_nanoseconds}}) {
    if (!t.contains(clock)) continue;
    HUTCH_TRYV(only(t[clock], "linux.timeOffsets", {"secs", "nanosecs"}));
    HUTCH_TRY(const auto s, integer_at(t[clock], "secs", "linux.timeOffsets"));
    HUTCH_TRY(const auto n, integer_at(t[clock], "nanosecs", "linux.timeOffsets"));
    *secs = s.value_or(0);
    *nanos = n.value_or(0);
  }
  c.time_offsets(offsets);
  return success();
}

/// After the config's device rules, those the container's own nodes need, as runc adds them
/// (engines' configs deny every device and rely on it): mknod of any, the default devices
/// (null, zero, full, random, urandom, tty, console, ptmx, the pts), and linux.devices.
inline result<void> allow_own_devices(const json& lx, CGroup& g) {
  std::vector<DeviceRule> rules = *g.limits().devices;
  rules.push_back({true, 'c', -1, -1, "m"});
  rules.push_back({true, 'b', -1, -1, "m"});
  for (auto [major, minor] : {std::pair{1L, 3L},
                              {1L, 5L},
                              {1L, 7L},
                              {1L, 8L},
                              {1L, 9L},
                              {5L, 0L},
                              {5L, 1L},
                              {5L, 2L},
                              {136L, -1L}}) {
    rules.push_back({true, 'c', major, minor, "rwm"});
  }
  if (lx.contains("devices") && lx["devices"].is_array()) {
    for (const auto& d : lx["devices"]) {
      const std::string type = d.value("type", std::string("c"));
      if (type == "p") continue;  // a FIFO is no device to the cgroup
      rules.push_back(
          {true, type == "b" ? 'b' : 'c', d.value("major", 0L), d.value("minor", 0L), "rwm"});
    }
  }
  g.devices(std::move(rules));
  return success();
}

/// "linux" into the container, its filesystem and its cgroup.
inline result<void> read_linux(const json& lx, const std::string& id, Container& c, RootFs& fs,
                               CGroup& g) {
  HUTCH_TRYV(only(lx, "linux",
                  {"namespaces", "uidMappings", "gidMappings", "timeOffsets", "devices",
                   "cgroupsPath", "rootfsPropagation", "resources", "sysctl", "seccomp",
                   "maskedPaths", "readonlyPaths", "mountLabel"}));
  HUTCH_TRYV(read_namespaces(lx, c));
  if (!c.namespaces().contains(Namespace::mount)) {
    return bad("linux.namespaces", "hutch runs a container in a mount namespace of its own");
  }
  HUTCH_TRY(std::vector<IdMap> uids, id_maps(lx, "uidMappings"));
  HUTCH_TRY(std::vector<IdMap> gids, id_maps(lx, "gidMappings"));
  if (!c.namespaces().contains(Namespace::user) && (!uids.empty() || !gids.empty())) {
    return bad("linux.uidMappings", "id mappings need a user namespace");
  }
  if (!uids.empty()) c.uid_map(std::move(uids));
  if (!gids.empty()) c.gid_map(std::move(gids));
  HUTCH_TRYV(read_time_offsets(lx, c));
  HUTCH_TRYV(read_devices(lx, fs));
  HUTCH_TRY(g, cgroup_of(lx, id));
  if (lx.contains("resources") && !lx["resources"].is_null()) {
    HUTCH_TRYV(read_resources(lx["resources"], g));
  }
  if (g.limits().devices) HUTCH_TRYV(allow_own_devices(lx, g));
  HUTCH_TRY(const std::string propagation, string_at(lx, "rootfsPropagation", "linux"));
  if (!propagation.empty()) {
    const unsigned long flags = propagation_flags(propagation);
    if (flags == 0) return bad(propagation, "not a propagation");
    fs.propagation(flags);
  }
  if (lx.contains("sysctl") && lx["sysctl"].is_object()) {
    for (const auto& [key, value] : lx["sysctl"].items()) {
      if (!value.is_string()) return bad(key, "a sysctl's value is a string");
      c.sysctl(key, value.get<std::string>());
    }
  }
  if (lx.contains("seccomp") && !lx["seccomp"].is_null()) {
    HUTCH_TRY(SeccompProgram program, seccomp_program(lx["seccomp"]));
    c.seccomp(std::move(program));
  }
  HUTCH_TRY(const std::vector<std::string> masked, strings_at(lx, "maskedPaths", "linux"));
  for (const auto& path : masked) fs.mask(path);
  HUTCH_TRY(const std::vector<std::string> readonly, strings_at(lx, "readonlyPaths", "linux"));
  for (const auto& path : readonly) fs.readonly(path);
  HUTCH_TRY(const std::string label, string_at(lx, "mountLabel", "linux"));
  if (!label.empty() && lsm_active("selinux")) {
    return bad("linux.mountLabel", "hutch has no SELinux support: the label cannot be applied");
  }
  return success();
}

inline result<void> check_version(const std::string& version) {
  // 1.0.x, 1.1.x and 1.2.x (with any pre-release suffix, as engines write "1.0.2-dev").
  if (version.starts_with("1.0") || version.starts_with("1.1") || version.starts_with("1.2")) {
    if (version.size() == 3 || version[3] == '.' || version[3] == '-') return success();
  }
  return bad(version, "hutch reads runtime-spec 1.0 to 1.2");
}

}  // namespace detail

/// A config.json's text as the Config of container `id` whose bundle is `bundle` (absolute;
/// a relative root or bind source is relative to it).
inline result<Config> parse_config(std::string_view text, const std::string& bundle,
                                   const std::string& id) {
  using detail::bad;
  try {
    const auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad("config.json", "not a JSON object");
    HUTCH_TRYV(detail::only(j, "config",
                            {"ociVersion", "process", "root", "hostname", "domainname", "mounts",
                             "hooks", "annotations", "linux"}));
    Config out;
    HUTCH_TRY(out.oci_version, detail::string_at(j, "ociVersion", "config"));
    HUTCH_TRYV(detail::check_version(out.oci_version));
    Container& c = out.container;
    if (!j.contains("process") || !j["process"].is_object()) {
      return bad("process", "a container to create needs a process");
    }
    HUTCH_TRYV(detail::read_process_common(j["process"], c));
    HUTCH_TRYV(detail::read_capabilities(j["process"], c));
    out.terminal = j["process"].value("terminal", false);

    if (!j.contains("root") || !j["root"].is_object()) return bad("root", "is missing");
    HUTCH_TRYV(detail::only(j["root"], "root", {"path", "readonly"}));
    HUTCH_TRY(out.root, detail::string_at(j["root"], "path", "root"));
    if (out.root.empty()) return bad("root.path", "is missing");
    if (out.root[0] != '/') out.root = bundle + "/" + out.root;
    RootFs fs = RootFs::directory(out.root);
    fs.read_only(j["root"].value("readonly", false));
    // The config names every mount and path: none of hutch's own, but the default devices.
    for (Standard part : {Standard::proc, Standard::dev, Standard::sys, Standard::masked_paths,
                          Standard::readonly_paths, Standard::cgroup}) {
      fs.without(part);
    }
    fs.with(Standard::devices);
    if (j.contains("mounts") && !j["mounts"].is_null()) {
      if (!j["mounts"].is_array()) return bad("mounts", "must be an array");
      for (const auto& m : j["mounts"]) {
        HUTCH_TRY(Mount mount, detail::read_mount(m, bundle));
        fs.mount(std::move(mount));
      }
    }
    CGroup g(id);
    if (!j.contains("linux") || !j["linux"].is_object()) {
      return bad("linux", "hutch runs Linux containers: the config needs its linux part");
    }
    HUTCH_TRYV(detail::read_linux(j["linux"], id, c, fs, g));

    HUTCH_TRY(const std::string hostname, detail::string_at(j, "hostname", "config"));
    HUTCH_TRY(const std::string domainname, detail::string_at(j, "domainname", "config"));
    if ((!hostname.empty() || !domainname.empty()) && !c.namespaces().contains(Namespace::uts)) {
      return bad("hostname", "a hostname needs a uts namespace of the container's own");
    }
    if (!hostname.empty()) c.hostname(hostname);
    if (!domainname.empty()) c.domainname(domainname);
    HUTCH_TRY(out.hooks, detail::read_hooks(j));
    if (j.contains("annotations") && j["annotations"].is_object()) {
      for (const auto& [key, value] : j["annotations"].items()) {
        if (!value.is_string()) return bad(key, "an annotation's value is a string");
        out.annotations[key] = value.get<std::string>();
      }
    }
    c.rootfs(std::move(fs)).cgroup(std::move(g)).die_with_parent(false);
    out.document = j;
    return out;
  } catch (const nlohmann::json::exception& e) {
    return bad("config.json", e.what());
  }
}

/// All of the open file `fd` (named `path` in errors), refused past `limit` bytes.
inline result<std::string> read_bounded(int fd, const std::string& path,
                                        std::size_t limit = max_config_size) {
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return last_error(oci_step::config, path);
    if (n == 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      return make_error(oci_step::config, EFBIG, path, "larger than hutch reads");
    }
  }
}

/// Reads `bundle`/config.json (at most max_config_size, a regular file, not through a
/// symlink at its last part) as the Config of container `id`.
inline result<Config> load_config(const std::string& bundle, const std::string& id) {
  const std::string path = bundle + "/config.json";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return last_error(oci_step::config, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return last_error(oci_step::config, path);
  if (!S_ISREG(st.st_mode)) return make_error(oci_step::config, EINVAL, path, "not a file");
  HUTCH_TRY(const std::string text, read_bounded(fd.get(), path));
  return parse_config(text, bundle, id);
}

}  // namespace hutch::oci
