// hutch — registry module: a client of one repository on a registry, as the OCI distribution
// spec has it: `GET /v2/` to learn how to authenticate (a Bearer token from the realm the
// registry names, for `repository:NAME:pull`, anonymous or with the user's credentials; or
// Basic), manifests fetched with an Accept list and a size cap, blobs streamed to a sink and
// resumed with Range when a transfer breaks, 429 and 502-504 retried with backoff. Shared by
// the threads of one pull: each brings its own Http, the token is shared.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../error.hpp"
#include "../image/digest.hpp"
#include "../image/json.hpp"
#include "../image/oci.hpp"
#include "auth.hpp"
#include "http.hpp"
#include "reference.hpp"
#include "steps.hpp"

namespace hutch::registry {

/// A manifest or index as the registry sent it, checked against its digest.
struct FetchedManifest {
  std::string text;
  std::string media_type;  // the Content-Type, or the document's own mediaType
  std::string digest;      // sha256 of `text`
};

namespace detail {

/// The code and message of a distribution-spec error body ({"errors": [{"code", "message"}]}),
/// for messages; empty if the body is not one.
inline std::string registry_errors(const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || !j["errors"].is_array()) return {};
  std::string out;
  for (const auto& e : j["errors"]) {
    if (!e.is_object()) continue;
    const std::string code =
        e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
    const std::string message =
        e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    out += fmt::format("{}{}{}{}", out.empty() ? "" : "; ", printable(code, 64),
                       code.empty() || message.empty() ? "" : ": ", printable(message, 160));
    if (out.size() > 400) break;
  }
  return out;
}

/// "HTTP 404 (MANIFEST_UNKNOWN: manifest unknown)"
inline std::string status_text(const HttpResponse& r) {
  const std::string errors = registry_errors(r.body);
  return errors.empty() ? fmt::format("HTTP {}", r.status)
                        : fmt::format("HTTP {} ({})", r.status, errors);
}

inline bool transient(const Error& e) {
  const int n = e.errno_value();
  return n == ETIMEDOUT || n == ECONNRESET || n == ECONNREFUSED || n == EIO;
}

inline bool transient_status(long status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

inline std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

/// A token may go into a header: printable ASCII without spaces only.
inline bool header_safe(std::string_view s) {
  if (s.empty() || s.size() > 16384) return false;
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace detail

/// One repository on one registry, as its pulls see it.
class Client {
 public:
  Client(Reference reference, Transport transport, Credentials credentials)
      : reference_(std::move(reference)),
        transport_(std::move(transport)),
        credentials_(std::move(credentials)) {}

  const Reference& reference() const noexcept { return reference_; }
  const Transport& transport() const noexcept { return transport_; }

  /// Reads the CAs this registry is trusted with beyond the system's (Transport's ca_file,
  /// cert_dir or certs.d directory), for every Http `http()` makes.
  result<void> load_trust() {
    std::vector<std::string> files;
    if (!transport_.ca_file.empty()) files.push_back(transport_.ca_file);
    std::string dir = transport_.cert_dir;
    for (std::size_t i = 0; dir.empty() && i < transport_.certs_d.size(); ++i) {
      const std::string candidate = transport_.certs_d[i] + "/" + reference_.endpoint();
      struct stat st {};
      if (::stat(candidate.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) dir = candidate;
    }
    if (!dir.empty()) {
      DIR* d = ::opendir(dir.c_str());
      if (!d) return last_error(registry_step::request, dir, "reading the registry's CAs");
      std::vector<std::string> names;
      while (dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (name.size() > 4 && name.ends_with(".crt")) names.emplace_back(name);
      }
      ::closedir(d);
      std::sort(names.begin(), names.end());
      for (const std::string& n : names) files.push_back(dir + "/" + n);
    }
    if (files.empty()) return success();
    std::string pem;
    char* system_bundle = nullptr;
    detail::Http probe(transport_);
    if (probe.default_ca_file(&system_bundle) && ::access(system_bundle, R_OK) == 0) {
      files.insert(files.begin(), system_bundle);
    }
    for (const std::string& f : files) {
      auto text = detail::read_auth_file(f);  // a regular file, bounded
      if (!text) {
        return make_error(registry_step::request, text.error().errno_value(), f,
                          "reading a CA certificate file");
      }
      pem += *text;
      pem += "\n";
    }
    trusted_ = std::move(pem);
    return success();
  }

  /// An HTTP handle for this registry: the transport's settings and its CAs.
  detail::Http http() const {
    detail::Http h(transport_);
    if (!trusted_.empty()) h.trust(trusted_);
    return h;
  }

  /// `GET /v2/`: finds the scheme (HTTPS; plain HTTP only where the transport allows it) and
  /// takes a token if the registry asks for one.
  result<void> ping(detail::Http& http) {
    std::vector<std::string> bases = {"https://" + reference_.endpoint()};
    if (http.insecure_allowed("http://" + reference_.endpoint() + "/")) {
      bases.push_back("http://" + reference_.endpoint());
    }
    Error last = make_error(registry_step::request, EINVAL, reference_.endpoint());
    for (const std::string& base : bases) {
      auto r = with_retries(http, [&] {
        detail::HttpRequest request;
        request.url = base + "/v2/";
        request.max_body = 64 << 10;
        return request;
      });
      if (!r) {
        last = r.error();
        continue;
      }
      base_ = base;
      if (r->status == 200) return success();
      if (r->status == 401) return authenticate(http, *r);
      return make_error(registry_step::request, EPROTO, base + "/v2/",
                        fmt::format("the registry answered {} (a registry answers 200 or 401)",
                                    detail::status_text(*r)));
    }
    return last;
  }

  /// The manifest or index `ref` (a tag or a digest) names, at most 4 MiB, with its digest
  /// checked: against `ref` when it is one, else against the Docker-Content-Digest the
  /// registry sends.
  result<FetchedManifest> manifest(detail::Http& http, const std::string& ref) {
    const std::string url = repository_url() + "/manifests/" + ref;
    auto r = send(http, [&] {
      detail::HttpRequest request;
      request.url = url;
      request.max_body = hutch::detail::max_manifest_size;
      request.headers.push_back(fmt::format("Accept: {}, {}, {}, {}", media_type::oci_index,
                                            media_type::oci_manifest, media_type::docker_list,
                                            media_type::docker_manifest));
      return request;
    });
    if (!r && r.error().errno_value() == EFBIG) {
      return make_error(registry_step::manifest, EFBIG, where(ref),
                        fmt::format("the manifest is larger than {} MiB, the limit registries "
                                    "share",
                                    hutch::detail::max_manifest_size >> 20));
    }
    if (!r) return r.error();
    if (r->status == 404) {
      return make_error(registry_step::manifest, ENOENT, where(ref),
                        fmt::format("the registry has no manifest {} {} in {} ({})",
                                    ref.starts_with("sha256:") ? "of digest" : "tagged", ref,
                                    reference_.name(), detail::status_text(*r)));
    }
    if (r->status != 200) return refused(registry_step::manifest, where(ref), *r);
    FetchedManifest m;
    m.digest = hutch::detail::Sha256::of(r->body);
    if (ref.starts_with("sha256:") && m.digest != ref) {
      return make_error(image_step::verify, EBADMSG, where(ref),
                        fmt::format("the manifest's digest is {}", m.digest));
    }
    if (const std::string sent = r->header("docker-content-digest");
        !sent.empty() && sent != m.digest) {
      return make_error(image_step::verify, EBADMSG, where(ref),
                        fmt::format("the manifest's digest is {}, the registry says {}", m.digest,
                                    detail::printable(sent, 80)));
    }
    m.media_type = r->header("content-type");
    m.media_type = m.media_type.substr(0, m.media_type.find(';'));
    while (!m.media_type.empty() && m.media_type.back() == ' ') m.media_type.pop_back();
    m.text = std::move(r->body);
    return m;
  }

  /// The blob `digest` of `size` bytes, streamed to `sink` (each byte once, in order; a
  /// broken transfer resumes where it stopped). Its digest is the sink's to check: it
  /// sees every byte.
  result<void> blob(detail::Http& http, const std::string& digest, std::uint64_t size,
                    const std::function<bool(const char*, std::size_t)>& sink) {
    const std::string url = repository_url() + "/blobs/" + digest;
    std::uint64_t done = 0;
    bool too_much = false;
    const auto counted = [&](const char* data, std::size_t n) {
      if (n > size - done) {
        too_much = true;
        return false;
      }
      done += n;
      return sink(data, n);
    };
    for (int stalls = 0;;) {
      const std::uint64_t before = done;
      auto r = send(http, [&] {
        detail::HttpRequest request;
        request.url = url;
        request.max_body = 64 << 10;
        request.sink = counted;
        request.range_from = done;
        return request;
      });
      if (too_much) {
        return make_error(
            registry_step::blob, EBADMSG, where(digest),
            fmt::format("the registry sent more than the descriptor's {} bytes", size));
      }
      if (r) {
        if (r->status == 404) {
          return make_error(
              registry_step::blob, ENOENT, where(digest),
              fmt::format("the registry has no such blob ({})", detail::status_text(*r)));
        }
        if (r->status != 200 && r->status != 206)
          return refused(registry_step::blob, where(digest), *r);
        if (done == size) return success();
        // The server ended the body early without an error: resume like a broken transfer.
      } else if (!detail::transient(r.error())) {
        return r.error();
      }
      if (done == before && ++stalls > transport_.retries) {
        if (!r) return r.error();
        return make_error(
            registry_step::blob, EPROTO, where(digest),
            fmt::format("the registry ends the blob after {} of {} bytes", done, size));
      }
      if (done > before) stalls = 0;
    }
  }

  /// A small blob (a config), read whole, at most `max` bytes, checked against its digest.
  result<std::string> small_blob(detail::Http& http, const Descriptor& d, std::size_t max) {
    if (d.size > max) {
      return make_error(
          registry_step::blob, EFBIG, where(d.digest),
          fmt::format("the descriptor's size {} is above the {} bytes hutch reads", d.size, max));
    }
    std::string text;
    HUTCH_TRYV(blob(http, d.digest, d.size, [&](const char* p, std::size_t n) {
      text.append(p, n);
      return true;
    }));
    if (text.size() != d.size || hutch::detail::Sha256::of(text) != d.digest) {
      return make_error(image_step::verify, EBADMSG, where(d.digest),
                        fmt::format("the blob's digest is {}, not {}",
                                    hutch::detail::Sha256::of(text), d.digest));
    }
    return text;
  }

 private:
  std::string repository_url() const { return base_ + "/v2/" + reference_.path; }
  std::string where(const std::string& what) const {
    return reference_.name() + (what.starts_with("sha256:") ? "@" : ":") + what;
  }

  Error refused(Step step, std::string subject, const detail::HttpResponse& r,
                std::string_view who = "the registry") const {
    const int code = r.status == 401 || r.status == 403 ? EACCES : r.status == 429 ? EBUSY : EPROTO;
    std::string note = fmt::format("{} answered {}", who, detail::status_text(r));
    if (r.status == 401 || r.status == 403) {
      note += credentials_.empty()
                  ? " without credentials (none were found for " + reference_.domain + ")"
                  : " with the credentials from " + credentials_.source;
    }
    return make_error(step, code, std::move(subject), std::move(note));
  }

  /// Performs `make()`'s request, retrying transient failures (when nothing reached a sink)
  /// and 429/502-504 answers, honouring Retry-After.
  template <typename Make>
  result<detail::HttpResponse> with_retries(detail::Http& http, Make make) {
    std::chrono::milliseconds wait = transport_.backoff;
    for (int attempt = 0;; ++attempt) {
      auto r = http.perform(make());
      const bool last = attempt >= transport_.retries;
      if (!r) {
        if (last || !detail::transient(r.error()) || http.last_failure().streamed > 0) return r;
      } else if (!detail::transient_status(r->status) || last) {
        return r;
      } else if (const std::string after = r->header("retry-after");
                 !after.empty() && after.size() < 6 &&
                 after.find_first_not_of("0123456789") == std::string::npos) {
        wait = std::min(std::chrono::milliseconds(std::stoll(after) * 1000),
                        transport_.max_retry_after);
      }
      std::this_thread::sleep_for(wait);
      wait *= 2;
    }
  }

  /// A request to the registry with its credentials: on 401 the challenge is answered (a
  /// new token) and the request sent once more.
  template <typename Make>
  result<detail::HttpResponse> send(detail::Http& http, Make make) {
    for (int round = 0;; ++round) {
      const std::string authorization = current_authorization();
      auto r = with_retries(http, [&] {
        detail::HttpRequest request = make();
        request.authorization = authorization;
        return request;
      });
      if (!r || r->status != 401 || round > 0) return r;
      HUTCH_TRYV(authenticate(http, *r));
    }
  }

  std::string current_authorization() {
    std::lock_guard lock(mutex_);
    return authorization_;
  }

  /// Answers a 401's challenges: a Bearer token from the realm, or Basic credentials.
  result<void> authenticate(detail::Http& http, const detail::HttpResponse& r) {
    std::vector<Challenge> challenges;
    for (const std::string& h : r.all("www-authenticate")) {
      for (Challenge& c : parse_challenges(h)) challenges.push_back(std::move(c));
    }
    for (const Challenge& c : challenges) {
      if (c.scheme == "bearer") return bearer(http, c);
    }
    for (const Challenge& c : challenges) {
      if (c.scheme != "basic") continue;
      if (credentials_.username.empty()) {
        return make_error(registry_step::authenticate, EACCES, reference_.domain,
                          "the registry asks for a user name and password (Basic), and none "
                          "were found for it (docker login / podman login store them)");
      }
      std::lock_guard lock(mutex_);
      authorization_ =
          "Basic " + detail::base64_encode(credentials_.username + ":" + credentials_.password);
      return success();
    }
    return make_error(registry_step::authenticate, EACCES, reference_.domain,
                      "the registry answered 401 without a Bearer or Basic challenge");
  }

  result<void> bearer(detail::Http& http, const Challenge& c) {
    const std::string realm = c.param("realm");
    const std::string origin = detail::origin_of(realm);
    if (origin.empty()) {
      return make_error(registry_step::authenticate, EINVAL, detail::printable(realm),
                        "the registry's token realm is not an http or https URL");
    }
    const bool secrets = !credentials_.empty();
    if (secrets && origin.starts_with("http:") && !http.insecure_allowed(realm)) {
      return make_error(registry_step::authenticate, EPERM, detail::printable(realm),
                        "the token realm is plain HTTP: credentials are not sent there");
    }
    const std::string scope = "repository:" + reference_.path + ":pull";
    std::string query =
        "service=" + detail::escape(c.param("service")) + "&scope=" + detail::escape(scope);
    if (const std::string asked = c.param("scope"); !asked.empty() && asked != scope) {
      query += "&scope=" + detail::escape(asked);
    }
    auto r = with_retries(http, [&] {
      detail::HttpRequest request;
      request.max_body = 1 << 20;
      if (!credentials_.identity_token.empty()) {
        request.method = "POST";
        request.url = realm;
        request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
        request.body = query + "&grant_type=refresh_token&client_id=hutch&refresh_token=" +
                       detail::escape(credentials_.identity_token);
      } else {
        request.url = realm + (realm.find('?') == std::string::npos ? "?" : "&") + query;
        if (!credentials_.username.empty()) {
          request.authorization =
              "Basic " + detail::base64_encode(credentials_.username + ":" + credentials_.password);
        }
      }
      return request;
    });
    if (!r) return r.error();
    if (r->status != 200) {
      return refused(registry_step::authenticate, detail::printable(realm, 120), *r,
                     "the token server");
    }
    const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    std::string token;
    for (const char* key : {"token", "access_token"}) {
      if (token.empty() && j.is_object() && j.contains(key) && j[key].is_string()) {
        token = j[key].get<std::string>();
      }
    }
    if (!detail::header_safe(token)) {
      return make_error(registry_step::authenticate, EPROTO, detail::printable(realm, 120),
                        "the token server's answer holds no usable token");
    }
    std::lock_guard lock(mutex_);
    authorization_ = "Bearer " + token;
    return success();
  }

  Reference reference_;
  Transport transport_;
  Credentials credentials_;
  std::string base_;
  std::mutex mutex_;
  std::string authorization_;
  std::string trusted_;
};

}  // namespace hutch::registry
