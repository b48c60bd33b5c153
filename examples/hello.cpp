// hello: the `docker run hello-world` moment. Builds a root filesystem holding one static
// program, runs it with every namespace, a read-only root and, where this user may create
// cgroups, memory and pids limits; the program says what it sees from inside.
#include <fmt/core.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include <hutch/hutch.hpp>

using namespace hutch::literals;

int main() {
  // The file snapshot: a directory with one static program in it.
  char pattern[] = "/tmp/hutch-hello-XXXXXX";
  if (!::mkdtemp(pattern)) return 1;
  const std::string root = pattern;
  std::filesystem::copy_file(HELLO_INSIDE, root + "/hello_inside");
  ::chmod(root.c_str(), 0755);

  auto container = hutch::Container{}
                       .command({"/hello_inside"})
                       .hostname("hello")
                       .namespaces(hutch::Namespaces::all())
                       .rootfs(hutch::RootFs::directory(root).read_only());
  const auto limits = hutch::CGroup{}.memory_max(64_MiB).pids_max(16);
  auto out = hutch::Container(container).cgroup(limits).output();
  if (!out && (out.error().step == hutch::Step::cgroup_create ||
               out.error().step == hutch::Step::cgroup_detect)) {
    fmt::print("(no cgroup limits: {})\n", out.error());
    out = container.output();
  } else if (out) {
    fmt::print("(limits: memory {} MiB, pids 16)\n", 64_MiB >> 20);
  }
  std::filesystem::remove_all(root);
  if (!out) {
    fmt::print(stderr, "hello: {}\n", out.error());
    return 1;
  }
  fmt::print("{}", out->std_out);
  fmt::print("container {}\n", out->status);
  return out->status.success() ? 0 : 1;
}
