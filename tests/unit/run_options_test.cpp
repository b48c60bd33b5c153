// hutch-run's flags and their values, parsed without running anything.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../../tools/hutch-run/options.hpp"

using hutch_run::parse_args;
using hutch_run::parse_count;
using hutch_run::parse_cpus;
using hutch_run::parse_size;
using hutch_run::parse_ulimit;
using hutch_run::parse_volume;

namespace {

hutch::result<hutch_run::RunOptions> parse(std::vector<std::string_view> args) {
  return parse_args(args);
}

}  // namespace

TEST(RunValues, SizesAreBinaryAndNeverWrap) {
  EXPECT_EQ(parse_size("64M"), 64ull << 20);
  EXPECT_EQ(parse_size("64m"), 64ull << 20);
  EXPECT_EQ(parse_size("64mb"), 64ull << 20);
  EXPECT_EQ(parse_size("64MiB"), 64ull << 20);
  EXPECT_EQ(parse_size("1g"), 1ull << 30);
  EXPECT_EQ(parse_size("1.5g"), 3ull << 29);
  EXPECT_EQ(parse_size("512k"), 512ull << 10);
  EXPECT_EQ(parse_size("1048576"), 1048576u);
  EXPECT_EQ(parse_size("10b"), 10u);
  for (const char* bad : {"", "m", "-1", "1x", "1.2.3", "99999999999999999999", "17179869185G",
                          "8193P", "nan", "inf", "1e9", " 1", "12ib", "0x10"}) {
    EXPECT_FALSE(parse_size(bad)) << bad;
  }
}

TEST(RunValues, CpusCountsAndUlimits) {
  EXPECT_DOUBLE_EQ(*parse_cpus("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_cpus("2"), 2.0);
  for (const char* bad : {"nan", "inf", "-1", "0", "0.001", "", "1e3", "abc"}) {
    EXPECT_FALSE(parse_cpus(bad)) << bad;
  }
  EXPECT_EQ(*parse_count("64"), 64u);
  for (const char* bad : {"0", "-5", "99999999999999999999", "5x", ""}) {
    EXPECT_FALSE(parse_count(bad)) << bad;
  }
  auto nofile = parse_ulimit("nofile=64:128");
  ASSERT_TRUE(nofile);
  EXPECT_EQ(nofile->resource, RLIMIT_NOFILE);
  EXPECT_EQ(nofile->soft, 64u);
  EXPECT_EQ(nofile->hard, 128u);
  EXPECT_EQ(parse_ulimit("core=unlimited")->hard, RLIM_INFINITY);
  for (const char* bad : {"nofile", "nofile=", "fly=1", "nofile=99999999999999999999",
                          "nofile=10:5", "nofile=1:2:3", "nofile=-2"}) {
    EXPECT_FALSE(parse_ulimit(bad)) << bad;
  }
}

TEST(RunValues, VolumesNeedAHostPathAndAContainerPathOtherThanRoot) {
  auto v = parse_volume("/srv/data:/data:ro");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->host, "/srv/data");
  EXPECT_EQ(v->inside, "/data");
  EXPECT_TRUE(v->read_only);
  EXPECT_TRUE(parse_volume("./here:/x"));
  for (const char* bad : {"vol:/data", "/a:/", "/a://", "/a:rel", "/a:/x/../y", "/a", "/a:/b:rx",
                          ":/b", "/a:/b:ro:x"}) {
    EXPECT_FALSE(parse_volume(bad)) << bad;
  }
}

TEST(RunOptions, FlagsTakeDockersForms) {
  auto o = parse(
      {"--rootfs", "/r", "-m",    "64M",   "--cpus=0.5", "--pids-limit", "8",
       "-it",      "-e", "A=1",   "-eB=2", "--net",      "host",         "-w",
       "/tmp",     "-v", "/a:/b", "--rm",  "sh",         "-c",           "echo --not-a-flag"});
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->rootfs, "/r");
  EXPECT_EQ(o->memory, 64ull << 20);
  EXPECT_DOUBLE_EQ(*o->cpus, 0.5);
  EXPECT_EQ(o->pids, 8u);
  EXPECT_TRUE(o->interactive && o->tty && o->remove);
  ASSERT_EQ(o->env.size(), 2u);
  EXPECT_EQ(o->env[1], (std::pair<std::string, std::string>{"B", "2"}));
  EXPECT_EQ(o->network, "host");
  EXPECT_EQ(o->workdir, "/tmp");
  EXPECT_EQ(o->command, (std::vector<std::string>{"sh", "-c", "echo --not-a-flag"}));
  auto dashed = parse({"--rootfs", "/r", "--", "--odd-name"});
  ASSERT_TRUE(dashed);
  EXPECT_EQ(dashed->command, std::vector<std::string>{"--odd-name"});
}

