// hutch — registry module: HTTP for registries over libcurl. One request at a time per Http
// (its connections are kept for the next); redirects are followed here, not by libcurl, so
// that the Authorization header goes only to the origin it was meant for; bodies are bounded
// or streamed to a sink; a server that sends nothing for `stall_timeout` fails the transfer.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../error.hpp"
#include "reference.hpp"
#include "steps.hpp"

namespace hutch::registry {

/// How hutch reaches registries.
struct Transport {
  /// Verify TLS certificates against the system's CAs (podman's --tls-verify).
  bool tls_verify = true;
  /// Registries ("host[:port]") that may be reached over plain HTTP or with an unverified
  /// certificate, as docker's insecure-registries. Loopback registries always may (docker's
  /// default); HTTPS is tried first either way.
  std::vector<std::string> insecure;
  /// A CA bundle to trust besides the system's; empty: the system's only.
  std::string ca_file;
  /// A directory whose *.crt files are CAs to trust for the registry (podman's --cert-dir);
  /// empty: the registry's own directory in `certs_d`, if it has one.
  std::string cert_dir;
  /// Where per-registry CAs are kept, as `DIR/HOST:PORT/*.crt` (containers' and docker's
  /// certs.d); the first that has a directory for the registry is used.
  std::vector<std::string> certs_d = {"/etc/containers/certs.d", "/etc/docker/certs.d"};
  std::chrono::milliseconds connect_timeout{15000};
  /// A transfer during which nothing arrives for this long fails (and is retried).
  std::chrono::milliseconds stall_timeout{30000};
  /// Attempts after the first for 429, 502-504 and broken transfers; blobs resume (Range).
  int retries = 4;
  /// The first retry's wait, doubled for each further one; a Retry-After up to
  /// `max_retry_after` is honoured instead.
  std::chrono::milliseconds backoff{250};
  std::chrono::milliseconds max_retry_after{30000};
  std::string user_agent = "hutch";
};

namespace detail {

/// Text from a server, made safe to print: control bytes become '?', at most `max` bytes.
inline std::string printable(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) {
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  }
  if (s.size() > max) out += "...";
  return out;
}

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  /// The Authorization header's value, sent only to `url`'s origin (never after a redirect
  /// to another scheme, host or port).
  std::string authorization;
  std::string body;  // for POST: sent as application/x-www-form-urlencoded
  /// Bytes kept of a body that is not streamed; more is an EFBIG error.
  std::size_t max_body = 1 << 20;
  /// Where a 2xx body goes instead of `body`; returning false aborts the transfer.
  std::function<bool(const char*, std::size_t)> sink;
  /// With a sink: ask for the body from this byte on (a resumed download). A 206 must start
  /// there; a server that ignores the Range and sends it all has the first bytes dropped.
  std::uint64_t range_from = 0;
};

struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  std::string url;             // the last one, after redirects
  std::uint64_t streamed = 0;  // bytes given to the sink
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
  std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
};

/// scheme://host:port of a URL (the port filled in), or empty if it is not an http(s) URL.
inline std::string origin_of(const std::string& url) {
  CURLU* u = ::curl_url();
  if (!u) return {};
  std::string out;
  if (::curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    if (::curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        ::curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        ::curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
      const std::string s = lower(scheme);
      if (s == "http" || s == "https") out = s + "://" + lower(host) + ":" + port;
    }
    ::curl_free(scheme);
    ::curl_free(host);
    ::curl_free(port);
  }
  ::curl_url_cleanup(u);
  return out;
}

/// The host of an origin or URL ("127.0.0.1", "[::1]", "quay.io"), without its port.
inline std::string host_of(const std::string& url) {
  const std::string o = origin_of(url);
  if (o.empty()) return {};
  std::string_view rest = std::string_view(o).substr(o.find("://") + 3);
  return std::string(rest.substr(0, rest.rfind(':')));
}

inline int errno_of(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
      return ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return EHOSTUNREACH;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return EPROTO;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return EINVAL;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
      return ECONNRESET;
    default:
      return EIO;
  }
}

