// The I/O controller's logic without a cgroup: its counters parsed, weights converted, and
// names resolved to the disks sysfs lists.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <string>

#include <hutch/cgroup.hpp>

using hutch::detail::blkio_of_io_weight;
using hutch::detail::io_weight_of_blkio;
using hutch::detail::parse_blkio_stats;
using hutch::detail::parse_io_stat;

TEST(CGroupIo, V2IoStatIsReadPerDevice) {
  auto stats = parse_io_stat(
      "254:0 rbytes=4096 wbytes=16777216 rios=1 wios=128 dbytes=0 dios=0\n"
      "7:3 rbytes=1048576 wbytes=0 rios=8 wios=0 dbytes=0 dios=0\n"
      "garbage line\n");
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].major, 254u);
  EXPECT_EQ(stats[0].write_bytes, 16777216u);
  EXPECT_EQ(stats[0].write_ios, 128u);
  EXPECT_EQ(stats[1].minor, 3u);
  EXPECT_EQ(stats[1].read_bytes, 1048576u);
  EXPECT_EQ(stats[1].read_ios, 8u);
}

TEST(CGroupIo, V1BlkioCountersAreReadPerDeviceWithoutTheTotals) {
  auto stats = parse_blkio_stats(
      "7:0 Read 16777216\n7:0 Write 33554432\n7:0 Sync 50331648\n7:0 Async 0\n"
      "7:0 Discard 0\n7:0 Total 50331648\n254:0 Read 4096\n254:0 Write 0\nTotal 50335744\n",
      "7:0 Read 32\n7:0 Write 4129\n7:0 Total 4161\n254:0 Read 1\nTotal 4162\n");
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].read_bytes, 16777216u);
  EXPECT_EQ(stats[0].write_bytes, 33554432u);
  EXPECT_EQ(stats[0].read_ios, 32u);
  EXPECT_EQ(stats[0].write_ios, 4129u);
  EXPECT_EQ(stats[1].major, 254u);
  EXPECT_EQ(stats[1].read_ios, 1u);
}

TEST(CGroupIo, BlkioWeightsRoundTripThroughIoWeight) {
  for (std::uint64_t v1 = 10; v1 <= 1000; ++v1) {
    const auto v2 = io_weight_of_blkio(v1);
    EXPECT_GE(v2, 1u);
    EXPECT_LE(v2, 10000u);
    EXPECT_EQ(blkio_of_io_weight(v2), v1) << v1;
  }
  EXPECT_EQ(io_weight_of_blkio(10), 1u);
  EXPECT_EQ(io_weight_of_blkio(1000), 10000u);
  EXPECT_EQ(blkio_of_io_weight(100), 19u);  // v2's default
}

TEST(CGroupIo, NamesResolveToTheDiskSysfsLists) {
  // Whatever disk holds this machine's root: by a file on it, by its numbers, by its node.
  struct stat st {};
  ASSERT_EQ(::stat("/", &st), 0);
  auto by_file = hutch::block_device("/");
  if (!by_file)
    GTEST_SKIP() << "the root filesystem has no block device here: " << by_file.error().message();
  auto by_numbers = hutch::block_device(by_file->numbers());
  ASSERT_TRUE(by_numbers) << by_numbers.error().message();
  EXPECT_EQ(*by_numbers, *by_file);
  EXPECT_FALSE(by_file->name.empty());
  const std::string node = "/dev/" + by_file->name;
  if (::stat(node.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    auto by_node = hutch::block_device(node);
    ASSERT_TRUE(by_node) << by_node.error().message();
    EXPECT_EQ(*by_node, *by_file);
  }
}

TEST(CGroupIo, NamesThatNoDiskBacksAreRefusedWithTheReason) {
  auto refused = [](const std::string& name, const std::string& why) {
    auto d = hutch::block_device(name);
    ASSERT_FALSE(d) << name << " resolved to " << d->numbers();
    EXPECT_NE(d.error().message().find(why), std::string::npos) << d.error().message();
  };
  refused("/dev/nonexistent-disk", "No such file");
  refused("/dev/null", "needs a block device");
  refused("/proc/self", "it is on proc");
  refused("4095:1048575", "no block device 4095:1048575");
  refused("", "I/O limit device");
  struct stat st {};
  if (::stat("/dev/shm", &st) == 0 && major(st.st_dev) == 0) refused("/dev/shm", "it is on tmpfs");
}
