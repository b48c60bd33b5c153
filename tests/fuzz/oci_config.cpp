// Fuzz target: a bundle's config.json and an exec --process file, as an engine (or whoever
// can write the bundle) hands them to hutch-runtime. Nothing may crash, hang or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <hutch/oci.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)hutch::oci::parse_config(text, "/bundle", "fuzz");
  (void)hutch::oci::parse_process(text);
  const auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_discarded()) (void)hutch::oci::seccomp_program(j);
  return 0;
}
