// A consumer of the optional image module: it links, and a missing layout is a clear error.
#include <hutch/image.hpp>

int main() {
  auto image = hutch::Image::open("/no/such/layout", "latest");
  if (image) return 1;
  fmt::print("{}\n", image.error());
  return image.error().step == hutch::image_step::open ? 0 : 1;
}
