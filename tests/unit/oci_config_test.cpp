// hutch::oci: a bundle's config.json read into a Container, without spawning anything.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <hutch/oci.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using nlohmann::json;

/// What `runc spec` writes (runc 1.1), as the base every test changes.
json runc_spec() {
  return json::parse(R"({
    "ociVersion": "1.0.2-dev",
    "process": {"terminal": true, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
      "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      "cwd": "/",
      "capabilities": {"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]},
      "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
      "noNewPrivileges": true},
    "root": {"path": "rootfs", "readonly": true},
    "hostname": "runc",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
       "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
      {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
       "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
      {"destination": "/sys", "type": "sysfs", "source": "sysfs",
       "options": ["nosuid", "noexec", "nodev", "ro"]}],
    "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]},
      "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                     {"type": "mount"}],
      "maskedPaths": ["/proc/kcore", "/sys/firmware"],
      "readonlyPaths": ["/proc/sys"]}})");
}

hutch::result<hutch::oci::Config> parse(const json& j) {
  return hutch::oci::parse_config(j.dump(), "/bundle", "c1");
}

/// The field a refusal names, for EXPECT_THAT-free checks.
std::string refusal(const json& j) {
  auto config = parse(j);
  if (config) return "accepted";
  EXPECT_EQ(config.error().step, hutch::oci_step::config);
  return config.error().subject;
}

