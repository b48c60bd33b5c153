// hutch — image module: SHA-256 digests, as OCI names blobs ("sha256:<hex>").
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "../error.hpp"

namespace hutch {

#define HUTCH_IMAGE_STEPS(X)          \
  X(open, "image", "open")            \
  X(verify, "image", "verify digest") \
  X(unpack, "image", "unpack layer")  \
  X(store, "image", "store")
HUTCH_MODULE_STEPS(image, 2, HUTCH_IMAGE_STEPS)

namespace detail {

/// SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(::EVP_MD_CTX_new()) { ::EVP_DigestInit_ex(ctx_.get(), ::EVP_sha256(), nullptr); }
  void update(const void* data, std::size_t size) { ::EVP_DigestUpdate(ctx_.get(), data, size); }
  /// "sha256:<64 hex digits>"
  std::string digest() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned size = 0;
    ::EVP_DigestFinal_ex(ctx_.get(), out, &size);
    std::string hex = "sha256:";
    for (unsigned i = 0; i < size; ++i) hex += fmt::format("{:02x}", out[i]);
    return hex;
  }
  static std::string of(std::string_view data) {
    Sha256 h;
    h.update(data.data(), data.size());
    return h.digest();
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { ::EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

/// "sha256:<64 lowercase hex>" and nothing else: a digest also names a file.
inline bool valid_digest(std::string_view d) {
  if (!d.starts_with("sha256:") || d.size() != 7 + 64) return false;
  return d.substr(7).find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

inline std::string hex_of(std::string_view digest) {
  return std::string(digest.substr(7));
}

}  // namespace detail
}  // namespace hutch