TEST(RunOptions, EveryMalformedValueIsRefusedByName) {
  auto refused = [](std::vector<std::string_view> args, const std::string& what) {
    auto o = parse_args(args);
    ASSERT_FALSE(o) << what << " was accepted";
    EXPECT_NE(o.error().message().find(what), std::string::npos) << o.error().message();
  };
  refused({"--rootfs", "/r", "--memory", "99999999999999999999", "true"}, "--memory");
  refused({"--rootfs", "/r", "--ulimit", "nofile=99999999999999999999", "true"}, "--ulimit");
  refused({"--rootfs", "/r", "--cpus", "nan", "true"}, "--cpus");
  refused({"--rootfs", "/r", "-v", "vol:/", "true"}, "--volume");
  refused({"--rootfs", "/r", "-w", "etc", "true"}, "--workdir");
  refused({"--rootfs", "/r", "--bogus", "true"}, "unknown option --bogus");
  refused({"--rootfs", "/r", "-X", "true"}, "unknown option -X");
  refused({"--rootfs", "/r", "--memory"}, "needs a value");
  refused({"--rootfs", "/r", "--rm=maybe", "true"}, "true or false");
  refused({"--rootfs", "/r"}, "no command");
  refused({"true"}, "--rootfs");
  refused({"--rootfs", "/r", "--image", "x", "true"}, "either");
  refused({"--rootfs", "/r", "--network", "bridge 0", "true"},
          "--network");  // names are CNI networks
  refused({"--rootfs", "/r", "--cap-add", "CAP_FLY", "true"}, "--cap-add");
  refused({"--rootfs", "/r", "--security-opt", "apparmor=x", "true"}, "--security-opt");
  refused({"--rootfs", "/r", "-e", "=x", "true"}, "--env");
  refused({"--image", std::string(5000, 'a'), "true"}, "PATH_MAX");
}

TEST(RunOptions, DeviceLimitsTakeDockersSpellingAndAddUpPerDevice) {
  auto o = parse({"--rootfs", "/r", "--device-write-bps", "/dev/vda:1mb", "--device-read-bps",
                  "/dev/vda:512k", "--device-write-iops=8:0:100", "--device-read-iops", "8:0:50",
                  "--blkio-weight", "300", "true"});
  ASSERT_TRUE(o) << o.error().message();
  ASSERT_EQ(o->device_limits.size(), 2u);
  EXPECT_EQ(o->device_limits[0].device, "/dev/vda");
  EXPECT_EQ(o->device_limits[0].write_bps, 1u << 20);
  EXPECT_EQ(o->device_limits[0].read_bps, 512u << 10);
  EXPECT_EQ(o->device_limits[1].device, "8:0");
  EXPECT_EQ(o->device_limits[1].write_iops, 100u);
  EXPECT_EQ(o->device_limits[1].read_iops, 50u);
  EXPECT_EQ(o->blkio_weight, 300u);
  auto unset = parse({"--rootfs", "/r", "--blkio-weight", "0", "true"});
  ASSERT_TRUE(unset);
  EXPECT_FALSE(unset->blkio_weight);
}

TEST(RunOptions, DeviceLimitsRefuseZeroGarbageAndAMissingDevice) {
  for (std::string_view bad : {"/dev/vda:0", "/dev/vda:", "/dev/vda", ":1mb", "/dev/vda:1x",
                               "/dev/vda:-1", "/dev/vda:99999999999999999999"}) {
    auto o = parse({"--rootfs", "/r", "--device-write-bps", bad, "true"});
    ASSERT_FALSE(o) << bad;
    EXPECT_NE(o.error().message().find("--device-write-bps"), std::string::npos);
  }
  for (std::string_view bad : {"/dev/vda:0", "/dev/vda:1k", "/dev/vda:1.5"}) {
    EXPECT_FALSE(parse({"--rootfs", "/r", "--device-read-iops", bad, "true"})) << bad;
  }
  for (std::string_view bad : {"5", "1001", "x", "-10"}) {
    EXPECT_FALSE(parse({"--rootfs", "/r", "--blkio-weight", bad, "true"})) << bad;
  }
}

