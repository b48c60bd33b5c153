// hutch — net module: Network, what a container's network is (none, the host's, a bridge,
// any CNI network, or pasta for rootless containers), and the Attachment that sets it up for
// one container between its clone and its exec.
//
// A CNI attachment, for each container:
//   prepare (before clone)  reclaims what dead hosts left in the state directory; makes
//                           STATE/hutch-<pid>-<start>-<n>/ with resolv.conf, hosts, hostname;
//                           reserves the published host ports (binds them: a port in use
//                           fails here, as with Docker)
//   attach (child waiting)  binds the child's network namespace at DIR/netns (as `ip netns`
//                           does: held until DEL, past the container's and the host's end),
//                           writes record.json (the list, the runtime config), runs the ADD chain,
//                           stores its result in the record, writes the address into hosts
//   destroyed (janitor)     the DEL chain from the stored result, then the directory
// A host killed with SIGKILL leaves its directories behind: the next prepare in the same
// state directory runs their DEL (the namespace gone: plugins release the lease, rules and
// qdiscs by container id) unless their container still runs (a detached one).
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../attachment.hpp"
#include "../detail/private_dir.hpp"
#include "../detail/scratch.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "cni.hpp"
#include "files.hpp"
#include "pasta.hpp"

namespace hutch {

/// A published port: traffic to `host_ip`:`host_port` on the host goes to `container_port`
/// in the container (`docker run -p`). An empty host_ip is every address.
struct PortMapping {
  enum class Protocol : std::uint8_t { tcp, udp };
  std::string host_ip;
  std::uint16_t host_port = 0;
  std::uint16_t container_port = 0;
  Protocol protocol = Protocol::tcp;
};

/// A container's network: `Container::network(Network::bridge().publish(...))`.
class Network {
 public:
  enum class Kind : std::uint8_t { none, host, bridge, cni, pasta };

  /// A network namespace of its own with loopback only (the default without network()).
  static Network none() { return Network(Kind::none); }
  /// The host's network namespace.
  static Network host() { return Network(Kind::host); }
  /// hutch's default bridge network "hutch": bridge hutch0, host-local addresses from
  /// 10.77.0.0/24 (clear of podman's 10.88/16 and 10.89.x/24 and Docker's 172.17-31/16), NAT
  /// to the outside, firewall; published ports (portmap) and bandwidth limits when asked for.
  /// Needs root.
  static Network bridge() { return Network(Kind::bridge); }
  /// A CNI network: a name looked up in `config_dir` (/etc/cni/net.d by default), a path to
  /// a .conflist/.conf file, or the configuration list's JSON text itself.
  static Network cni(std::string name_path_or_json) {
    Network n(Kind::cni);
    n.cni_ = std::move(name_path_or_json);
    return n;
  }
  /// User-mode networking by pasta (Debian's `passt`): for rootless containers, as podman
  /// does. The container gets the host's addresses and routes; published ports are
  /// forwarded by pasta.
  static Network pasta() { return Network(Kind::pasta); }

  /// Publishes a port (portmap; pasta forwards it). Repeatable.
  Network& publish(PortMapping port) {
    ports_.push_back(std::move(port));
    return *this;
  }
  /// Limits the container's traffic in bits per second (0: no limit that way): `ingress`
  /// into the container, `egress` out of it (the CNI bandwidth plugin's token buckets).
  Network& bandwidth(std::uint64_t ingress_bps, std::uint64_t egress_bps) {
    ingress_ = ingress_bps;
    egress_ = egress_bps;
    return *this;
  }
  /// A name server for the container's resolv.conf (instead of the host's). Repeatable.
  Network& dns(std::string server) {
    names_.servers.push_back(std::move(server));
    return *this;
  }
  /// A search domain for resolv.conf (instead of the host's). Repeatable.
  Network& dns_search(std::string domain) {
    names_.search.push_back(std::move(domain));
    return *this;
  }
  /// An /etc/hosts entry (`--add-host NAME:IP`).
  Network& add_host(std::string name, std::string ip) {
    names_.hosts.emplace_back(std::move(name), std::move(ip));
    return *this;
  }
  /// bridge(): the subnet to give addresses from (CIDR) and the bridge's name.
  Network& subnet(std::string cidr) {
    subnet_ = std::move(cidr);
    return *this;
  }
  Network& bridge_name(std::string name) {
    bridge_name_ = std::move(name);
    return *this;
  }
  /// Where CNI plugins are looked for (CNI_PATH); and where named networks are.
  Network& cni_path(std::string path) {
    cni_path_ = std::move(path);
    return *this;
  }
  Network& config_dir(std::string dir) {
    config_dir_ = std::move(dir);
    return *this;
  }
  /// Where attachments keep their state (and bridge() its address leases): /run/hutch/net
  /// for root, $XDG_RUNTIME_DIR/hutch/net otherwise. Private to its owner.
  Network& state_dir(std::string dir) {
    state_dir_ = std::move(dir);
    return *this;
  }
  /// The interface's name inside the container (CNI_IFNAME; eth0).
  Network& interface(std::string name) {
    ifname_ = std::move(name);
    return *this;
  }

