// A consumer of the optional oci module: it links, and a bundle without config.json is a
// clear error.
#include <hutch/oci.hpp>

int main() {
  auto config = hutch::oci::load_config("/no/such/bundle", "c1");
  if (config) return 1;
  fmt::print("{}\n", config.error());
  return config.error().step == hutch::oci_step::config ? 0 : 1;
}
