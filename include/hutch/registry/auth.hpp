// hutch — registry module: what a registry asks for (the WWW-Authenticate challenges of
// RFC 7235: Bearer with realm, service and scope; Basic) and the credentials users already
// keep for it: the containers auth.json (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/
// auth.json) and docker's config.json (DOCKER_CONFIG, ~/.docker/config.json), with their
// `auths` entries and the credential helpers (`credHelpers`, `credsStore`) run as
// `docker-credential-NAME get`. A credential is never put into an error or a log.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../detail/run_captured.hpp"
#include "../error.hpp"
#include "../fd.hpp"
#include "reference.hpp"

extern char** environ;

namespace hutch::registry {

/// One challenge of a WWW-Authenticate header: its scheme (lower case: "bearer", "basic")
/// and its parameters (names in lower case: "realm", "service", "scope", ...).
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
  std::string param(const std::string& name) const {
    const auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

namespace detail {

constexpr bool token_char(char c) {
  // RFC 7230 tchar.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// A small cursor over a header value.
struct Cursor {
  std::string_view s;
  std::size_t i = 0;
  void spaces() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  }
  bool done() const { return i >= s.size(); }
  std::string_view token() {
    const std::size_t start = i;
    while (i < s.size() && token_char(s[i])) ++i;
    return s.substr(start, i - start);
  }
  /// A quoted-string, its escapes undone; nullopt if it does not close.
  std::optional<std::string> quoted() {
    std::string out;
    for (++i; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        out += s[++i];
      } else if (s[i] == '"') {
        ++i;
        return out;
      } else {
        out += s[i];
      }
    }
    return std::nullopt;
  }
};

}  // namespace detail

/// The challenges of a WWW-Authenticate header value, in order. What cannot be read ends the
/// list (what came before it stands): a registry's header is data from a stranger.
inline std::vector<Challenge> parse_challenges(std::string_view header) {
  std::vector<Challenge> out;
  detail::Cursor c{header};
  for (;;) {
    c.spaces();
    while (!c.done() && c.s[c.i] == ',') {
      ++c.i;
      c.spaces();
    }
    const std::string_view scheme = c.token();
    if (scheme.empty()) break;
    Challenge challenge{detail::lower(scheme), {}};
    // Parameters: name = value, comma-separated; a name not followed by "=" is the next
    // challenge's scheme.
    for (;;) {
      c.spaces();
      const std::size_t mark = c.i;
      const std::string_view name = c.token();
      c.spaces();
      if (name.empty() || c.done() || c.s[c.i] != '=') {
        c.i = mark;
        break;
      }
      ++c.i;
      c.spaces();
      std::string value;
      if (!c.done() && c.s[c.i] == '"') {
        auto q = c.quoted();
        if (!q) {
          out.push_back(std::move(challenge));
          return out;
        }
        value = std::move(*q);
      } else {
        value = std::string(c.token());
      }
      challenge.params[detail::lower(name)] = std::move(value);
      c.spaces();
      if (c.done() || c.s[c.i] != ',') break;
      ++c.i;
    }
    out.push_back(std::move(challenge));
    if (c.done()) break;
    if (c.i < c.s.size() && !detail::token_char(c.s[c.i]) && c.s[c.i] != ',' && c.s[c.i] != ' ') {
      break;  // not a header we can read further
    }
  }
  return out;
}

/// A user name and password for one registry (or an identity token docker stored after an
/// OAuth login, sent as a refresh token to the token server). Printing one shows no secret.
struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;
  /// Where they came from, for messages: "/root/.docker/config.json",
  /// "docker-credential-pass".
  std::string source;
  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

/// Where credentials are looked for, first match wins. Empty members take the environment's
/// defaults (see `from_environment`).
struct CredentialFiles {
  std::vector<std::string> files;  // auth.json and config.json files, in order
  std::string helper_path;         // PATH for docker-credential-* helpers
  std::chrono::milliseconds helper_timeout{10000};

