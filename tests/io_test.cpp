// Disk I/O limits, measured: a container's reads and writes on a disk of the test's own (a
// loop device on a file in its scratch directory, or the disk HUTCH_TEST_BLOCK_DEVICE names,
// as the qemu run's virtio disk) take as long as the rate asked says, within ±30%, and the
// same work without a limit is many times faster. The container times its own work
// (busybox `time -p`).
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "support.hpp"

using namespace hutch_test;
using namespace hutch::literals;
using hutch::CGroup;
using hutch::Container;
namespace fs = std::filesystem;

namespace {

/// A command's stdout, or "" when it fails.
std::string shell(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, p)) out += buffer;
    if (::pclose(p) != 0) return {};
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool have_io_controller() {
  auto layout = hutch::detail::host_layout();
  if (!layout) return false;
  for (const auto& h : layout->hierarchies) {
    if (h.v2 ? h.has("io") : h.has("blkio")) return true;
  }
  return false;
}

bool unified() {
  auto layout = hutch::detail::host_layout();
  return layout && layout->kind == hutch::CGroupLayout::unified;
}

/// The n-th time that `time -p` reported (a line "real 8.00"); -1 if there is none.
double real_seconds(const std::string& err, std::size_t n = 0) {
  std::size_t seen = 0;
  for (std::size_t at = 0; at < err.size();) {
    const auto end = std::min(err.find('\n', at), err.size());
    const std::string line = err.substr(at, end - at);
    if (line.rfind("real ", 0) == 0 && seen++ == n) return std::atof(line.c_str() + 5);
    at = end + 1;
  }
  return -1;
}

constexpr std::uint64_t mib = 1 << 20;

/// A disk for one test, with an ext4 filesystem on it: a loop device on a 256 MiB file in a
/// scratch directory (detached after), or $HUTCH_TEST_BLOCK_DEVICE.
class IoLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    HUTCH_REQUIRE_ROOT();
    if (!have_io_controller()) GTEST_SKIP() << "no blkio (v1) or io (v2) controller here";
    char pattern[] = "/tmp/hutch-io-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    scratch_ = pattern;
    if (const char* given = std::getenv("HUTCH_TEST_BLOCK_DEVICE"); given && *given) {
      device_ = given;
    } else {
      { std::ofstream(scratch_ + "/disk.img").close(); }
      fs::resize_file(scratch_ + "/disk.img", 256 * mib);
      device_ = shell("losetup --find --show " + scratch_ + "/disk.img");
      ASSERT_FALSE(device_.empty()) << "losetup failed";
      loop_ = true;
    }
    ASSERT_FALSE(shell("mkfs.ext4 -q -F " + device_ + " && echo ok").empty()) << "mkfs failed";
    auto disk = hutch::block_device(device_);
    ASSERT_TRUE(disk) << disk.error().message();
    disk_ = *disk;
  }
  void TearDown() override {
    if (loop_) shell("losetup -d " + device_);
    if (!scratch_.empty()) fs::remove_all(scratch_);
  }

  /// `script` under sh in the busybox snapshot, with the disk's filesystem at /tmp (mounted
  /// by the container's setup: without a user namespace, as ext4 cannot be mounted in one).
  Container container(const std::string& script) const {
    return Container{}
        .namespaces(hutch::Namespaces::all().without(hutch::Namespace::user))
        .command({"/bin/sh", "-c", script})
        .rootfs(hutch::RootFs::directory(busybox).mount(
            {.type = "ext4", .source = device_, .target = "/tmp"}))
        .std_out(hutch::Stdio::piped())
        .std_err(hutch::Stdio::piped());
  }

  /// Runs `script` with `limits`; its stderr.
  std::string run(const std::string& script, const CGroup& limits) const {
    auto out = container(script).cgroup(limits).output();
    EXPECT_TRUE(out) << (out ? "" : out.error().message());
    if (!out) return {};
    EXPECT_TRUE(out->status.success()) << fmt::format("{}", out->status) << " " << out->std_err;
    return out->std_err;
  }

  std::string scratch_, device_;
  bool loop_ = false;
  hutch::BlockDevice disk_;
};

/// `seconds` is within ±30% of `expected`.
void expect_near(double seconds, double expected, const std::string& what) {
  std::printf("[ measured ] %s: %.2f s (expected %.1f s)\n", what.c_str(), seconds, expected);
  EXPECT_GE(seconds, expected * 0.7) << what;
  EXPECT_LE(seconds, expected * 1.3) << what;
}

