// Fuzz target: image references. Nothing may crash; a reference that parses prints as one
// that parses back to the same parts, within the registry's name limit.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <hutch/registry/reference.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = hutch::registry::parse_reference(text);
  if (!parsed) return 0;
  auto again = hutch::registry::parse_reference(parsed->str());
  if (!again || !(*again == *parsed)) __builtin_trap();
  if (parsed->path.empty() || parsed->domain.empty()) __builtin_trap();
  if (parsed->tag.empty() && parsed->digest.empty()) __builtin_trap();
  return 0;
}