TEST(OciConfig, RuncsSpecBecomesTheContainerItDescribes) {
  auto config = parse(runc_spec());
  ASSERT_TRUE(config) << config.error().message();
  const auto& spec = config->container.spec();
  EXPECT_EQ(config->oci_version, "1.0.2-dev");
  EXPECT_TRUE(config->terminal);
  EXPECT_EQ(config->root, "/bundle/rootfs");
  EXPECT_EQ(spec.argv, std::vector<std::string>{"sh"});
  EXPECT_EQ(spec.env_base, hutch::detail::EnvBase::empty);
  EXPECT_EQ(spec.env_changes.size(), 2u);
  EXPECT_EQ(spec.cwd, "/");
  EXPECT_EQ(spec.hostname, "runc");
  EXPECT_TRUE(spec.no_new_privs);
  EXPECT_TRUE(spec.tty);
  EXPECT_FALSE(spec.die_with_parent);
  using hutch::Namespace;
  for (Namespace ns :
       {Namespace::pid, Namespace::net, Namespace::ipc, Namespace::uts, Namespace::mount}) {
    EXPECT_TRUE(spec.namespaces.contains(ns));
  }
  EXPECT_FALSE(spec.namespaces.contains(Namespace::user));
  EXPECT_FALSE(spec.namespaces.contains(Namespace::cgroup));
  const auto kill = *hutch::parse_capability("CAP_KILL");
  EXPECT_TRUE(spec.capabilities.bounding.contains(kill));
  // Ambient but not inheritable: the kernel would refuse to raise it, so it is left out.
  EXPECT_FALSE(spec.capabilities.ambient.contains(kill));
  EXPECT_FALSE(spec.capabilities.bounding.contains(*hutch::parse_capability("CAP_SYS_ADMIN")));
  ASSERT_EQ(spec.rlimits.size(), 1u);
  EXPECT_EQ(spec.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(spec.rlimits[0].soft, 1024u);

  ASSERT_TRUE(spec.rootfs);
  const auto& fs = spec.rootfs->spec();
  EXPECT_TRUE(fs.read_only);
  for (hutch::Standard part :
       {hutch::Standard::proc, hutch::Standard::dev, hutch::Standard::sys,
        hutch::Standard::masked_paths, hutch::Standard::readonly_paths, hutch::Standard::cgroup}) {
    EXPECT_FALSE(fs.has(part)) << static_cast<int>(part);
  }
  EXPECT_TRUE(fs.has(hutch::Standard::devices));
  // Four mounts, two masked paths and one read-only path, in the config's order.
  ASSERT_EQ(fs.mounts.size(), 7u);
  const auto& dev = fs.mounts[1].mount;
  EXPECT_EQ(dev.type, "tmpfs");
  EXPECT_EQ(dev.target, "/dev");
  EXPECT_EQ(dev.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(dev.data, "mode=755,size=65536k");
  EXPECT_EQ(fs.mounts[2].mount.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  EXPECT_EQ(fs.mounts[3].mount.flags,
            static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY));
  EXPECT_EQ(fs.mounts[4].kind, hutch::detail::UserMount::Kind::mask);
  EXPECT_EQ(fs.mounts[6].kind, hutch::detail::UserMount::Kind::readonly);

  ASSERT_TRUE(spec.cgroup);
  EXPECT_EQ(spec.cgroup->limits().name, "c1");  // no cgroupsPath: the id below ours
  ASSERT_TRUE(spec.cgroup->limits().devices);
  // The config's deny-all, then what the container's own nodes need (as runc adds).
  const auto& rules = *spec.cgroup->limits().devices;
  ASSERT_EQ(rules.size(), 12u);
  EXPECT_FALSE(rules[0].allow);
  EXPECT_EQ(rules[1], (hutch::DeviceRule{true, 'c', -1, -1, "m"}));
  EXPECT_EQ(rules[3], (hutch::DeviceRule{true, 'c', 1, 3, "rwm"}));
  EXPECT_EQ(rules[11], (hutch::DeviceRule{true, 'c', 136, -1, "rwm"}));
}

TEST(OciConfig, ARelativeBindSourceIsTheBundlesAndRbindIsRecursive) {
  json j = runc_spec();
  j["mounts"].push_back({{"destination", "/data"},
                         {"type", "none"},
                         {"source", "data"},
                         {"options", {"rbind", "ro", "rprivate"}}});
  auto config = parse(j);
  ASSERT_TRUE(config) << config.error().message();
  const auto& m = config->container.spec().rootfs->spec().mounts[4].mount;
  EXPECT_EQ(m.type, "bind");
  EXPECT_EQ(m.source, "/bundle/data");
  EXPECT_EQ(m.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
  EXPECT_EQ(m.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
}

TEST(OciConfig, ResourcesBecomeTheCGroupsLimits) {
  json j = runc_spec();
  j["linux"]["cgroupsPath"] = "/libpod_parent/libpod-abc";
  j["linux"]["resources"]["memory"] = {
      {"limit", 64 << 20}, {"reservation", 32 << 20}, {"swap", 96 << 20}};
  j["linux"]["resources"]["cpu"] = {
      {"shares", 512}, {"quota", 50000}, {"period", 100000}, {"cpus", "0"}};
  j["linux"]["resources"]["pids"] = {{"limit", 100}};
  j["linux"]["resources"]["blockIO"] = {
      {"weight", 500},
      {"throttleReadBpsDevice", {{{"major", 254}, {"minor", 0}, {"rate", 1048576}}}}};
  auto config = parse(j);
  ASSERT_TRUE(config) << config.error().message();
  const auto& g = config->container.spec().cgroup->limits();
  EXPECT_EQ(g.path, "/libpod_parent/libpod-abc");
  EXPECT_EQ(g.memory_max, 64u << 20);
  EXPECT_EQ(g.memory_low, 32u << 20);
  EXPECT_EQ(g.memory_swap_max, 32u << 20);  // "swap" counts memory and swap together
  EXPECT_EQ(g.cpu_shares, 512u);
  EXPECT_EQ(g.cpu_quota_us, 50000u);
  EXPECT_EQ(g.cpu_period_us, 100000u);
  EXPECT_EQ(g.cpuset_cpus, "0");
  EXPECT_EQ(g.pids_max, 100u);
  ASSERT_EQ(g.io_max.size(), 1u);
  EXPECT_EQ(g.io_max[0].device, "254:0");
  EXPECT_EQ(g.io_max[0].read_bps, 1048576u);
  ASSERT_TRUE(g.io_weight);
  EXPECT_EQ(hutch::detail::blkio_of_io_weight(*g.io_weight), 500u);  // what runc writes
}

TEST(OciConfig, ZerosAreUnsetAsDockerWritesThem) {
  json j = runc_spec();
  j["linux"]["resources"]["cpu"] = {{"shares", 0}, {"quota", 0}, {"period", 0}};
  j["linux"]["resources"]["blockIO"] = {
      {"weight", 0}, {"throttleWriteBpsDevice", {{{"major", 254}, {"minor", 0}, {"rate", 0}}}}};
  j["linux"]["resources"]["memory"] = {{"limit", 0}, {"swap", 0}, {"kernel", 0}};
  j["linux"]["resources"]["pids"] = {{"limit", 0}};
  auto config = parse(j);
  ASSERT_TRUE(config) << config.error().message();
  const auto& g = config->container.spec().cgroup->limits();
  EXPECT_FALSE(g.cpu_shares);
  EXPECT_EQ(g.cpu_quota_us, 0u);
  EXPECT_FALSE(g.io_weight);
  EXPECT_TRUE(g.io_max.empty());
  EXPECT_FALSE(g.memory_max);
  EXPECT_FALSE(g.pids_max);
}

TEST(OciConfig, JoinedNamespacesUserMapsSysctlsAndSeccomp) {
  json j = runc_spec();
  j["linux"]["namespaces"] = {
      {{"type", "mount"}}, {{"type", "user"}}, {{"type", "network"}, {"path", "/proc/1/ns/net"}}};
  j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
  j["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
  j["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  j["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"mkdir", "no_such_call"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
  j.erase("hostname");
  auto config = parse(j);
  ASSERT_TRUE(config) << config.error().message();
  const auto& spec = config->container.spec();
  ASSERT_EQ(spec.joined.size(), 1u);
  EXPECT_EQ(spec.joined[0].type, hutch::Namespace::net);
  EXPECT_EQ(spec.joined[0].path, "/proc/1/ns/net");
  ASSERT_EQ(spec.uid_map.size(), 1u);
  EXPECT_EQ(spec.uid_map[0].outside, 1000u);
  ASSERT_EQ(spec.sysctls.size(), 1u);
  EXPECT_FALSE(spec.seccomp.empty());
}

TEST(OciConfig, HooksAndAnnotationsAreKeptForTheRuntime) {
  json j = runc_spec();
  j["hooks"] = {{"createRuntime", {{{"path", "/bin/true"}, {"args", {"true", "a"}}}}},
                {"poststop", {{{"path", "/bin/echo"}, {"timeout", 5}}}}};
  j["annotations"] = {{"io.podman.annotations.autoremove", "FALSE"}};
  auto config = parse(j);
  ASSERT_TRUE(config) << config.error().message();
  ASSERT_EQ(config->hooks.create_runtime.size(), 1u);
  EXPECT_EQ(config->hooks.create_runtime[0].args.size(), 2u);
  ASSERT_EQ(config->hooks.poststop.size(), 1u);
  EXPECT_EQ(config->hooks.poststop[0].timeout_seconds, 5);
  EXPECT_EQ(config->annotations.at("io.podman.annotations.autoremove"), "FALSE");
}

TEST(OciConfig, WhatHutchCannotHonourIsRefusedByName) {
  auto with = [](auto change) {
    json j = runc_spec();
    change(j);
    return refusal(j);
  };
  EXPECT_EQ(with([](json& j) { j["ociVersion"] = "2.0.0"; }), "2.0.0");
  EXPECT_EQ(with([](json& j) { j["ociVersion"] = "1.10"; }), "1.10");
  EXPECT_EQ(with([](json& j) { j["vm"] = json::object({{"hypervisor", {}}}); }), "config.vm");
  EXPECT_EQ(with([](json& j) { j["linux"]["intelRdt"] = {{"closID", "x"}}; }), "linux.intelRdt");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["personality"] = {{"domain", "LINUX32"}};
            }),
            "linux.personality");
  EXPECT_EQ(with([](json& j) {
              j["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_RT"}};
            }),
            "process.ioPriority");
  EXPECT_EQ(with([](json& j) { j["linux"]["cgroupsPath"] = "machine.slice:libpod:abc"; }),
            "machine.slice:libpod:abc");
  EXPECT_EQ(with([](json& j) { j["linux"]["cgroupsPath"] = "/a/../b"; }), "/a/../b");
  EXPECT_EQ(with([](json& j) { j["linux"]["cgroupsPath"] = "a/b"; }), "a/b");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["namespaces"] = {{{"type", "pid"}}};
            }),
            "linux.namespaces");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["namespaces"].push_back({{"type", "floppy"}});
            }),
            "floppy");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1}, {"size", 1}}};
            }),
            "linux.uidMappings");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["namespaces"] = {{{"type", "mount"}}};
            }),
            "hostname");  // a hostname without a uts namespace
  EXPECT_EQ(with([](json& j) { j["process"]["args"] = json::array(); }), "process.args");
  EXPECT_EQ(with([](json& j) { j["process"]["cwd"] = "relative"; }), "process.cwd");
  EXPECT_EQ(with([](json& j) { j["process"]["env"] = {"NOEQUALS"}; }), "NOEQUALS");
  EXPECT_EQ(with([](json& j) { j["process"]["rlimits"][0]["type"] = "RLIMIT_FLOPPY"; }),
            "RLIMIT_FLOPPY");
  EXPECT_EQ(with([](json& j) { j.erase("root"); }), "root");
  EXPECT_EQ(with([](json& j) { j.erase("linux"); }), "linux");
  EXPECT_EQ(with([](json& j) {
              j["mounts"].push_back({{"destination", "/x"},
                                     {"type", "bind"},
                                     {"source", "/"},
                                     {"options", {"rbind", "idmap"}}});
            }),
            "idmap");
  EXPECT_EQ(with([](json& j) {
              j["mounts"].push_back({{"destination", "x"}, {"type", "tmpfs"}});
            }),
            "x");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["resources"]["memory"] = {{"kernel", 1 << 20}};
            }),
            "linux.resources.memory.kernel");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["resources"]["memory"] = {{"limit", 64 << 20}, {"swap", 1 << 20}};
            }),
            "linux.resources.memory.swap");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["resources"]["hugepageLimits"] = {{{"limit", 1}}};
            }),
            "linux.resources.hugepageLimits");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_NOTIFY"}};
            }),
            "SCMP_ACT_NOTIFY");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                       {"listenerPath", "/run/x.sock"}};
            }),
            "linux.seccomp.listenerPath");
  EXPECT_EQ(with([](json& j) { j["hooks"] = {{"prestart", {{{"path", "rel"}}}}}; }), "rel");
  EXPECT_EQ(with([](json& j) { j["hooks"] = {{"onFire", json::array()}}; }), "hooks.onFire");
  EXPECT_EQ(refusal(json::parse("[1]")), "config.json");
  auto text = hutch::oci::parse_config("{not json", "/bundle", "c1");
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().subject, "config.json");
}

