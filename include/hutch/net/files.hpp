// hutch — net module: the files a container's network comes with, as Docker gives them:
// /etc/resolv.conf (the host's name servers but for loopback ones, or those asked for),
// /etc/hosts (localhost, the container's own name and address, added hosts) and
// /etc/hostname. They are made on the host and bound in; written in place (the bind holds the
// inode) once the address is known.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../fd.hpp"

namespace hutch::net {

/// What a container's resolv.conf and hosts hold beyond what its network gives.
struct NameConfig {
  std::vector<std::string> servers;                        // name servers; empty: the host's
  std::vector<std::string> search;                         // search domains; empty: the host's
  std::vector<std::pair<std::string, std::string>> hosts;  // extra /etc/hosts: name, address
};

namespace detail {

inline bool loopback_server(std::string_view address) {
  return address.starts_with("127.") || address == "::1" || address == "0:0:0:0:0:0:0:1";
}

inline std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace detail

/// A container's resolv.conf from the host's (`host_text`): its name servers except loopback
/// ones (unreachable from another network namespace; Docker drops them too), its search and
/// options lines; those of `config` instead where it gives them. With no server left,
/// Google's public ones (Docker's fallback). `keep_loopback`: the host's network, where the
/// host's loopback servers are reachable.
inline std::string resolv_conf(std::string_view host_text, const NameConfig& config,
                               bool keep_loopback) {
  std::vector<std::string> servers = config.servers, search = config.search, options;
  const bool own_servers = !servers.empty(), own_search = !search.empty();
  std::istringstream in{std::string(host_text)};
  for (std::string line; std::getline(in, line);) {
    const auto w = detail::words(line);
    if (w.size() < 2 || w[0].starts_with('#') || w[0].starts_with(';')) continue;
    if (w[0] == "nameserver" && !own_servers && (keep_loopback || !detail::loopback_server(w[1]))) {
      servers.push_back(w[1]);
    } else if ((w[0] == "search" || w[0] == "domain") && !own_search) {
      search.assign(w.begin() + 1, w.end());
    } else if (w[0] == "options") {
      options.insert(options.end(), w.begin() + 1, w.end());
    }
  }
  if (servers.empty()) servers = {"8.8.8.8", "8.8.4.4"};
  std::string out;
  for (const auto& s : servers) out += "nameserver " + s + "\n";
  if (!search.empty()) {
    out += "search";
    for (const auto& s : search) out += " " + s;
    out += "\n";
  }
  if (!options.empty()) {
    out += "options";
    for (const auto& o : options) out += " " + o;
    out += "\n";
  }
  return out;
}

/// A container's /etc/hosts: localhost, the added hosts, and its own name at its address.
inline std::string hosts_file(const NameConfig& config, std::string_view ip,
                              std::string_view hostname) {
  std::string out =
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
      "ff02::2\tip6-allrouters\n";
  for (const auto& [name, address] : config.hosts) out += address + "\t" + name + "\n";
  if (!ip.empty() && !hostname.empty()) {
    out += std::string(ip) + "\t" + std::string(hostname) + "\n";
  }
  return out;
}

/// Reads a text file of at most `limit` bytes; empty when it cannot be read or is larger.
inline std::string read_small_file(const std::string& path, std::size_t limit = 1 << 16) {
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  return text.str().size() <= limit ? text.str() : std::string();
}

/// Writes `text` to `path` in place (the same inode: a bind of it shows the new text).
inline result<void> write_in_place(const std::string& path, std::string_view text, Step step) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) return last_error(step, path);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return last_error(step, path);
    done += static_cast<std::size_t>(n);
  }
  return success();
}

}  // namespace hutch::net
