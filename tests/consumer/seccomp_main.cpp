// A consumer of the optional seccomp module: the default profile filters the container.
#include <hutch/hutch.hpp>
#include <hutch/seccomp.hpp>

int main() {
  auto profile = hutch::Seccomp::defaults().compile();
  if (!profile) {
    fmt::print(stderr, "{}\n", profile.error());
    return 1;
  }
  auto out = hutch::Container{}
                 .command({"/bin/sh", "-c", "grep ^Seccomp: /proc/self/status"})
                 .seccomp(*profile)
                 .output();
  if (!out) {
    fmt::print(stderr, "{}\n", out.error());
    return 1;
  }
  fmt::print("{}", out->std_out);
  return out->status.success() && out->std_out == "Seccomp:\t2\n" ? 0 : 1;
}