TEST(OciConfig, ASeccompFilterFlagThatWouldWeakenNothingIsAcceptedAnUnknownOneRefused) {
  json j = runc_spec();
  j["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                           {"flags", {"SECCOMP_FILTER_FLAG_LOG"}}};
  EXPECT_TRUE(parse(j));
  j["linux"]["seccomp"]["flags"] = {"SECCOMP_FILTER_FLAG_NEW_LISTENER"};
  EXPECT_EQ(refusal(j), "SECCOMP_FILTER_FLAG_NEW_LISTENER");
}

TEST(OciConfig, AnExecProcessFileReadsTheSameWay) {
  auto p = hutch::oci::parse_process(
      R"({"args": ["ps"], "cwd": "/tmp", "env": ["A=1"], "user": {"uid": 5, "gid": 6,
          "additionalGids": [7]}, "terminal": false})");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->spec().argv, std::vector<std::string>{"ps"});
  EXPECT_EQ(p->spec().cwd, "/tmp");
  ASSERT_TRUE(p->spec().user);
  EXPECT_EQ(p->spec().user->uid, 5u);
  EXPECT_EQ(p->spec().user->groups, std::vector<gid_t>{7});
  EXPECT_FALSE(hutch::oci::parse_process(R"({"args": []})"));
  EXPECT_FALSE(hutch::oci::parse_process("[]"));
}

TEST(OciConfig, LoadConfigReadsOnlyARegularFileNotThroughASymlink) {
  char dir[] = "/tmp/hutch-oci-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string bundle = dir;
  auto missing = hutch::oci::load_config(bundle, "c1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().errno_value(), ENOENT);
  ASSERT_EQ(::symlink("/etc/passwd", (bundle + "/config.json").c_str()), 0);
  auto linked = hutch::oci::load_config(bundle, "c1");
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().errno_value(), ELOOP);
  ::unlink((bundle + "/config.json").c_str());
  {
    FILE* f = std::fopen((bundle + "/config.json").c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string text = runc_spec().dump();
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  auto config = hutch::oci::load_config(bundle, "c1");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->root, bundle + "/rootfs");
  ::unlink((bundle + "/config.json").c_str());
  ::rmdir(dir);
}

}  // namespace
