// Conan's test_package: compiles against the packaged headers and runs one container.
#include <hutch/hutch.hpp>

int main() {
  auto out = hutch::Container{}.command({"/bin/sh", "-c", "echo package ok"}).output();
  if (!out) {
    fmt::print(stderr, "{}\n", out.error());
    return 1;
  }
  fmt::print("{}", out->std_out);
  return out->status.success() ? 0 : 1;
}
