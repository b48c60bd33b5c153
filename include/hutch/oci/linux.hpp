// hutch — OCI module: a runtime-spec config's "mounts" and "linux" (namespaces, id maps,
// devices, resources, sysctls, masked and read-only paths, seccomp, propagation) read into a
// Container, its RootFs and its CGroup.
#pragma once

#include <sys/mount.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../cgroup.hpp"
#include "../container.hpp"
#include "../error.hpp"
#include "../rootfs.hpp"
#include "mount_options.hpp"
#include "process.hpp"
#include "seccomp.hpp"

namespace hutch::oci::detail {

using nlohmann::json;

/// One entry of "mounts". A bind's relative source is relative to the bundle.
inline result<Mount> read_mount(const json& m, const std::string& bundle) {
  HUTCH_TRYV(only(m, "mounts[]",
                  {"destination", "type", "source", "options", "uidMappings", "gidMappings"}));
  if (m.contains("uidMappings") || m.contains("gidMappings")) {
    return bad("mounts[].uidMappings", "id-mapped mounts are not supported");
  }
  Mount out;
  HUTCH_TRY(out.target, string_at(m, "destination", "mounts[]"));
  if (out.target.empty() || out.target[0] != '/') {
    return bad(out.target, "a mount's destination must be an absolute path");
  }
  HUTCH_TRY(out.type, string_at(m, "type", "mounts[]"));
  HUTCH_TRY(out.source, string_at(m, "source", "mounts[]"));
  HUTCH_TRY(const std::vector<std::string> options, strings_at(m, "options", "mounts[]"));
  HUTCH_TRYV(apply_mount_options(out, options));
  const bool bind = out.type == "bind" || (out.flags & MS_BIND);
  if (bind) {
    out.type = "bind";
    if (!out.source.empty() && out.source[0] != '/') out.source = bundle + "/" + out.source;
  }
  if (out.type.empty()) return bad(out.target, "a mount needs a type");
  return out;
}

inline result<Namespace> namespace_type(const std::string& type) {
  static const std::pair<const char*, Namespace> types[] = {
      {"pid", Namespace::pid},       {"network", Namespace::net}, {"mount", Namespace::mount},
      {"ipc", Namespace::ipc},       {"uts", Namespace::uts},     {"user", Namespace::user},
      {"cgroup", Namespace::cgroup}, {"time", Namespace::time}};
  for (const auto& [name, ns] : types) {
    if (type == name) return ns;
  }
  return bad(type, "not a namespace type");
}

/// lx.namespaces: the new ones, and those joined by path. Absent types are the host's.
inline result<void> read_namespaces(const json& lx, Container& c) {
  Namespaces set = Namespaces::none();
  std::vector<std::pair<Namespace, std::string>> joined;
  if (lx.contains("namespaces") && lx["namespaces"].is_array()) {
    for (const auto& n : lx["namespaces"]) {
      HUTCH_TRYV(only(n, "linux.namespaces[]", {"type", "path"}));
      HUTCH_TRY(const std::string type, string_at(n, "type", "linux.namespaces[]"));
      HUTCH_TRY(const Namespace ns, namespace_type(type));
      HUTCH_TRY(const std::string path, string_at(n, "path", "linux.namespaces[]"));
      set = set.with(ns);
      if (!path.empty()) joined.emplace_back(ns, path);
    }
  }
  c.namespaces(set);
  for (auto& [ns, path] : joined) c.join_namespace(ns, std::move(path));
  return success();
}

inline result<std::vector<IdMap>> id_maps(const json& lx, const char* key) {
  std::vector<IdMap> out;
  if (!lx.contains(key) || !lx[key].is_array()) return out;
  for (const auto& m : lx[key]) {
    for (const char* field : {"containerID", "hostID", "size"}) {
      if (!m.contains(field) || !m[field].is_number_unsigned()) {
        return bad(fmt::format("linux.{}.{}", key, field), "must be an id");
      }
    }
    out.push_back({m["containerID"].get<std::uint32_t>(), m["hostID"].get<std::uint32_t>(),
                   m["size"].get<std::uint32_t>()});
  }
  return out;
}

/// lx.devices: the nodes to make.
inline result<void> read_devices(const json& lx, RootFs& fs) {
  if (!lx.contains("devices") || !lx["devices"].is_array()) return success();
  for (const auto& d : lx["devices"]) {
    HUTCH_TRYV(
        only(d, "linux.devices[]", {"type", "path", "major", "minor", "fileMode", "uid", "gid"}));
    Device device;
    HUTCH_TRY(device.path, string_at(d, "path", "linux.devices[]"));
    HUTCH_TRY(const std::string type, string_at(d, "type", "linux.devices[]"));
    if (type != "c" && type != "b" && type != "p" && type != "u") {
      return bad(device.path, "a device is of type c, b, u or p");
    }
    device.type = type == "u" ? 'c' : type[0];
    device.major = d.value("major", 0u);
    device.minor = d.value("minor", 0u);
    device.mode = d.value("fileMode", 0666u);
    if (d.value("uid", 0u) != 0 || d.value("gid", 0u) != 0) {
      return bad(device.path, "device nodes are made owned by root");
    }
    fs.device(std::move(device));
  }
  return success();
}

/// lx.resources.devices: the cgroup's device rules.
inline result<std::vector<DeviceRule>> device_rules(const json& resources) {
  std::vector<DeviceRule> rules;
  for (const auto& r : resources["devices"]) {
    HUTCH_TRYV(only(r, "linux.resources.devices[]", {"allow", "type", "major", "minor", "access"}));
    DeviceRule rule;
    rule.allow = r.value("allow", false);
    const std::string type = r.value("type", std::string("a"));
    if (type != "a" && type != "c" && type != "b") return bad(type, "a device rule's type");
    rule.type = type[0];
    rule.major =
        r.contains("major") && r["major"].is_number_integer() ? r["major"].get<long>() : -1;
    rule.minor =
        r.contains("minor") && r["minor"].is_number_integer() ? r["minor"].get<long>() : -1;
    rule.access = r.value("access", std::string("rwm"));
    if (rule.access.find_first_not_of("rwm") != std::string::npos) {
      return bad(rule.access, "a device rule's access is a subset of rwm");
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

inline result<void> read_memory(const json& m, CGroup& g) {
  HUTCH_TRYV(only(m, "linux.resources.memory",
                  {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                   "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"}));
  HUTCH_TRY(const auto limit, integer_at(m, "limit", "memory"));
  HUTCH_TRY(const auto reservation, integer_at(m, "reservation", "memory"));
  HUTCH_TRY(const auto swap, integer_at(m, "swap", "memory"));
  for (const char* gone : {"kernel", "kernelTCP"}) {
    HUTCH_TRY(const auto value, integer_at(m, gone, "memory"));
    if (value && *value != 0 && *value != -1) {
      return bad(fmt::format("linux.resources.memory.{}", gone),
                 "kernel memory limits are gone "
                 "from the kernel");
    }
  }
  if (limit && *limit > 0) g.memory_max(static_cast<std::uint64_t>(*limit));
  if (reservation && *reservation > 0) g.memory_low(static_cast<std::uint64_t>(*reservation));
  // "swap" is memory and swap together (runc's reading): the swap alone is what is above.
  if (swap && *swap > 0) {
    if (!limit || *limit <= 0 || *swap < *limit) {
      return bad("linux.resources.memory.swap", "must be at least the memory limit");
    }
    g.memory_swap_max(static_cast<std::uint64_t>(*swap - *limit));
  }
  if (m.contains("swappiness") && m["swappiness"].is_number_unsigned()) {
    g.memory_swappiness(m["swappiness"].get<std::uint64_t>());
  }
  if (m.value("disableOOMKiller", false)) g.oom_kill_disable(true);
  return success();
}

inline result<void> read_cpu(const json& cpu, CGroup& g) {
  HUTCH_TRYV(only(cpu, "linux.resources.cpu",
                  {"shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
                   "idle", "burst"}));
  for (const char* realtime : {"realtimeRuntime", "realtimePeriod", "burst"}) {
    HUTCH_TRY(const auto value, integer_at(cpu, realtime, "cpu"));
    if (value && *value != 0) {
      return bad(fmt::format("linux.resources.cpu.{}", realtime), "not supported");
    }
  }
  // 0 is unset (docker sends zeros for what it was not asked).
  if (cpu.contains("shares") && cpu["shares"].is_number_unsigned() &&
      cpu["shares"].get<std::uint64_t>() != 0) {
    g.cpu_shares(cpu["shares"].get<std::uint64_t>());
  }
  HUTCH_TRY(const auto quota, integer_at(cpu, "quota", "cpu"));
  const std::uint64_t period = cpu.value("period", std::uint64_t{100000});
  if (quota && *quota > 0) g.cpu_max(static_cast<std::uint64_t>(*quota), period);
  HUTCH_TRY(const std::string cpus, string_at(cpu, "cpus", "cpu"));
  HUTCH_TRY(const std::string mems, string_at(cpu, "mems", "cpu"));
  if (!cpus.empty()) g.cpuset_cpus(cpus);
  if (!mems.empty()) g.cpuset_mems(mems);
  HUTCH_TRY(const auto idle, integer_at(cpu, "idle", "cpu"));
  if (idle) g.cpu_idle(*idle != 0);
  return success();
}

inline result<void> read_block_io(const json& b, CGroup& g) {
  HUTCH_TRYV(only(b, "linux.resources.blockIO",
                  {"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                   "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"}));
  if (b.contains("weightDevice") && !b["weightDevice"].empty()) {
    return bad("linux.resources.blockIO.weightDevice", "per-device weights are not supported");
  }
  if (b.contains("weight") && b["weight"].is_number_unsigned()) {
    const std::uint64_t v1 = b["weight"].get<std::uint64_t>();  // 10..1000; 0: unset (docker)
    if (v1 != 0 && (v1 < 10 || v1 > 1000)) {
      return bad("linux.resources.blockIO.weight", "is 10..1000");
    }
    if (v1 != 0) g.blkio_weight(v1);
  }
  std::map<std::string, IoMax> devices;
  for (auto [key, field] : {std::pair{"throttleReadBpsDevice", &IoMax::read_bps},
                            {"throttleWriteBpsDevice", &IoMax::write_bps},
                            {"throttleReadIOPSDevice", &IoMax::read_iops},
                            {"throttleWriteIOPSDevice", &IoMax::write_iops}}) {
    if (!b.contains(key) || !b[key].is_array()) continue;
    for (const auto& d : b[key]) {
      const std::string dev = fmt::format("{}:{}", d.value("major", 0), d.value("minor", 0));
      const auto rate = d.value("rate", std::uint64_t{0});
      if (rate == 0) continue;  // unset, as runc takes it
      devices[dev].device = dev;
      devices[dev].*field = rate;
    }
  }
  for (auto& [dev, limit] : devices) g.io_max(std::move(limit));
  return success();
}

/// lx.resources into `g`.
inline result<void> read_resources(const json& r, CGroup& g) {
  HUTCH_TRYV(only(r, "linux.resources",
                  {"devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network",
                   "rdma", "unified"}));
  if (r.contains("devices") && r["devices"].is_array()) {
    HUTCH_TRY(auto rules, device_rules(r));
    g.devices(std::move(rules));
  }
  if (r.contains("memory")) HUTCH_TRYV(read_memory(r["memory"], g));
  if (r.contains("cpu")) HUTCH_TRYV(read_cpu(r["cpu"], g));
  if (r.contains("pids") && r["pids"].is_object()) {
    HUTCH_TRY(const auto limit, integer_at(r["pids"], "limit", "pids"));
    if (limit && *limit > 0) g.pids_max(static_cast<std::uint64_t>(*limit));
  }
  if (r.contains("blockIO")) HUTCH_TRYV(read_block_io(r["blockIO"], g));
  for (const char* unsupported : {"hugepageLimits", "rdma"}) {
    if (r.contains(unsupported) && !r[unsupported].empty()) {
      return bad(fmt::format("linux.resources.{}", unsupported), "not supported");
    }
  }
  if (r.contains("network") && !r["network"].empty()) {
    return bad("linux.resources.network", "net_cls and net_prio are not supported");
  }
  if (r.contains("unified") && r["unified"].is_object()) {
    for (const auto& [file, value] : r["unified"].items()) {
      if (!value.is_string()) return bad(file, "a unified value is a string");
      g.unified(file, value.get<std::string>());
    }
  }
  return success();
}

}  // namespace hutch::oci::detail
