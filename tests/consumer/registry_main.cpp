// A consumer of the optional registry module: it links (libcurl through hutch::registry),
// and a malformed reference is a clear error before any request.
#include <hutch/registry.hpp>

int main() {
  auto image = hutch::Image::pull("library/Busybox", hutch::ImageStore("/nonexistent"));
  if (image) return 1;
  fmt::print("{}\n", image.error());
  return image.error().step == hutch::registry_step::reference ? 0 : 1;
}
