// A consumer of hutch built against an install (find_package) or a source tree
// (add_subdirectory): runs one container and prints its output.
#include <hutch/hutch.hpp>

int main() {
  auto out = hutch::Container{}.command({"/bin/sh", "-c", "echo consumer ok"}).output();
  if (!out) {
    fmt::print(stderr, "{}\n", out.error());
    return 1;
  }
  fmt::print("{}", out->std_out);
  return out->status.success() && out->std_out == "consumer ok\n" ? 0 : 1;
}