  /// Where podman, skopeo and docker look: REGISTRY_AUTH_FILE or
  /// $XDG_RUNTIME_DIR/containers/auth.json, then $DOCKER_CONFIG/config.json or
  /// ~/.docker/config.json.
  static CredentialFiles from_environment() {
    CredentialFiles f;
    const auto env = [](const char* name) {
      const char* v = std::getenv(name);
      return std::string(v ? v : "");
    };
    if (const std::string auth_file = env("REGISTRY_AUTH_FILE"); !auth_file.empty()) {
      f.files.push_back(auth_file);
    } else if (const std::string runtime = env("XDG_RUNTIME_DIR"); !runtime.empty()) {
      f.files.push_back(runtime + "/containers/auth.json");
    }
    if (const std::string docker = env("DOCKER_CONFIG"); !docker.empty()) {
      f.files.push_back(docker + "/config.json");
    } else if (const std::string home = env("HOME"); !home.empty()) {
      f.files.push_back(home + "/.docker/config.json");
    }
    f.helper_path = env("PATH");
    if (f.helper_path.empty()) f.helper_path = "/usr/local/bin:/usr/bin:/bin";
    return f;
  }
};

namespace detail {

inline Error auth_error(std::string subject, std::string note, int code = EINVAL) {
  return make_error(registry_step::credentials, code, std::move(subject), std::move(note));
}

/// RFC 4648 base64, padded.
inline std::string base64_encode(std::string_view in) {
  static constexpr char digits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += digits[(v >> shift) & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += digits[(v >> 18) & 63];
    out += digits[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += digits[(v >> 18) & 63];
    out += digits[(v >> 12) & 63];
    out += digits[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

/// RFC 4648 base64, padding optional; nullopt on anything else.
inline std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  unsigned bits = 0;
  int count = 0;
  std::size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    const char c = in[i];
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else {
      return std::nullopt;
    }
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  for (; i < in.size(); ++i) {
    if (in[i] != '=') return std::nullopt;
  }
  if (count >= 6) return std::nullopt;  // a lone sextet is no byte
  return out;
}

/// The registry (and path) an `auths` key names. Keys written as URLs ("https://index.docker.
/// io/v1/", "http://host:5000/v2/") name a host only; bare keys may name a namespace within
/// one ("quay.io/team"), as podman's auth.json allows. Docker Hub's many names are one.
inline std::string auth_key(std::string_view key) {
  bool url = false;
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.starts_with(scheme)) {
      key.remove_prefix(scheme.size());
      url = true;
    }
  }
  if (url) key = key.substr(0, key.find('/'));
  while (key.ends_with('/')) key.remove_suffix(1);
  std::string out(key);
  const auto slash = out.find('/');
  const std::string host = out.substr(0, slash);
  if (host == "index.docker.io" || host == "registry-1.docker.io") {
    out = "docker.io" + (slash == std::string::npos ? std::string() : out.substr(slash));
  }
  return out;
}

/// The `auths` key (as auth_key reads it) that matches `r` best: its longest namespace
/// ("quay.io/team/app", then "quay.io/team", then "quay.io").
inline std::size_t match_length(const std::string& key, const Reference& r) {
  const std::string name = r.name();
  if (key == name || key == r.domain) return key.size();
  if (name.starts_with(key) && name.size() > key.size() && name[key.size()] == '/') {
    return key.size();
  }
  return 0;
}

inline result<std::string> read_auth_file(const std::string& path) {
  constexpr std::size_t limit = std::size_t{1} << 20;
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));  // a FIFO must not hang us
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return last_error(registry_step::credentials, path);
  if (!S_ISREG(st.st_mode)) return auth_error(path, "not a regular file");
  std::string text;
  char buffer[65536];
  for (ssize_t n; (n = ::read(fd.get(), buffer, sizeof buffer)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error(registry_step::credentials, path);
    }
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limit) return auth_error(path, "a credentials file over 1 MiB", EFBIG);
  }
  return text;
}

