// The cgroup layout as read from mountinfo, without spawning anything.
#include <gtest/gtest.h>

#include <hutch/cgroup.hpp>
#include <string>

namespace {

using hutch::detail::visible_hierarchies;

TEST(CGroupLayout, HierarchiesCoveredByALaterMountAreNotSeen) {
  // The machine's hierarchies, then a tmpfs over /sys/fs/cgroup and new ones below it (an
  // engine's sandbox): only the new ones are there to use.
  const std::string mountinfo =
      "22 1 0:20 / /sys rw - sysfs sysfs rw\n"
      "25 22 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
      "26 25 0:23 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
      "27 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "40 22 0:30 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
      "41 40 0:23 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
  const auto seen = visible_hierarchies(mountinfo);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].mount, "/sys/fs/cgroup/pids");
}

TEST(CGroupLayout, EveryHierarchyOfAPlainMachineIsSeen) {
  const std::string mountinfo =
      "25 22 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
      "26 25 0:23 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
      "27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "28 25 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
      "29 1 0:26 / /mnt/other rw - ext4 /dev/vda rw\n";
  const auto seen = visible_hierarchies(mountinfo);
  ASSERT_EQ(seen.size(), 2u);  // name=systemd has no controller hutch uses
  EXPECT_EQ(seen[0].controllers, std::vector<std::string>{"pids"});
  EXPECT_EQ(seen[1].controllers, std::vector<std::string>{"memory"});
}

}  // namespace