  Kind kind() const noexcept { return kind_; }
  const std::vector<PortMapping>& ports() const noexcept { return ports_; }
  const net::NameConfig& names() const noexcept { return names_; }
  const std::string& ifname() const noexcept { return ifname_; }
  const std::string& cni_path_list() const noexcept { return cni_path_; }

  /// The state directory in use (state_dir(), or the default for the caller).
  std::string state_directory() const {
    if (!state_dir_.empty()) return state_dir_;
    if (::geteuid() == 0) return "/run/hutch/net";
    const char* runtime = ::getenv("XDG_RUNTIME_DIR");
    if (runtime && *runtime == '/') return std::string(runtime) + "/hutch/net";
    return fmt::format("/tmp/hutch-net-{}", ::geteuid());
  }

  /// The configuration list a bridge() or cni() network runs.
  result<net::NetworkList> network_list() const {
    if (kind_ == Kind::bridge) return default_bridge_list();
    if (kind_ != Kind::cni) {
      return make_error(net_step::config, EINVAL, kind_name(), "not a CNI network");
    }
    if (!cni_.empty() && cni_.front() == '{') return net::parse_network_list(cni_, "(given)");
    if (cni_.find('/') != std::string::npos) return net::read_network_list(cni_);
    if (!net::detail::valid_name(cni_)) {
      return make_error(net_step::config, EINVAL, cni_, "not a network name, path or list");
    }
    return net::find_network_list(cni_, config_dir_);
  }

  /// The runtime configuration for the plugins' capabilities: portMappings and bandwidth.
  nlohmann::json runtime_config() const {
    nlohmann::json rc = nlohmann::json::object();
    if (!ports_.empty()) {
      nlohmann::json ports = nlohmann::json::array();
      for (const auto& p : ports_) {
        nlohmann::json entry = {
            {"hostPort", p.host_port},
            {"containerPort", p.container_port},
            {"protocol", p.protocol == PortMapping::Protocol::udp ? "udp" : "tcp"}};
        if (!p.host_ip.empty()) entry["hostIP"] = p.host_ip;
        ports.push_back(std::move(entry));
      }
      rc["portMappings"] = std::move(ports);
    }
    if (ingress_ || egress_) {
      // The token bucket (in bits): 4 ms of traffic (a kernel tick at HZ=250), at least
      // 16 KiB (a few full-size packets). Measured here, a bucket of 100 KB at 8mbit let a
      // 4 MiB transfer into the container through 30% fast; 16 KiB holds it to the rate.
      auto burst = [](std::uint64_t rate) {
        return std::max<std::uint64_t>(rate / 250, std::uint64_t{16} << 13);
      };
      nlohmann::json bw = nlohmann::json::object();
      if (ingress_) bw["ingressRate"] = ingress_, bw["ingressBurst"] = burst(ingress_);
      if (egress_) bw["egressRate"] = egress_, bw["egressBurst"] = burst(egress_);
      rc["bandwidth"] = std::move(bw);
    }
    return rc;
  }

  /// What Container::network() takes.
  operator std::shared_ptr<const Attacher>() const;  // NOLINT: converts implicitly by design

  std::string kind_name() const {
    switch (kind_) {
      case Kind::none:
        return "none";
      case Kind::host:
        return "host";
      case Kind::bridge:
        return "bridge";
      case Kind::cni:
        return "cni";
      case Kind::pasta:
        return "pasta";
    }
    return "?";
  }