TEST(RunOptions, HelpListsEveryFlag) {
  const std::string help = hutch_run::usage();
  for (const auto& flag : hutch_run::flags()) {
    EXPECT_NE(help.find(std::string("--") + flag.name), std::string::npos) << flag.name;
  }
  auto o = parse({"--help"});
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->help);
}

TEST(RunOptions, NetworkFlagsTakeDockersAndTcsSpelling) {
  auto o = parse({"--rootfs",
                  "/r",
                  "--network",
                  "bridge",
                  "-p",
                  "8080:80",
                  "-p",
                  "127.0.0.1:5353:53/udp",
                  "--publish=[::1]:8443:443/tcp",
                  "--bandwidth",
                  "8mbit",
                  "--egress-bandwidth",
                  "500kbit",
                  "--dns",
                  "192.0.2.53",
                  "--dns-search",
                  "corp.example",
                  "--add-host",
                  "db:10.0.0.5",
                  "true"});
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->network, "bridge");
  ASSERT_EQ(o->publish.size(), 3u);
  EXPECT_EQ(o->publish[0].host_ip, "");
  EXPECT_EQ(o->publish[0].host_port, 8080);
  EXPECT_EQ(o->publish[0].container_port, 80);
  EXPECT_FALSE(o->publish[0].udp);
  EXPECT_EQ(o->publish[1].host_ip, "127.0.0.1");
  EXPECT_TRUE(o->publish[1].udp);
  EXPECT_EQ(o->publish[2].host_ip, "::1");
  EXPECT_EQ(o->publish[2].host_port, 8443);
  EXPECT_EQ(o->ingress_bps, 8'000'000u);
  EXPECT_EQ(o->egress_bps, 500'000u);
  EXPECT_EQ(o->dns, std::vector<std::string>{"192.0.2.53"});
  EXPECT_EQ(o->dns_search, std::vector<std::string>{"corp.example"});
  ASSERT_EQ(o->add_hosts.size(), 1u);
  EXPECT_EQ(o->add_hosts[0].second, "10.0.0.5");
  EXPECT_EQ(*hutch_run::parse_tc_rate("1gbit"), 1'000'000'000u);
  EXPECT_EQ(*hutch_run::parse_tc_rate("1.5mbit"), 1'500'000u);
  EXPECT_EQ(*hutch_run::parse_tc_rate("125kbps"), 1'000'000u);  // tc: bytes per second
  EXPECT_EQ(*hutch_run::parse_tc_rate("64000"), 64'000u);
  auto named = parse({"--rootfs", "/r", "--net", "my-net_1.x", "true"});
  ASSERT_TRUE(named);
  EXPECT_EQ(named->network, "my-net_1.x");
}

TEST(RunOptions, NetworkFlagsRefuseWhatTheyCannotMean) {
  for (std::string_view bad :
       {"80", "0:80", "8080:0", "70000:80", "8080:80/sctp", "a:80", "1.2.3:8080:80",
        "1.2.3.999:8080:80", "[::1:8080:80", "[::1]8080:80", "::1:8080:80", "", ":", "8080:"}) {
    auto o = parse({"--rootfs", "/r", "-p", bad, "true"});
    ASSERT_FALSE(o) << bad;
    EXPECT_NE(o.error().message().find("--publish"), std::string::npos) << bad;
  }
  for (std::string_view bad : {"0", "0mbit", "fast", "mbit", "-1mbit", "1e9", "2000tbit", ""}) {
    EXPECT_FALSE(parse({"--rootfs", "/r", "--bandwidth", bad, "true"})) << bad;
  }
  for (std::string_view bad : {"a b", "", "..", "x;y"}) {
    EXPECT_FALSE(parse({"--rootfs", "/r", "--network", bad, "true"})) << bad;
  }
  EXPECT_FALSE(parse({"--rootfs", "/r", "--add-host", "db", "true"}));
  EXPECT_FALSE(parse({"--rootfs", "/r", "--add-host", "d b:1.2.3.4", "true"}));
  EXPECT_FALSE(parse({"--rootfs", "/r", "--dns", "nameserver", "true"}));
}
