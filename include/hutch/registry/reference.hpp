// hutch — registry module: image references as docker reads them. `busybox` is
// `docker.io/library/busybox:latest`; `127.0.0.1:5000/team/app:v1` names its registry;
// `name@sha256:<hex>` pins a manifest by digest. The grammar is the distribution project's
// (reference/reference.go in distribution/distribution, as the OCI distribution spec's names
// and tags); anything it does not accept is refused with the part that is wrong.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "../error.hpp"
#include "steps.hpp"

namespace hutch::registry {

namespace detail {

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// A host ("127.0.0.1", "localhost", "::1", "[::1]") on this machine's loopback: docker
/// talks plain HTTP to registries there.
inline bool loopback_host(std::string_view h) {
  if (h.size() > 1 && h.front() == '[') h = h.substr(1, h.size() - 2);
  return h == "localhost" || h == "::1" ||
         (h.starts_with("127.") && h.find_first_not_of("0123456789.") == std::string_view::npos);
}

}  // namespace detail

/// An image reference, normalized: every part docker would fill in is filled in.
struct Reference {
  std::string domain;  // "docker.io", "quay.io", "127.0.0.1:5000", "[::1]:5000"
  std::string path;    // "library/busybox"
  std::string tag;     // "latest" when neither a tag nor a digest is given; may be empty
  std::string digest;  // "sha256:<64 hex digits>", or empty

  /// "docker.io/library/busybox"
  std::string name() const { return domain + "/" + path; }
  /// The whole reference: "docker.io/library/busybox:latest", "...@sha256:...".
  std::string str() const {
    std::string out = name();
    if (!tag.empty()) out += ":" + tag;
    if (!digest.empty()) out += "@" + digest;
    return out;
  }
  /// What a manifest is fetched by (GET /v2/<path>/manifests/<this>): the digest when the
  /// reference has one (it pins the content; a tag beside it is informational, as for docker).
  const std::string& manifest_ref() const { return digest.empty() ? tag : digest; }
  /// The host[:port] the registry's API answers on: Docker Hub's is registry-1.docker.io.
  std::string endpoint() const { return domain == "docker.io" ? "registry-1.docker.io" : domain; }
  /// The host without its port or brackets: "127.0.0.1", "::1", "quay.io".
  std::string host() const {
    if (!domain.empty() && domain.front() == '[') return domain.substr(1, domain.find(']') - 1);
    return domain.substr(0, domain.find(':'));
  }
  /// A registry on this machine's loopback: docker talks plain HTTP to these.
  bool loopback() const { return detail::loopback_host(host()); }
  bool operator==(const Reference&) const = default;
};

namespace detail {

constexpr bool lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
constexpr bool alnum(char c) {
  return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
constexpr bool hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/// path-component: [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
inline bool path_component(std::string_view s) {
  if (s.empty() || !lower_alnum(s.front()) || !lower_alnum(s.back())) return false;
  for (std::size_t i = 0; i < s.size();) {
    if (lower_alnum(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && !lower_alnum(s[j])) ++j;
    const std::string_view sep = s.substr(i, j - i);
    const bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

/// domain-component: [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
inline bool domain_component(std::string_view s) {
  if (s.empty() || !alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return true;
}

/// host [":" port]: a domain name (dot-separated components, which covers IPv4) or a
/// bracketed IPv6 address, and a port of digits.
inline bool domain(std::string_view s) {
  std::string_view host = s, port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : s.substr(1, close - 1)) {
      if (!(hex(c) || (c >= 'A' && c <= 'F') || c == ':' || c == '.')) return false;
    }
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    host = {};
    port = rest.empty() ? rest : rest.substr(1);
    if (!rest.empty() && port.empty()) return false;
  } else if (const auto colon = s.find(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  while (!host.empty()) {
    const auto dot = host.find('.');
    if (!domain_component(host.substr(0, dot))) return false;
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
    if (host.empty()) return false;  // a trailing dot
  }
  return !s.empty() && s.front() != ':';
}

/// tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
inline bool tag(std::string_view s) {
  if (s.empty() || s.size() > 128 || !(alnum(s.front()) || s.front() == '_')) return false;
  for (char c : s) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

inline Error bad(std::string_view text, std::string note) {
  return make_error(registry_step::reference, EINVAL, std::string(text), std::move(note));
}

}  // namespace detail

/// The longest name (domain/path, normalized) the distribution registry accepts.
inline constexpr std::size_t max_name_length = 255;

/// Parses `text` as docker does: a first component with a "." or ":" in it, or "localhost",
/// names the registry (otherwise it is Docker Hub, whose one-component names live under
/// "library/"); the tag defaults to "latest" unless a digest is given. Digests are sha256,
/// the one algorithm hutch verifies.
inline result<Reference> parse_reference(std::string_view text) {
  if (text.empty()) return detail::bad(text, "an image reference is empty");
  Reference r;
  std::string_view rest = text;
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    const std::string_view digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    const auto colon = digest.find(':');
    const std::string_view algorithm = digest.substr(0, colon);
    if (colon == std::string_view::npos) {
      return detail::bad(text, "a digest is ALGORITHM:HEX (sha256:...)");
    }
    if (algorithm != "sha256") {
      return detail::bad(
          text, fmt::format("digest algorithm \"{}\": hutch verifies sha256 only", algorithm));
    }
    const std::string_view value = digest.substr(colon + 1);
    if (value.size() != 64 ||
        value.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
      return detail::bad(text, "a sha256 digest is 64 lowercase hex digits");
    }
    r.digest = std::string(digest);
  }
  const auto slash = rest.rfind('/');
  if (const auto colon = rest.rfind(':');
      colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    const std::string_view tag = rest.substr(colon + 1);
    if (!detail::tag(tag)) {
      return detail::bad(text, fmt::format("tag \"{}\": up to 128 of A-Z a-z 0-9 _ . -, not "
                                           "starting with . or -",
                                           tag));
    }
    r.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return detail::bad(text, "the reference has no repository name");
  std::string_view path = rest;
  if (const auto first = rest.find('/'); first != std::string_view::npos) {
    const std::string_view head = rest.substr(0, first);
    const bool lower = head.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string_view::npos;
    if (head.find_first_of(".:") != std::string_view::npos || head == "localhost" || !lower) {
      if (!detail::domain(head)) {
        return detail::bad(text, fmt::format("registry \"{}\" is not HOST[:PORT]", head));
      }
      r.domain = std::string(head);
      path = rest.substr(first + 1);
    }
  }
  if (path.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos) {
    return detail::bad(text, "a repository name must be lowercase");
  }
  for (std::string_view p = path;;) {
    const auto next = p.find('/');
    if (!detail::path_component(p.substr(0, next))) {
      return detail::bad(
          text, fmt::format("repository \"{}\": each /-separated part is lowercase letters and "
                            "digits, joined by one of . _ __ or dashes",
                            path));
    }
    if (next == std::string_view::npos) break;
    p.remove_prefix(next + 1);
  }
  if (r.domain.empty() || r.domain == "index.docker.io") r.domain = "docker.io";
  r.path = std::string(path);
  if (r.domain == "docker.io" && r.path.find('/') == std::string::npos) {
    r.path = "library/" + r.path;
  }
  if (r.name().size() > max_name_length) {  // as the registry sees it: normalized
    return detail::bad(text,
                       fmt::format("a repository name is at most {} characters", max_name_length));
  }
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

}  // namespace hutch::registry
