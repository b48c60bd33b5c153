// hutch — net module: rootless networking by pasta (Debian's `passt`), as podman does it.
// pasta joins the container's user and network namespaces (given its pid), makes a tap
// interface there with the host's address and routes (--config-net), forwards the published
// ports from the host, and goes on running in the background: the attachment stops it.
#pragma once

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../attachment.hpp"
#include "../detail/scratch.hpp"
#include "../error.hpp"
#include "cni.hpp"
#include "files.hpp"

namespace hutch {
struct PortMapping;
}

namespace hutch::net {

struct PastaStarted {
  pid_t pid = -1;
  NetworkInfo info;
};

namespace detail {

inline std::optional<std::string> find_pasta() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"}) {
    const std::string p = std::string(dir) + "/pasta";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

/// The host's interface with the first IPv4 default route, and that route's gateway.
inline std::pair<std::string, std::string> default_route() {
  std::FILE* f = std::fopen("/proc/net/route", "re");
  if (!f) return {};
  char line[512];
  std::pair<std::string, std::string> found;
  while (std::fgets(line, sizeof line, f)) {
    char iface[64];
    unsigned dest = 1, gateway = 0;
    if (std::sscanf(line, "%63s %x %x", iface, &dest, &gateway) == 3 && dest == 0) {
      in_addr a{gateway};
      char text[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &a, text, sizeof text);
      found = {iface, text};
      break;
    }
  }
  std::fclose(f);
  return found;
}

/// What pasta gives the container: the host's IPv4 address on its default route's interface.
inline NetworkInfo pasta_info(const std::string& ifname) {
  NetworkInfo info;
  info.name = "pasta";
  const auto [iface, gateway] = default_route();
  ifaddrs* list = nullptr;
  if (iface.empty() || ::getifaddrs(&list) != 0) return info;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || iface != a->ifa_name) continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    int prefix = 0;
    if (a->ifa_netmask) {
      prefix = __builtin_popcount(reinterpret_cast<sockaddr_in*>(a->ifa_netmask)->sin_addr.s_addr);
    }
    info.addresses.push_back({ifname, fmt::format("{}/{}", text, prefix), gateway});
    break;
  }
  ::freeifaddrs(list);
  return info;
}

}  // namespace detail

/// Whether pasta is installed (and how to get it if not).
inline result<void> pasta_available() {
  if (detail::find_pasta()) return success();
  return make_error(net_step::pasta, ENOENT, "pasta",
                    "rootless networking needs pasta (Debian: apt install passt)");
}

/// Starts pasta for the container `target` (its user namespace's ids already mapped), with
/// `ports` forwarded (TCP and UDP, "[host_ip/]host_port:container_port"). pasta gets the
/// container's namespaces as descriptors 3 and 4, writes its pid to `pid_file` and goes to
/// the background once the namespace is configured.
template <class Ports>
inline result<PastaStarted> start_pasta(const AttachTarget& target, const Ports& ports,
                                        const std::string& ifname, const std::string& pid_file) {
  const auto exe = detail::find_pasta();
  if (!exe) return pasta_available().error();
  std::string tcp, udp;
  for (const auto& p : ports) {
    std::string spec = p.host_ip.empty() ? std::string() : p.host_ip + "/";
    spec += fmt::format("{}:{}", p.host_port, p.container_port);
    std::string& list = p.protocol == std::decay_t<decltype(p)>::Protocol::udp ? udp : tcp;
    list += (list.empty() ? "" : ",") + spec;
  }
  std::vector<std::string> args = {*exe,
                                   "--config-net",
                                   "--quiet",
                                   "--pid",
                                   pid_file,
                                   "--ns-ifname",
                                   ifname,
                                   "-t",
                                   tcp.empty() ? "none" : tcp,
                                   "-u",
                                   udp.empty() ? "none" : udp,
                                   "-T",
                                   "none",
                                   "-U",
                                   "none",
                                   "--no-netns-quit",
                                   "--netns",
                                   "/proc/self/fd/3"};
  std::vector<int> fds = {target.netns_fd};
  if (target.userns_fd >= 0) {
    args.insert(args.end(), {"--userns", "/proc/self/fd/4"});
    fds.push_back(target.userns_fd);
  }
  std::string out, err;
  HUTCH_TRY(const int status,
            hutch::detail::run_captured(args, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, "",
                                        std::chrono::milliseconds(30000), net_step::pasta, out, err,
                                        fds));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string why = err.empty() ? out : err;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    if (why.find("tun") != std::string::npos) {
      why += " (pasta needs /dev/net/tun, usable by the caller: mode 0666)";
    }
    return make_error(net_step::pasta, EIO, *exe, why.empty() ? "pasta failed" : why);
  }
  PastaStarted started;
  const std::string text = read_small_file(pid_file);
  started.pid = static_cast<pid_t>(std::atol(text.c_str()));
  if (started.pid <= 0) return make_error(net_step::pasta, EPROTO, pid_file, "no pid from pasta");
  started.info = detail::pasta_info(ifname);
  return started;
}

/// Whether the pasta a record names still runs (the same process, not exited).
inline bool pasta_running(const nlohmann::json& record) {
  if (!record.contains("pasta_pid") || !record.contains("pasta_start")) return false;
  const long pid = record["pasta_pid"].get<long>();
  if (pid <= 0 || hutch::detail::start_time(pid) != record["pasta_start"].get<std::uint64_t>()) {
    return false;
  }
  const std::string stat = read_small_file(fmt::format("/proc/{}/stat", pid));
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

/// Stops the pasta a record names, if it is still that process.
inline void stop_pasta(const nlohmann::json& record) {
  if (!record.contains("pasta_pid") || !record.contains("pasta_start")) return;
  const long pid = record["pasta_pid"].get<long>();
  if (pid > 0 && hutch::detail::start_time(pid) == record["pasta_start"].get<std::uint64_t>()) {
    ::kill(static_cast<pid_t>(pid), SIGTERM);
  }
}

}  // namespace hutch::net