const std::string write_16m = "time -p dd if=/dev/zero of=/tmp/f bs=1M count=16 oflag=direct";
const std::string read_16m = "time -p dd if=/tmp/f of=/dev/null bs=1M count=16 iflag=direct";

}  // namespace

TEST_F(IoLimits, DirectWritesAreHeldToTheWriteRate) {
  const double free_run = real_seconds(run(write_16m, CGroup{}));
  const double limited = real_seconds(run(write_16m, CGroup{}.device_write_bps(device_, 2 * mib)));
  expect_near(limited, 8.0, "16 MiB at 2 MiB/s");
  std::printf("[ measured ] the same without a limit: %.2f s\n", free_run);
  EXPECT_LT(free_run, limited / 3) << "unlimited " << free_run << " s, limited " << limited;
}

TEST_F(IoLimits, DirectReadsAreHeldToTheReadRate) {
  run(write_16m, CGroup{});
  const double free_run = real_seconds(run(read_16m, CGroup{}));
  const double limited = real_seconds(run(read_16m, CGroup{}.device_read_bps(device_, 4 * mib)));
  expect_near(limited, 4.0, "16 MiB at 4 MiB/s");
  std::printf("[ measured ] the same without a limit: %.2f s\n", free_run);
  EXPECT_LT(free_run, limited / 3) << "unlimited " << free_run << " s, limited " << limited;
}

TEST_F(IoLimits, OperationsPerSecondAreHeldAndTheDiskMayBeNamedByItsNumbers) {
  const std::string writes =
      "time -p dd if=/dev/zero of=/tmp/f bs=4k count=300 oflag=direct conv=notrunc";
  const std::string reads = "time -p dd if=/tmp/f of=/dev/null bs=4k count=300 iflag=direct";
  run(write_16m, CGroup{});
  const double free_run = real_seconds(run(writes + " && " + reads, CGroup{}));
  const std::string err =
      run(writes + " && " + reads,
          CGroup{}.device_write_iops(disk_.numbers(), 100).device_read_iops(disk_.numbers(), 100));
  expect_near(real_seconds(err, 0), 3.0, "300 writes at 100/s");
  expect_near(real_seconds(err, 1), 3.0, "300 reads at 100/s");
  std::printf("[ measured ] the same without a limit: %.2f s\n", free_run);
  EXPECT_LT(free_run, 1.0);
}

// The container's own fsync() writes its dirty pages back from its own context: held on v1
// and on v2.
TEST_F(IoLimits, BufferedWritesTheContainerFlushesAreHeld) {
  const std::string flushed = "time -p dd if=/dev/zero of=/tmp/f bs=1M count=16 conv=fsync";
  const double limited = real_seconds(run(flushed, CGroup{}.device_write_bps(device_, 2 * mib)));
  expect_near(limited, 8.0, "16 MiB written and fsync()ed at 2 MiB/s");
}

// Writeback by the kernel's flusher threads is charged to the cgroup that dirtied the pages
// only on v2 (cgroup writeback); v1 charges it to the root, so it is not held. This shows
// which one the host has, and the README says the same. syncfs (sync -f) waits for the
// writeback of the container's own filesystem only: a plain sync would also wait for every
// other writer on the host, such as the test beside this one.
TEST_F(IoLimits, BackgroundWritebackIsHeldOnV2Only) {
  const auto start = std::chrono::steady_clock::now();
  run("dd if=/dev/zero of=/tmp/f bs=1M count=16 && sync -f /tmp/f",
      CGroup{}.device_write_bps(device_, 2 * mib));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (unified()) {
    expect_near(seconds, 8.0, "v2: 16 MiB buffered, then sync, at 2 MiB/s");
  } else {
    std::printf("[ measured ] v1: 16 MiB buffered, then sync, at 2 MiB/s: %.2f s\n", seconds);
    EXPECT_LT(seconds, 8.0 / 3) << "v1 held the flusher's writeback: " << seconds << " s";
  }
}

