// Fuzz target: what a registry or a user's files hand the registry module. An image
// reference that parses prints as one that parses back to the same parts; a
// WWW-Authenticate header gives challenges with schemes; a credentials file gives
// credentials or an error; a registry's error body and the URLs it redirects to are read
// without trusting them; base64 round-trips. Nothing may crash or throw.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <hutch/registry.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace registry = hutch::registry;
  if (auto parsed = registry::parse_reference(text)) {
    auto again = registry::parse_reference(parsed->str());
    if (!again || !(*again == *parsed)) __builtin_trap();
    if (parsed->path.empty() || parsed->domain.empty()) __builtin_trap();
    if (parsed->tag.empty() && parsed->digest.empty()) __builtin_trap();
  }
  for (const auto& c : registry::parse_challenges(text)) {
    if (c.scheme.empty()) __builtin_trap();
  }
  if (auto decoded = registry::detail::base64_decode(text); decoded && decoded->size() > size) {
    __builtin_trap();
  }
  if (registry::detail::base64_decode(registry::detail::base64_encode(text)) != std::string(text)) {
    __builtin_trap();
  }
  for (char c : registry::detail::registry_errors(std::string(text))) {
    if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();  // printable only
  }
  if (const std::string origin = registry::detail::origin_of(std::string(text)); !origin.empty()) {
    if (!origin.starts_with("http://") && !origin.starts_with("https://")) __builtin_trap();
    if (registry::detail::origin_of(origin) != origin) __builtin_trap();
  }
  // As a credentials file: no helper can be found (an empty PATH), so none runs.
  static const registry::Reference reference = *registry::parse_reference("quay.io/team/app");
  registry::CredentialFiles where;
  (void)registry::detail::credentials_in("fuzz.json", std::string(text), reference, where);
  return 0;
}
