// hello: run a command in a container with every namespace, rootless or as root, and show
// what it sees from inside.
#include <fmt/core.h>

#include <hutch/hutch.hpp>

int main() {
  auto out = hutch::Container{}
                 .command({"/bin/sh", "-c",
                           "echo \"hello from $(hostname), pid $$, uid $(id -u)\"; "
                           "echo \"processes: $(ls /proc | grep -c '^[0-9]')\""})
                 .hostname("hutch-hello")
                 .namespaces(hutch::Namespaces::all())
                 .output();
  if (!out) {
    fmt::print(stderr, "hello: {}\n", out.error());
    return 1;
  }
  fmt::print("{}", out->std_out);
  fmt::print("container {}\n", out->status);
  return out->status.success() ? 0 : 1;
}