 private:
  explicit Network(Kind kind) : kind_(kind) {}

  result<net::NetworkList> default_bridge_list() const {
    nlohmann::json ipam = {{"type", "host-local"},
                           {"ranges", {{{{"subnet", subnet_}}}}},
                           {"routes", {{{"dst", "0.0.0.0/0"}}}},
                           {"dataDir", state_directory() + "/ipam"}};
    nlohmann::json list = {{"cniVersion", "1.0.0"},
                           {"name", "hutch"},
                           {"plugins",
                            {{{"type", "bridge"},
                              {"bridge", bridge_name_},
                              {"isGateway", true},
                              {"ipMasq", true},
                              {"hairpinMode", true},
                              {"ipam", std::move(ipam)}}}}};
    // portmap and bandwidth only when there is something for them to do: each plugin is a
    // program run at ADD and again at DEL (about 20 ms each here). The record keeps the list
    // that ran, so DEL runs the same ones.
    auto& plugins = list["plugins"];
    if (!ports_.empty()) {
      plugins.push_back(
          {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}});
    }
    plugins.push_back({{"type", "firewall"}});
    if (ingress_ || egress_) {
      plugins.push_back({{"type", "bandwidth"}, {"capabilities", {{"bandwidth", true}}}});
    }
    return net::NetworkList{std::move(list), "hutch's default bridge network"};
  }

  Kind kind_;
  std::string cni_;
  std::vector<PortMapping> ports_;
  std::uint64_t ingress_ = 0, egress_ = 0;
  net::NameConfig names_;
  std::string subnet_ = "10.77.0.0/24";
  std::string bridge_name_ = "hutch0";
  std::string cni_path_ = "/opt/cni/bin:/usr/lib/cni";
  std::string config_dir_ = "/etc/cni/net.d";
  std::string state_dir_;
  std::string ifname_ = "eth0";
};

}  // namespace hutch