/// One libcurl handle: requests one after another, its connections reused.
class Http {
 public:
  explicit Http(const Transport& transport) : transport_(transport) {
    static std::once_flag once;
    std::call_once(once, [] { ::curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_.reset(::curl_easy_init());
  }

  /// `request`, following up to 10 redirects (http and https only; never from https down to
  /// plain http unless the target may be reached insecurely). Certificates are verified
  /// except where `insecure_allowed`.
  result<HttpResponse> perform(HttpRequest request) {
    if (!curl_) return make_error(registry_step::request, ENOMEM, request.url, "curl_easy_init");
    const std::string first_origin = origin_of(request.url);
    if (first_origin.empty()) {
      return make_error(registry_step::request, EINVAL, printable(request.url),
                        "not an http or https URL");
    }
    for (int hop = 0;; ++hop) {
      const std::string origin = origin_of(request.url);
      const bool same_origin = origin == first_origin;
      HUTCH_TRY(HttpResponse r, once(request, same_origin));
      if (r.status < 300 || r.status > 399 || r.status == 304) return r;
      char* location = nullptr;
      ::curl_easy_getinfo(curl_.get(), CURLINFO_REDIRECT_URL, &location);
      if (!location) return r;  // a 3xx without a Location: the caller reads its status
      const std::string next = location;
      const std::string next_origin = origin_of(next);
      if (next_origin.empty()) {
        return make_error(registry_step::request, EINVAL, printable(next),
                          fmt::format("{} redirected to a URL that is not http or https",
                                      printable(request.url)));
      }
      if (hop >= 10) {
        return make_error(registry_step::request, ELOOP, printable(request.url),
                          "more than 10 redirects");
      }
      if (origin.starts_with("https:") && next_origin.starts_with("http:") &&
          !insecure_allowed(next)) {
        return make_error(
            registry_step::request, EPERM, printable(next),
            fmt::format("{} redirected from HTTPS to plain HTTP", printable(request.url)));
      }
      request.url = next;
      if (r.status != 307 && r.status != 308 && request.method == "POST") {
        request.method = "GET";
        request.body.clear();
      }
    }
  }

  /// Whether `url`'s registry may be reached over plain HTTP or without verifying its
  /// certificate: a loopback one, one named in `insecure` (as "host" or "host:port"), or
  /// any when TLS verification is off.
  bool insecure_allowed(const std::string& url) const {
    if (!transport_.tls_verify) return true;
    const std::string host = host_of(url);
    if (host.empty()) return false;
    if (loopback_host(host)) return true;
    const std::string o = origin_of(url);
    const std::string host_port = o.substr(o.find("://") + 3);
    for (const std::string& name : transport_.insecure) {
      const std::string n = lower(name);
      if (n == host || n == host_port) return true;
    }
    return false;
  }

 private:
  struct CurlFree {
    void operator()(CURL* c) const { ::curl_easy_cleanup(c); }
  };
  struct SlistFree {
    void operator()(curl_slist* s) const { ::curl_slist_free_all(s); }
  };

  struct Transfer {
    Http* self;
    const HttpRequest* request;
    HttpResponse* response;
    bool too_big = false, aborted = false, bad_range = false, started = false;
    std::uint64_t skip = 0;
  };

  /// The first byte of a 206's "Content-Range: bytes FIRST-LAST/SIZE".
  static std::uint64_t range_start(const std::string& value) {
    std::string_view v = value;
    if (!v.starts_with("bytes ")) return UINT64_MAX;
    v.remove_prefix(6);
    std::uint64_t n = 0;
    std::size_t i = 0;
    for (; i < v.size() && v[i] >= '0' && v[i] <= '9' && i < 19; ++i) n = n * 10 + (v[i] - '0');
    return i > 0 && i < v.size() && v[i] == '-' ? n : UINT64_MAX;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string_view line(data, size * count);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.starts_with("HTTP/")) {
      t->response->headers.clear();  // a new response (after 100 Continue, or a redirect)
    } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      if (t->response->headers.size() < 256) {
        t->response->headers.emplace_back(lower(line.substr(0, colon)), std::string(value));
      }
    }
    return size * count;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const std::size_t n = size * count;
    long status = 0;
    ::curl_easy_getinfo(t->self->curl_.get(), CURLINFO_RESPONSE_CODE, &status);
    if (t->request->sink && status >= 200 && status < 300) {
      if (!t->started) {
        t->started = true;
        if (t->request->range_from > 0 && status == 206 &&
            range_start(t->response->header("content-range")) != t->request->range_from) {
          t->bad_range = true;
          return 0;
        }
        if (t->request->range_from > 0 && status != 206) t->skip = t->request->range_from;
      }
      if (t->skip >= n) {
        t->skip -= n;
        return n;
      }
      const std::size_t dropped = static_cast<std::size_t>(t->skip);
      t->skip = 0;
      if (!t->request->sink(data + dropped, n - dropped)) {
        t->aborted = true;
        return 0;
      }
      t->response->streamed += n - dropped;
      return n;
    }
    if (t->response->body.size() + n > t->request->max_body) {
      t->too_big = true;
      return 0;
    }
    t->response->body.append(data, n);
    return n;
  }

