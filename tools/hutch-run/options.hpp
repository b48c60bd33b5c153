// hutch-run: its command line, parsed into RunOptions (no container is made here, so every
// flag can be unit-tested and fuzzed). Docker's rules: long flags take `--flag value` or
// `--flag=value`, short ones `-m 64M` or `-m64M` and cluster (`-it`); the first word that is
// not a flag, or what follows `--`, is the command with its own arguments.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <hutch/cgroup.hpp>
#include <hutch/error.hpp>
#include <hutch/security.hpp>

#include "values.hpp"

namespace hutch_run {

struct RunOptions {
  std::string rootfs, image, store;
  std::optional<std::uint64_t> memory, pids;
  std::optional<double> cpus;
  std::vector<hutch::IoMax> device_limits;    // one per device named
  std::optional<std::uint64_t> blkio_weight;  // docker's 10..1000
  std::string network = "none";  // none, host, bridge, pasta, or a CNI network's name or file
  std::vector<Publish> publish;
  std::uint64_t ingress_bps = 0, egress_bps = 0;
  std::vector<std::string> dns, dns_search;
  std::vector<std::pair<std::string, std::string>> add_hosts;
  std::string hostname, workdir, user;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<Volume> volumes;
  bool read_only = false, remove = false, interactive = false, tty = false, help = false;
  bool init = false;
  std::vector<std::string> cap_add, cap_drop;
  std::vector<hutch::Rlimit> ulimits;
  bool seccomp = true, no_new_privs = true;
  std::string pull = "missing";  // --pull: missing, always, never (docker's names)
  bool tls_verify = true;
  std::string cert_dir;
  bool pull_only = false;  // `hutch-run pull REF`
  std::vector<std::string> command;
};

using Setter = std::function<hutch::result<void>(RunOptions&, std::string_view)>;

struct Flag {
  const char* name;   // long name, without "--"
  char short_name;    // 0: none
  const char* value;  // what the value is, for --help; nullptr: a switch
  const char* help;
  Setter set;
};

/// hutch::invalid with the flag named: "--memory 99999999999999999999: expected ...".
inline hutch::Error flag_error(std::string_view flag, std::string_view value,
                               const hutch::Error& why) {
  return hutch::invalid(fmt::format("--{} {}", flag, value), why.note);
}

inline const std::vector<Flag>& flags() {
  using hutch::result;
  using hutch::success;
  auto text = [](std::string RunOptions::*field) {
    return Setter([field](RunOptions& o, std::string_view v) -> result<void> {
      o.*field = std::string(v);
      return success();
    });
  };
  auto on = [](bool RunOptions::*field) {
    return Setter([field](RunOptions& o, std::string_view) -> result<void> {
      o.*field = true;
      return success();
    });
  };
  auto capability_list = [](std::vector<std::string> RunOptions::*field, const char* flag) {
    return Setter([field, flag](RunOptions& o, std::string_view v) -> result<void> {
      if (v != "ALL" && v != "all" && !hutch::parse_capability(v)) {
        return hutch::invalid(fmt::format("--{} {}", flag, v), "not a capability name");
      }
      (o.*field).emplace_back(v);
      return success();
    });
  };
  auto device_rate = [](const char* flag, std::uint64_t hutch::IoMax::*field, bool in_bytes) {
    return Setter([=](RunOptions& o, std::string_view v) -> result<void> {
      auto parsed = parse_device_rate(v, in_bytes);
      if (!parsed) return flag_error(flag, v, parsed.error());
      const std::string& device = parsed->first;
      auto same = [&](const hutch::IoMax& l) { return l.device == device; };
      auto it = std::find_if(o.device_limits.begin(), o.device_limits.end(), same);
      if (it == o.device_limits.end()) {
        it = o.device_limits.insert(it, hutch::IoMax{.device = device});
      }
      (*it).*field = parsed->second;
      return success();
    });
  };
  static const std::vector<Flag> table = {
      {"rootfs", 0, "DIR", "Directory holding the container's root filesystem",
       text(&RunOptions::rootfs)},
      {"image", 0, "IMAGE",
       "An image reference (busybox, host:5000/app:v1, name@sha256:...), pulled from its "
       "registry; or an OCI layout directory or docker save archive, PATH[:TAG]",
       text(&RunOptions::image)},
      {"pull", 0, "POLICY",
       "Pull the image from its registry: missing (when not in the store; the default), "
       "always, never",
       [](RunOptions& o, std::string_view v) -> result<void> {
         if (v != "missing" && v != "always" && v != "never") {
           return hutch::invalid(fmt::format("--pull {}", v), "expected missing, always or never");
         }
         o.pull = std::string(v);
         return success();
       }},
      {"cert-dir", 0, "DIR",
       "CA certificates (*.crt) to trust for the registry (default: its directory in "
       "/etc/containers/certs.d or /etc/docker/certs.d, as HOST:PORT)",
       text(&RunOptions::cert_dir)},
      {"tls-verify", 0, "BOOL",
       "Verify registries' TLS certificates (default true; false also allows plain HTTP)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         if (v != "true" && v != "false") {
           return hutch::invalid(fmt::format("--tls-verify {}", v), "expected true or false");
         }
         o.tls_verify = v == "true";
         return success();
       }},
      {"store", 0, "DIR",
       "Where image layers are unpacked (default ~/.cache/hutch, /var/cache/hutch for root)",
       text(&RunOptions::store)},
      {"memory", 'm', "SIZE", "Memory limit, e.g. 64M or 1G (at least 6M)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto bytes = parse_size(v);
         if (!bytes) return hutch::invalid(fmt::format("--memory {}", v), "expected e.g. 64M");
         if (*bytes < (std::uint64_t{6} << 20)) {
           return hutch::invalid(fmt::format("--memory {}", v),
                                 "a container needs at least 6M (as docker)");
         }
         o.memory = *bytes;
         return success();
       }},
      {"cpus", 0, "N", "CPU limit as a number of CPUs, e.g. 0.5",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto cpus = parse_cpus(v);
         if (!cpus) return flag_error("cpus", v, cpus.error());
         o.cpus = *cpus;
         return success();
       }},
      {"pids", 0, "N", "Limit on the number of processes (also --pids-limit)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto count = parse_count(v);
         if (!count) return flag_error("pids", v, count.error());
         o.pids = *count;
         return success();
       }},
      {"device-read-bps", 0, "DEV:RATE",
       "Limit reads from a disk (its node, major:minor, or a path on it), e.g. /dev/vda:1mb",
       device_rate("device-read-bps", &hutch::IoMax::read_bps, true)},
      {"device-write-bps", 0, "DEV:RATE", "Limit writes to a disk, e.g. /dev/vda:512k",
       device_rate("device-write-bps", &hutch::IoMax::write_bps, true)},
      {"device-read-iops", 0, "DEV:N", "Limit read operations per second on a disk",
       device_rate("device-read-iops", &hutch::IoMax::read_iops, false)},
      {"device-write-iops", 0, "DEV:N", "Limit write operations per second on a disk",
       device_rate("device-write-iops", &hutch::IoMax::write_iops, false)},
      {"blkio-weight", 0, "N",
       "Relative share of disk time, 10..1000 (0: unset); needs the BFQ scheduler",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto weight = parse_unsigned(v);
         if (!weight || (*weight != 0 && (*weight < 10 || *weight > 1000))) {
           return hutch::invalid(fmt::format("--blkio-weight {}", v),
                                 "expected 10..1000, or 0 for none (as docker)");
         }
         if (*weight == 0) {
           o.blkio_weight.reset();
         } else {
           o.blkio_weight = *weight;
         }
         return success();
       }},
      {"network", 0, "MODE",
       "Network: none (the default, unlike docker's bridge: loopback only), host, bridge "
       "(hutch0, 10.77.0.0/24, through the CNI plugins; root), pasta (rootless), or the name "
       "of a CNI network in /etc/cni/net.d or a .conflist file (also --net)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         const bool file = v.find('/') != std::string_view::npos;
         bool name = !v.empty() && v.size() <= 255 && v != "." && v != "..";
         for (char c : v) {
           if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
             name = false;
           }
         }
         if (!file && !name) {
           return hutch::invalid(fmt::format("--network {}", v),
                                 "expected none, host, bridge, pasta, a CNI network's name or a "
                                 "path to its .conflist");
         }
         o.network = std::string(v);
         return success();
       }},
      {"publish", 'p', "[IP:]HOST:CTR[/tcp|udp]",
       "Publish a container port on the host (bridge, pasta or a CNI network; repeatable)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto port = parse_publish(v);
         if (!port) return flag_error("publish", v, port.error());
         o.publish.push_back(*port);
         return success();
       }},
      {"bandwidth", 0, "RATE", "Limit traffic both ways, as tc writes rates: 8mbit, 1gbit",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto rate = parse_tc_rate(v);
         if (!rate) return flag_error("bandwidth", v, rate.error());
         o.ingress_bps = o.egress_bps = *rate;
         return success();
       }},
      {"ingress-bandwidth", 0, "RATE", "Limit traffic into the container",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto rate = parse_tc_rate(v);
         if (!rate) return flag_error("ingress-bandwidth", v, rate.error());
         o.ingress_bps = *rate;
         return success();
       }},
      {"egress-bandwidth", 0, "RATE", "Limit traffic out of the container",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto rate = parse_tc_rate(v);
         if (!rate) return flag_error("egress-bandwidth", v, rate.error());
         o.egress_bps = *rate;
         return success();
       }},
      {"dns", 0, "IP", "A name server for the container's resolv.conf (repeatable)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         if (!plausible_ip(v))
           return hutch::invalid(fmt::format("--dns {}", v), "not an IP address");
         o.dns.emplace_back(v);
         return success();
       }},
      {"dns-search", 0, "DOMAIN", "A search domain for resolv.conf (repeatable)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         if (v.empty() || v.find_first_of(" \t\n") != std::string_view::npos) {
           return hutch::invalid(fmt::format("--dns-search {}", v), "not a domain");
         }
         o.dns_search.emplace_back(v);
         return success();
       }},
      {"add-host", 0, "NAME:IP", "An /etc/hosts entry (repeatable)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto entry = parse_add_host(v);
         if (!entry) return flag_error("add-host", v, entry.error());
         o.add_hosts.push_back(*entry);
         return success();
       }},
      {"hostname", 'h', "NAME", "Hostname inside the container", text(&RunOptions::hostname)},
      {"env", 'e', "KEY[=VALUE]",
       "Set an environment variable (KEY alone passes the caller's value; repeatable)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         const auto eq = v.find('=');
         if (eq == 0 || v.empty()) {
           return hutch::invalid(fmt::format("--env {}", v), "expected KEY=VALUE or KEY");
         }
         if (eq != std::string_view::npos) {
           o.env.emplace_back(std::string(v.substr(0, eq)), std::string(v.substr(eq + 1)));
         } else if (const char* value = std::getenv(std::string(v).c_str())) {
           o.env.emplace_back(std::string(v), value);
         }
         return success();
       }},
      {"volume", 'v', "HOST:CTR[:ro]", "Bind mount a host path (repeatable)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto volume = parse_volume(v);
         if (!volume) return flag_error("volume", v, volume.error());
         o.volumes.push_back(std::move(*volume));
         return success();
       }},
      {"read-only", 0, nullptr, "Mount the root filesystem read-only", on(&RunOptions::read_only)},
      {"workdir", 'w', "DIR", "Working directory inside the container (absolute)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         if (!good_inside_path(v, true)) {
           return hutch::invalid(fmt::format("--workdir {}", v),
                                 "the working directory must be an absolute path without '..'");
         }
         o.workdir = std::string(v);
         return success();
       }},
      {"user", 'u', "USER[:GROUP]",
       "User to run as: UID[:GID] or a name from the root's /etc/passwd", text(&RunOptions::user)},
      {"cap-add", 0, "CAP", "Add a capability, e.g. NET_ADMIN, or ALL (repeatable)",
       capability_list(&RunOptions::cap_add, "cap-add")},
      {"cap-drop", 0, "CAP", "Drop a capability, or ALL (repeatable)",
       capability_list(&RunOptions::cap_drop, "cap-drop")},
      {"ulimit", 0, "NAME=SOFT[:HARD]", "Resource limit, e.g. nofile=1024:2048 (repeatable)",
       [](RunOptions& o, std::string_view v) -> result<void> {
         auto limit = parse_ulimit(v);
         if (!limit) return flag_error("ulimit", v, limit.error());
         o.ulimits.push_back(*limit);
         return success();
       }},
      {"security-opt", 0, "OPT", "seccomp=unconfined (no filter) or no-new-privileges=false",
       [](RunOptions& o, std::string_view v) -> result<void> {
         if (v == "seccomp=unconfined") {
           o.seccomp = false;
         } else if (v == "no-new-privileges=false") {
           o.no_new_privs = false;
         } else if (v != "no-new-privileges" && v != "no-new-privileges=true") {
           return hutch::invalid(fmt::format("--security-opt {}", v),
                                 "expected seccomp=unconfined or no-new-privileges[=true|false]");
         }
         return success();
       }},
      {"rm", 0, nullptr, "Throw the container's writes away when it exits",
       on(&RunOptions::remove)},
      {"init", 0, nullptr,
       "Run an init as PID 1 that forwards signals and reaps orphans (hutch-init)",
       on(&RunOptions::init)},
      {"interactive", 'i', nullptr, "Keep stdin open (otherwise /dev/null)",
       on(&RunOptions::interactive)},
      {"tty", 't', nullptr, "Give the container a terminal (window size forwarded)",
       on(&RunOptions::tty)},
      {"help", 0, nullptr, "Print this help and exit", on(&RunOptions::help)},
  };
  return table;
}