namespace hutch::net {

namespace detail {

/// The record an attachment keeps in its directory, for its DEL and for a later recovery.
inline result<void> write_record(const std::string& dir, const nlohmann::json& record) {
  const std::string path = dir + "/record.json";
  const std::string tmp = path + ".new";
  HUTCH_TRYV(write_in_place(tmp, record.dump(), net_step::add));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return last_error(net_step::add, path);
  return success();
}

inline std::optional<nlohmann::json> read_record(const std::string& dir) {
  auto json = nlohmann::json::parse(read_small_file(dir + "/record.json", std::size_t{1} << 20),
                                    nullptr, false);
  if (json.is_discarded() || !json.is_object()) return std::nullopt;
  return json;
}

/// Removes an attachment's directory: its few files, then itself.
inline void remove_attachment_dir(const std::string& dir) {
  ::umount2((dir + "/netns").c_str(), MNT_DETACH);
  for (const char* name : {"record.json", "record.json.new", "resolv.conf", "hosts", "hostname",
                           "pasta.pid", "netns"}) {
    ::unlink((dir + "/" + name).c_str());
  }
  ::rmdir(dir.c_str());
}

/// A bound socket that holds a published port for the container's life.
inline result<Fd> reserve_port(const PortMapping& p) {
  const bool udp = p.protocol == PortMapping::Protocol::udp;
  const bool v6 = p.host_ip.find(':') != std::string::npos;
  Fd fd(::socket(v6 ? AF_INET6 : AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
  if (!fd) return last_error(net_step::publish, p.host_ip);
  const std::string where = fmt::format("{}:{}/{}", p.host_ip.empty() ? "0.0.0.0" : p.host_ip,
                                        p.host_port, udp ? "udp" : "tcp");
  int r = -1;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(p.host_port);
    if (::inet_pton(AF_INET6, p.host_ip.c_str(), &a.sin6_addr) != 1) {
      return make_error(net_step::publish, EINVAL, where, "not an IP address");
    }
    r = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(p.host_port);
    if (!p.host_ip.empty() && ::inet_pton(AF_INET, p.host_ip.c_str(), &a.sin_addr) != 1) {
      return make_error(net_step::publish, EINVAL, where, "not an IP address");
    }
    r = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (r != 0) {
    return last_error(net_step::publish, where,
                      errno == EADDRINUSE ? "the port is already in use on the host" : "");
  }
  return fd;
}

/// Whether `path` is a network namespace bound there (and not the empty file under it).
inline bool netns_is_bound(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == NSFS_MAGIC;
}

/// Binds the network namespace of `pid` at `path` (made empty first), as `ip netns` does: it
/// outlives the container and its host until DEL, so that DEL finds what ADD made.
inline result<void> bind_netns(int netns_fd, const std::string& path) {
  Fd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (!file) return last_error(net_step::add, path);
  const std::string ns = fmt::format("/proc/self/fd/{}", netns_fd);
  if (::mount(ns.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return last_error(net_step::add, path, "binding the container's network namespace");
  }
  return success();
}

/// Whether process `pid` that started at `start` still runs (a zombie does not: its
/// namespaces are gone, only its parent has not reaped it yet).
inline bool process_runs(long pid, std::uint64_t start) {
  if (pid <= 0 || hutch::detail::start_time(pid) != start) return false;
  const std::string stat = read_small_file(fmt::format("/proc/{}/stat", pid));
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

/// Whether the container process a record names still runs.
inline bool record_container_runs(const nlohmann::json& record) {
  if (!record.contains("pid") || !record.contains("start")) return false;
  return process_runs(record["pid"].get<long>(), record["start"].get<std::uint64_t>());
}

/// How a record's plugins are run: its container id, interface and CNI_PATH, in `netns`.
inline Invocation invocation_of(const nlohmann::json& record, std::string netns) {
  Invocation how;
  how.container_id = record.value("container_id", "");
  how.ifname = record.value("ifname", "eth0");
  how.cni_path = record.value("cni_path", how.cni_path);
  how.netns = std::move(netns);
  return how;
}

/// Undoes what a record says was attached (the DEL chain; CNI_NETNS as given).
inline result<void> undo_record(const nlohmann::json& record, const std::string& netns) {
  if (!record.contains("list")) return success();
  auto list = parse_network_list(record["list"].dump(), "record.json");
  if (!list) return list.error();
  const Invocation how = invocation_of(record, netns);
  const nlohmann::json runtime = record.value("runtimeConfig", nlohmann::json::object());
  const nlohmann::json result = record.value("result", nlohmann::json());
  return del(*list, how, runtime, result, list->list["plugins"].size());
}

/// Runs the DEL of attachments whose host and container are both gone (a host killed with
/// SIGKILL), in `state`, and removes their directories. Only the caller's own entries.
inline void reclaim_attachments(const std::string& state) {
  DIR* d = ::opendir(state.c_str());
  if (!d) return;
  std::vector<std::string> dead;
  while (dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (!name.starts_with("hutch-") || !hutch::detail::owner_is_gone(name)) continue;
    dead.emplace_back(name);
  }
  ::closedir(d);
  for (const auto& name : dead) {
    const std::string dir = state + "/" + name;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
      continue;
    }
    auto record = read_record(dir);
    if (record && record_container_runs(*record)) continue;  // a detached container's
    if (record) {
      // The namespace, held by its bind mount: the plugins' DEL finds the interface and
      // the rules named for its address.
      const std::string netns = dir + "/netns";
      (void)undo_record(*record, netns_is_bound(netns) ? netns : "");
      stop_pasta(*record);
    }
    remove_attachment_dir(dir);
  }
}

}  // namespace detail

/// One container's network: see the top of this file.
class NetworkAttachment final : public Attachment {
 public:
  NetworkAttachment(const Network& network, std::string dir, std::optional<NetworkList> list,
                    std::string hostname)
      : network_(network),
        dir_(std::move(dir)),
        list_(std::move(list)),
        hostname_(std::move(hostname)) {}
  NetworkAttachment(const NetworkAttachment&) = delete;
  NetworkAttachment& operator=(const NetworkAttachment&) = delete;

  ~NetworkAttachment() override {
    if (kept_) return;
    if (recorded_ && list_) (void)detail::undo_record(record_, netns_path());
    if (pasta_pid_ > 0) stop_pasta(record_);
    if (!dir_.empty()) detail::remove_attachment_dir(dir_);
  }

  /// Made before clone: the directory, its files, the port reservations.
  result<void> prepare() {
    const std::string host_resolv = read_small_file("/etc/resolv.conf");
    const bool host = network_.kind() == Network::Kind::host;
    // pasta copies the host's addresses and answers DNS itself only if asked: the host's
    // servers but loopback ones serve it as they serve the bridge.
    HUTCH_TRYV(write_in_place(dir_ + "/resolv.conf",
                              resolv_conf(host_resolv, network_.names(), host), net_step::prepare));
    HUTCH_TRYV(
        write_in_place(dir_ + "/hosts", hosts_file(network_.names(), "", ""), net_step::prepare));
    if (!hostname_.empty()) {
      HUTCH_TRYV(write_in_place(dir_ + "/hostname", hostname_ + "\n", net_step::prepare));
    }
    if (list_) {
      for (const auto& p : network_.ports()) {
        HUTCH_TRY(Fd held, detail::reserve_port(p));
        ports_.push_back(std::move(held));
      }
    }
    return success();
  }

  std::vector<File> files() const override {
    std::vector<File> out = {{dir_ + "/resolv.conf", "/etc/resolv.conf"},
                             {dir_ + "/hosts", "/etc/hosts"}};
    if (!hostname_.empty()) out.push_back({dir_ + "/hostname", "/etc/hostname"});
    return out;
  }

  result<void> attach(const AttachTarget& target) override {
    const pid_t pid = target.pid;
    record_ = {{"container_id", container_id()},
               {"ifname", network_.ifname()},
               {"cni_path", network_.cni_path_list()},
               {"runtimeConfig", network_.runtime_config()},
               {"pid", pid},
               {"start", hutch::detail::start_time(pid)}};
    if (network_.kind() == Network::Kind::pasta) return attach_pasta(target);
    if (!list_) return success();
    record_["list"] = list_->list;
    HUTCH_TRYV(detail::bind_netns(target.netns_fd, netns_path()));
    HUTCH_TRYV(detail::write_record(dir_, record_));  // before ADD: a crash mid-way is undone
    recorded_ = true;
    HUTCH_TRY(nlohmann::json added,
              add(*list_, detail::invocation_of(record_, netns_path()), record_["runtimeConfig"]));
    record_["result"] = added;
    HUTCH_TRYV(detail::write_record(dir_, record_));
    info_ = info_of(added);
    HUTCH_TRYV(write_in_place(dir_ + "/hosts", hosts_file(network_.names(), info_.ip(), hostname_),
                              net_step::add));
    return success();
  }

  NetworkInfo info() const override { return info_; }

  /// CNI: each plugin's CHECK against the stored ADD result. pasta: that it still runs.
  result<void> check() const override {
    if (network_.kind() == Network::Kind::pasta) {
      if (pasta_pid_ > 0 && pasta_running(record_)) return success();
      return make_error(net_step::check, ESRCH, fmt::format("pasta (pid {})", pasta_pid_),
                        "pasta has exited: the container has lost its network");
    }
    if (!list_ || !record_.contains("result")) return success();
    return net::check(*list_, detail::invocation_of(record_, netns_path()),
                      record_["runtimeConfig"], record_["result"]);
  }

  void keep() noexcept override {
    kept_ = true;  // the record stays; a later reclaim undoes it once the container is gone
    ports_.clear();
  }

  /// The CNI container id: the directory's name (hutch-<host pid>-<start>-<n>).
  std::string container_id() const { return dir_.substr(dir_.rfind('/') + 1); }

 private:
  /// The namespace's bind mount: the container may be gone by DEL time.
  std::string netns_path() const { return dir_ + "/netns"; }

  NetworkInfo info_of(const nlohmann::json& result) const {
    NetworkInfo info;
    info.name = list_ ? list_->name() : network_.kind_name();
    std::vector<std::string> names;
    std::vector<bool> inside;
    if (result.contains("interfaces") && result["interfaces"].is_array()) {
      for (const auto& i : result["interfaces"]) {
        names.push_back(i.value("name", ""));
        inside.push_back(!i.value("sandbox", "").empty());
      }
    }
    if (result.contains("ips") && result["ips"].is_array()) {
      for (const auto& ip : result["ips"]) {
        if (!ip.is_object() || !ip.contains("address")) continue;
        std::string ifname = network_.ifname();
        if (ip.contains("interface") && ip["interface"].is_number_integer()) {
          const auto index = ip["interface"].get<std::size_t>();
          if (index < names.size()) {
            if (!inside[index]) continue;  // the host side's (a bridge's own address)
            ifname = names[index];
          }
        }
        info.addresses.push_back({ifname, ip.value("address", ""), ip.value("gateway", "")});
      }
    }
    return info;
  }

  result<void> attach_pasta(const AttachTarget& target) {
    HUTCH_TRYV(detail::write_record(dir_, record_));
    recorded_ = true;
    HUTCH_TRY(PastaStarted started,
              start_pasta(target, network_.ports(), network_.ifname(), dir_ + "/pasta.pid"));
    pasta_pid_ = started.pid;
    record_["pasta_pid"] = started.pid;
    record_["pasta_start"] = hutch::detail::start_time(started.pid);
    HUTCH_TRYV(detail::write_record(dir_, record_));
    info_ = started.info;
    HUTCH_TRYV(write_in_place(dir_ + "/hosts", hosts_file(network_.names(), info_.ip(), hostname_),
                              net_step::pasta));
    return success();
  }

  Network network_;
  std::string dir_;
  std::optional<NetworkList> list_;
  std::string hostname_;
  std::vector<Fd> ports_;
  nlohmann::json record_;
  bool recorded_ = false, kept_ = false;
  pid_t pasta_pid_ = -1;
  NetworkInfo info_;
};

/// A Network as part of a Container's description.
class NetworkAttacher final : public Attacher {
 public:
  explicit NetworkAttacher(Network network) : network_(std::move(network)) {}
  bool host_network() const override { return network_.kind() == Network::Kind::host; }

  result<std::unique_ptr<Attachment>> prepare(
      const std::optional<std::string>& hostname) const override {
    std::optional<NetworkList> list;
    if (network_.kind() == Network::Kind::bridge || network_.kind() == Network::Kind::cni) {
      HUTCH_TRY(NetworkList found, network_.network_list());
      list = std::move(found);
      if (::geteuid() != 0) {
        return make_error(net_step::add, EPERM, list->name(),
                          "CNI networks need root (CAP_NET_ADMIN on the host); rootless "
                          "containers use Network::pasta()");
      }
    }
    if (network_.kind() == Network::Kind::pasta) HUTCH_TRYV(pasta_available());
    if (network_.kind() != Network::Kind::host && network_.kind() != Network::Kind::pasta &&
        !list && !network_.ports().empty()) {
      return invalid("network none", "ports are published only on a network (bridge, cni, pasta)");
    }
    const std::string state = network_.state_directory();
    HUTCH_TRYV(make_state_dir(state));
    detail::reclaim_attachments(state);
    static std::atomic<unsigned> counter{0};
    const std::string dir =
        fmt::format("{}/{}{}", state, hutch::detail::owner_prefix(), counter.fetch_add(1));
    if (::mkdir(dir.c_str(), 0755) != 0) return last_error(net_step::prepare, dir);
    auto attachment =
        std::make_unique<NetworkAttachment>(network_, dir, std::move(list), hostname.value_or(""));
    HUTCH_TRYV(attachment->prepare());
    return std::unique_ptr<Attachment>(std::move(attachment));
  }

 private:
  /// The state directory and its parents (made 0755: entries in it are read by the
  /// container, through their binds, as any user).
  static result<void> make_state_dir(const std::string& state) {
    std::string partial;
    std::string_view rest = state;
    while (!rest.empty()) {
      const auto slash = rest.find('/', 1);
      partial += std::string(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return last_error(net_step::prepare, partial);
      }
    }
    return hutch::detail::private_directory(state, net_step::prepare, {.others_may_read = true});
  }

  Network network_;
};

}  // namespace hutch::net

namespace hutch {
inline Network::operator std::shared_ptr<const Attacher>() const {
  if (kind_ == Kind::none && ports_.empty()) return nullptr;
  return std::make_shared<net::NetworkAttacher>(*this);
}
}  // namespace hutch