TEST_F(IoLimits, StatsCountWhatTheContainerMovedOnTheDisk) {
  auto child = container(write_16m + " && " + read_16m)
                   .cgroup(CGroup{}.device_write_bps(device_, 64 * mib))
                   .spawn();
  ASSERT_TRUE(child) << child.error().message();
  auto status = child->wait();
  ASSERT_TRUE(status && status->success());
  auto stats = child->stats();
  ASSERT_TRUE(stats) << stats.error().message();
  const hutch::DeviceIoStats* io = stats->io_of(disk_);
  ASSERT_NE(io, nullptr) << "no entry for " << disk_.numbers();
  EXPECT_GE(io->write_bytes, 16 * mib);
  EXPECT_LE(io->write_bytes, 16 * mib * 11 / 10);
  EXPECT_GE(io->read_bytes, 16 * mib);
  EXPECT_LE(io->read_bytes, 16 * mib * 11 / 10);
  EXPECT_GE(io->write_ios, 16u);
  EXPECT_GE(stats->io_write_bytes, io->write_bytes);
}

TEST_F(IoLimits, AWeightReachesTheKernelOnItsOwnScale) {
  auto child = container("true").cgroup(CGroup{}.blkio_weight(500)).spawn();
  ASSERT_TRUE(child) << child.error().message();
  std::string written;
  for (const auto& dir : child->cgroup()->paths()) {
    for (const char* file : {"io.weight", "io.bfq.weight", "blkio.weight", "blkio.bfq.weight"}) {
      bool ok = false;
      std::string text = hutch::detail::read_text(dir + "/" + file, &ok);
      if (ok) {
        written = text;
        break;
      }
    }
  }
  ASSERT_TRUE(child->wait());
  // v2's io.weight holds 1..10000 ("default 4950"); BFQ's and v1's files 10..1000.
  EXPECT_TRUE(written.find("4950") != std::string::npos || written.find("500") != std::string::npos)
      << written;
}

// A partition: $HUTCH_TEST_PARTITION (the qemu run's second disk holds one), or one made
// on a loop device here, where the kernel reads partition tables.
TEST_F(IoLimits, APartitionIsRefusedAndItsDiskNamed) {
  std::string partition, disk;
  if (const char* given = std::getenv("HUTCH_TEST_PARTITION"); given && *given) {
    partition = given;
  } else {
    // A disk with an MBR of one partition (type 0x83 from sector 2048), scanned by the
    // kernel (losetup --partscan).
    const std::string image = scratch_ + "/parted.img";
    {
      std::string mbr(512, '\0');
      auto le32 = [&](std::size_t at, std::uint32_t v) {
        for (std::size_t i = 0; i < 4; ++i) mbr[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
      };
      mbr[0x1be + 4] = static_cast<char>(0x83);
      le32(0x1be + 8, 2048);
      le32(0x1be + 12, 64 * 2048 - 2048);
      mbr[510] = static_cast<char>(0x55);
      mbr[511] = static_cast<char>(0xaa);
      std::ofstream(image, std::ios::binary).write(mbr.data(), 512);
    }
    fs::resize_file(image, 64 * mib);
    disk = shell("losetup --find --show --partscan " + image);
    ASSERT_FALSE(disk.empty());
    partition = disk + "p1";
  }
  struct stat st {};
  for (int i = 0; i < 50 && ::stat(partition.c_str(), &st) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool found = ::stat(partition.c_str(), &st) == 0;
  if (found) {
    LeakCheck leaks;
    auto named = hutch::block_device(partition);
    auto numbered = hutch::block_device(fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev)));
    auto r = container("true").cgroup(CGroup{}.device_read_bps(partition, mib)).spawn();
    for (const auto* e : {&named, &numbered}) {
      ASSERT_FALSE(*e);
      EXPECT_NE(e->error().message().find("is a partition"), std::string::npos)
          << e->error().message();
      // The disk holding it is named: "name /dev/vdb (254:16)".
      EXPECT_NE(e->error().message().find("name /dev/"), std::string::npos) << e->error().message();
      if (!disk.empty()) {
        EXPECT_NE(e->error().message().find(disk), std::string::npos) << e->error().message();
      }
    }
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().step, hutch::Step::validate);
  }
  if (!disk.empty()) shell("losetup -d " + disk);
  if (!found) {
    GTEST_SKIP() << "this kernel reads no partition tables (no CONFIG_MSDOS_PARTITION): "
                 << partition << " never appeared; the qemu run tests this on its own disk";
  }
}