/// Runs `docker-credential-NAME get` for `server`: its answer {"Username","Secret"}, empty
/// credentials when it has none for the server.
inline result<Credentials> run_helper(const std::string& name, const std::string& server,
                                      const CredentialFiles& where) {
  const std::string program = "docker-credential-" + name;
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return auth_error(program, "a credential helper is named by a plain word");
  }
  const auto exe = hutch::detail::find_executable(program, where.helper_path);
  if (!exe) {
    return auth_error(program, "the credential helper the docker config names is not in PATH",
                      ENOENT);
  }
  // Helpers reach keychains through the user's session (HOME, DBUS_SESSION_BUS_ADDRESS,
  // GNUPGHOME, ...): they get the caller's environment, as docker runs them.
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  std::string out, err;
  HUTCH_TRY(const int status,
            hutch::detail::run_captured({*exe, "get"}, env, server, where.helper_timeout,
                                        registry_step::credentials, out, err));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // docker's helpers say "credentials not found in native keychain" for an unknown server.
    if (out.find("credentials not found") != std::string::npos ||
        err.find("credentials not found") != std::string::npos) {
      return Credentials{};
    }
    // Their messages name the server, never the secret; keep the first line only.
    std::string said = (out.empty() ? err : out).substr(0, 300);
    said = said.substr(0, said.find('\n'));
    return auth_error(program, fmt::format("the credential helper failed for {}: {}", server, said),
                      EACCES);
  }
  const auto answer = nlohmann::json::parse(out, nullptr, false);
  if (!answer.is_object() || !answer.contains("Secret") || !answer["Secret"].is_string()) {
    return auth_error(program, "the credential helper's answer is not {\"Username\",\"Secret\"}",
                      EPROTO);
  }
  Credentials c;
  if (answer.contains("Username") && answer["Username"].is_string()) {
    c.username = answer["Username"].get<std::string>();
  }
  // docker's convention: a user name of "<token>" marks an identity token.
  if (c.username == "<token>") {
    c.username.clear();
    c.identity_token = answer["Secret"].get<std::string>();
  } else {
    c.password = answer["Secret"].get<std::string>();
  }
  c.source = program;
  return c;
}

/// The server name a credential helper is asked about: Docker Hub's is its old index URL.
inline std::string helper_server(const Reference& r) {
  return r.domain == "docker.io" ? "https://index.docker.io/v1/" : r.domain;
}

/// The credentials one file holds for `r`, empty if none.
inline result<Credentials> credentials_in(const std::string& path, const std::string& text,
                                          const Reference& r, const CredentialFiles& where) {
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return auth_error(path, "not a JSON object");
  // A helper for this registry, then the file's own entries, then the default store.
  if (doc.contains("credHelpers") && doc["credHelpers"].is_object()) {
    for (const auto& [key, helper] : doc["credHelpers"].items()) {
      if (auth_key(key) == r.domain && helper.is_string()) {
        return run_helper(helper.get<std::string>(), helper_server(r), where);
      }
    }
  }
  if (doc.contains("auths") && doc["auths"].is_object()) {
    const nlohmann::json* best = nullptr;
    std::size_t best_length = 0;
    for (const auto& [key, entry] : doc["auths"].items()) {
      const std::size_t length = match_length(auth_key(key), r);
      if (length > best_length && entry.is_object()) {
        best = &entry;
        best_length = length;
      }
    }
    if (best) {
      Credentials c;
      c.source = path;
      const auto field = [&](const char* name) {
        return best->contains(name) && (*best)[name].is_string() ? (*best)[name].get<std::string>()
                                                                 : std::string();
      };
      c.identity_token = field("identitytoken");
      if (const std::string auth = field("auth"); !auth.empty()) {
        const auto decoded = base64_decode(auth);
        const auto colon = decoded ? decoded->find(':') : std::string::npos;
        if (colon == std::string::npos) {
          return auth_error(path, fmt::format("the \"auth\" entry for {} is not base64 of "
                                              "USER:PASSWORD",
                                              r.domain));
        }
        c.username = decoded->substr(0, colon);
        c.password = decoded->substr(colon + 1);
      } else {
        c.username = field("username");
        c.password = field("password");
      }
      if (!c.empty()) return c;
    }
  }
  if (doc.contains("credsStore") && doc["credsStore"].is_string() &&
      !doc["credsStore"].get<std::string>().empty()) {
    return run_helper(doc["credsStore"].get<std::string>(), helper_server(r), where);
  }
  return Credentials{};
}

}  // namespace detail

/// The credentials for `r` from the first file in `where` that has any (a missing file is
/// skipped; a broken one is an error naming it). Empty credentials: pull anonymously.
inline result<Credentials> find_credentials(
    const Reference& r, const CredentialFiles& where = CredentialFiles::from_environment()) {
  for (const std::string& path : where.files) {
    if (::access(path.c_str(), F_OK) != 0) continue;
    HUTCH_TRY(const std::string text, detail::read_auth_file(path));
    HUTCH_TRY(Credentials c, detail::credentials_in(path, text, r, where));
    if (!c.empty()) return c;
  }
  return Credentials{};
}

}  // namespace hutch::registry