  result<HttpResponse> once(const HttpRequest& request, bool send_authorization) {
    CURL* c = curl_.get();
    ::curl_easy_reset(c);
    HttpResponse response;
    response.url = request.url;
    Transfer transfer{this, &request, &response};
    std::unique_ptr<curl_slist, SlistFree> headers;
    const auto add = [&](const std::string& h) {
      headers.reset(::curl_slist_append(headers.release(), h.c_str()));
    };
    for (const std::string& h : request.headers) add(h);
    if (send_authorization && !request.authorization.empty()) {
      add("Authorization: " + request.authorization);
    }
    if (request.sink && request.range_from > 0) {
      add(fmt::format("Range: bytes={}-", request.range_from));
    }
    add("Expect:");
    const long stall = static_cast<long>(
        std::max<std::int64_t>(1, (transport_.stall_timeout.count() + 999) / 1000));
    ::curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    ::curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    ::curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    ::curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    ::curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    ::curl_easy_setopt(c, CURLOPT_USERAGENT, transport_.user_agent.c_str());
    ::curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(transport_.connect_timeout.count()));
    ::curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    ::curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
    ::curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Http::on_header);
    ::curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
    ::curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Http::on_body);
    ::curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
    const bool insecure = insecure_allowed(request.url);
    ::curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    ::curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
    if (!trusted_.empty()) {
      curl_blob blob{trusted_.data(), trusted_.size(), CURL_BLOB_NOCOPY};
      ::curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (request.method == "POST") {
      ::curl_easy_setopt(c, CURLOPT_POST, 1L);
      ::curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
      ::curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    } else if (request.method == "HEAD") {
      ::curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    const CURLcode code = ::curl_easy_perform(c);
    ::curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
    last_failure_.streamed = response.streamed;
    if (transfer.too_big) {
      return make_error(registry_step::request, EFBIG, printable(request.url),
                        fmt::format("the response is larger than the {} bytes hutch reads of it",
                                    request.max_body));
    }
    if (transfer.bad_range) {
      return make_error(
          registry_step::request, EPROTO, printable(request.url),
          fmt::format("asked for the bytes from {} on, the server sent another "
                      "range ({})",
                      request.range_from, printable(response.header("content-range"), 80)));
    }
    if (transfer.aborted) {
      return make_error(registry_step::request, ECANCELED, printable(request.url),
                        "the transfer was stopped by its reader");
    }
    if (code != CURLE_OK) {
      return make_error(registry_step::request, errno_of(code), printable(request.url),
                        code == CURLE_OPERATION_TIMEDOUT
                            ? fmt::format("nothing arrived for {} s (or the connection took "
                                          "over {} ms)",
                                          stall, transport_.connect_timeout.count())
                            : std::string(::curl_easy_strerror(code)));
    }
    return response;
  }

 public:
  /// libcurl's own CA bundle (the system's), if it has one.
  bool default_ca_file(char** path) const {
    *path = nullptr;
    return curl_ && ::curl_easy_getinfo(curl_.get(), CURLINFO_CAINFO, path) == CURLE_OK && *path;
  }

  /// Trusts these CAs (PEM) instead of libcurl's bundle file (the caller includes it).
  void trust(std::string pem) { trusted_ = std::move(pem); }

  /// After a transfer (also a failed one): how many body bytes reached the sink.
  struct HttpFailure {
    std::uint64_t streamed = 0;
  };
  const HttpFailure& last_failure() const noexcept { return last_failure_; }

 private:
  Transport transport_;
  std::unique_ptr<CURL, CurlFree> curl_;
  HttpFailure last_failure_;
  std::string trusted_;
};

}  // namespace detail
}  // namespace hutch::registry