/// Docker's other names for some flags.
inline std::string_view canonical_flag(std::string_view name) {
  if (name == "net") return "network";
  if (name == "pids-limit") return "pids";
  return name;
}

inline const Flag* find_flag(std::string_view name) {
  name = canonical_flag(name);
  for (const Flag& f : flags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

inline const Flag* find_short_flag(char c) {
  for (const Flag& f : flags()) {
    if (f.short_name == c) return &f;
  }
  return nullptr;
}

inline hutch::Error unknown(std::string_view flag) {
  return hutch::invalid("", fmt::format("unknown option {}", flag));
}

/// A cluster of short flags after '-': switches, then perhaps one that takes a value (the
/// rest of the word, or the next word). `i` moves past what was used.
inline hutch::result<void> parse_short(RunOptions& o, std::string_view word,
                                       const std::vector<std::string_view>& args, std::size_t& i) {
  for (std::size_t k = 1; k < word.size(); ++k) {
    const Flag* f = find_short_flag(word[k]);
    if (!f) return unknown(fmt::format("-{}", word[k]));
    if (!f->value) {
      HUTCH_TRYV(f->set(o, {}));
      continue;
    }
    if (k + 1 < word.size()) return f->set(o, word.substr(k + 1 + (word[k + 1] == '=')));
    if (i + 1 >= args.size()) return hutch::invalid(fmt::format("-{}", word[k]), "needs a value");
    return f->set(o, args[++i]);
  }
  return hutch::success();
}

inline hutch::result<void> parse_long(RunOptions& o, std::string_view word,
                                      const std::vector<std::string_view>& args, std::size_t& i) {
  const auto eq = word.find('=');
  const std::string_view name = word.substr(2, eq == std::string_view::npos ? eq : eq - 2);
  const Flag* f = find_flag(name);
  if (!f) return unknown(word.substr(0, eq));
  if (!f->value) {
    if (eq != std::string_view::npos) {
      const std::string_view v = word.substr(eq + 1);
      if (v == "false") return hutch::success();
      if (v != "true") return hutch::invalid(std::string(word), "a switch is true or false");
    }
    return f->set(o, {});
  }
  if (eq != std::string_view::npos) return f->set(o, word.substr(eq + 1));
  if (i + 1 >= args.size()) return hutch::invalid(std::string(word), "needs a value");
  return f->set(o, args[++i]);
}

/// Parses argv[1..]. The command is what follows the flags.
inline hutch::result<RunOptions> parse_args(const std::vector<std::string_view>& args) {
  RunOptions o;
  std::size_t i = 0;
  if (!args.empty() && args[0] == "pull") {  // hutch-run pull [--store DIR] [...] REF
    o.pull_only = true;
    o.pull = "always";
    i = 1;
  }
  for (; i < args.size(); ++i) {
    const std::string_view word = args[i];
    if (word == "--") {
      ++i;
      break;
    }
    if (word.size() < 2 || word[0] != '-') break;  // the command
    if (word[1] == '-') {
      HUTCH_TRYV(parse_long(o, word, args, i));
    } else {
      HUTCH_TRYV(parse_short(o, word, args, i));
    }
  }
  for (; i < args.size(); ++i) o.command.emplace_back(args[i]);
  if (o.help) return o;
  if (o.pull_only) {
    if (o.command.size() != 1 || !o.rootfs.empty() || !o.image.empty()) {
      return hutch::invalid("pull", "give one image reference: hutch-run pull [OPTIONS] IMAGE");
    }
    o.image = o.command[0];
    o.command.clear();
  }
  if (o.rootfs.empty() == o.image.empty()) {
    return hutch::invalid("--rootfs", "give either --rootfs DIR or --image IMAGE");
  }
  if (!o.image.empty() && o.image.size() > 4096) {
    return hutch::invalid("--image", "longer than PATH_MAX");
  }
  if (o.rootfs.empty() == false && o.command.empty()) {
    return hutch::invalid("command", "no command given");
  }
  return o;
}

inline std::string usage() {
  std::string out =
      "Usage: hutch-run (--rootfs DIR | --image IMAGE) [OPTIONS] [--] CMD [ARG...]\n"
      "       hutch-run pull [--store DIR] [--tls-verify BOOL] [--cert-dir DIR] IMAGE\n\n"
      "Run a command in a new container, like `docker run`, with no daemon; or pull an image "
      "into the store, like `docker pull`.\n\nOptions:\n";
  for (const Flag& f : flags()) {
    std::string left = f.short_name ? fmt::format("  -{}, --{}", f.short_name, f.name)
                                    : fmt::format("      --{}", f.name);
    if (f.value) left += fmt::format(" {}", f.value);
    out += fmt::format("{:<34} {}\n", left, f.help);
  }
  out +=
      "\nExit status: the command's, 128+N if killed by signal N, 125 if hutch-run failed, "
      "126 if the command cannot run, 127 if it is not found.\n"
      "\nEnvironment: CNI_PATH, where the CNI plugins are (/opt/cni/bin:/usr/lib/cni); "
      "HUTCH_NET_STATE, where networks keep their state (/run/hutch/net as root); "
      "REGISTRY_AUTH_FILE, DOCKER_CONFIG, where registry credentials are (as podman and "
      "docker keep them).\n";
  return out;
}

}  // namespace hutch_run
