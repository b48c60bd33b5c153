// disk_limits: a job held to a disk write rate, as `docker run --device-write-bps` does. It
// writes 8 MiB with direct I/O into a scratch file beside this program's working directory,
// once at 4 MiB/s, and reports how long that took and what its cgroup counted on the disk.
// The disk is named by a directory: hutch finds the whole disk under its filesystem.
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <hutch/hutch.hpp>

using namespace hutch::literals;

int main() {
  const std::string dir = std::filesystem::current_path().string();
  auto disk = hutch::block_device(dir);
  if (!disk) {  // e.g. a working directory on tmpfs
    fmt::print("no disk to limit under {}: {}\n", dir, disk.error());
    return 0;
  }
  const std::string file = fmt::format("{}/disk_limits.{}.tmp", dir, ::getpid());
  auto child = hutch::Container{}
                   .command({"dd", "if=/dev/zero", "of=" + file, "bs=1M", "count=8", "oflag=direct",
                             "status=none"})
                   .cgroup(hutch::CGroup{}.device_write_bps(dir, 4_MiB))
                   .spawn();
  if (!child) {  // cgroups need root on v1, or a delegated subtree on v2
    fmt::print("cannot limit I/O here: {}\n", child.error());
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  auto status = child->wait();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  auto stats = child->stats();
  std::filesystem::remove(file);
  if (!status || !status->success() || !stats) return 1;
  const hutch::DeviceIoStats* io = stats->io_of(*disk);
  fmt::print("8 MiB to {} ({}) at 4 MiB/s took {:.1f} s; the cgroup counted {} KiB in {} writes\n",
             disk->name, disk->numbers(), took.count(), io ? io->write_bytes / 1024 : 0,
             io ? io->write_ios : 0);
  return took.count() > 1.4 ? 0 : 1;  // about 2 s: the limit held
}
