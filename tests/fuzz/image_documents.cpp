// Fuzz target: the image's JSON documents (index, manifest, config) and its paths, as a
// layout or a registry would hand them over. Nothing may crash, hang or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <hutch/image.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)hutch::detail::parse_index(text, "fuzz");
  if (auto manifest = hutch::detail::parse_manifest(text, "fuzz")) {
    std::vector<hutch::ImageLayer> layers(manifest->layers.size());
    hutch::detail::ImageData d;
    (void)hutch::detail::apply_config(d, text, std::move(layers), {});
  }
  hutch::detail::ImageData d;
  (void)hutch::detail::apply_config(d, text, {}, {});
  if (auto index = hutch::detail::parse_index(text, "fuzz")) {
    (void)hutch::detail::pick_platform(*index, {"linux", "amd64", {}});
  }
  (void)hutch::detail::image_path(text, "fuzz");
  return 0;
}
