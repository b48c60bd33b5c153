// hutch::net's pure logic: configuration lists, each plugin's configuration, the runtime
// configuration for the capabilities, resolv.conf and hosts, a plugin's error.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <hutch/hutch.hpp>
#include <hutch/net.hpp>

namespace {

using hutch::Network;
using hutch::PortMapping;
namespace net = hutch::net;

TEST(NetConfig, AConflistParsesAndASingleConfBecomesAListOfOne) {
  auto list = net::parse_network_list(
      R"({"cniVersion":"1.0.0","name":"n1","plugins":[{"type":"bridge"},{"type":"portmap"}]})",
      "t");
  ASSERT_TRUE(list) << list.error().message();
  EXPECT_EQ(list->name(), "n1");
  EXPECT_EQ(list->list["plugins"].size(), 2u);
  auto conf = net::parse_network_list(R"({"cniVersion":"0.4.0","name":"n2","type":"ptp"})", "t");
  ASSERT_TRUE(conf) << conf.error().message();
  EXPECT_EQ(conf->version(), "0.4.0");
  ASSERT_EQ(conf->list["plugins"].size(), 1u);
  EXPECT_EQ(conf->list["plugins"][0]["type"], "ptp");
  EXPECT_FALSE(conf->list["plugins"][0].contains("name"));
}

TEST(NetConfig, BrokenListsAreRefusedWithTheReason) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"not json", "not a JSON object"},
      {"[]", "not a JSON object"},
      {R"({"name":"x"})", "neither"},
      {R"({"name":"x","plugins":[]})", "non-empty"},
      {R"({"name":"x","plugins":[{"type":"../../bin/sh"}]})", "plain file name"},
      {R"({"name":"x","plugins":[{"type":"/bin/sh"}]})", "plain file name"},
      {R"({"name":"x","plugins":[{}]})", "plain file name"},
      {R"({"name":"a/b","plugins":[{"type":"bridge"}]})", "\"name\""},
      {R"({"name":"x","cniVersion":1,"plugins":[{"type":"bridge"}]})", "cniVersion"},
  };
  for (const auto& c : cases) {
    auto list = net::parse_network_list(c.text, "file.conflist");
    ASSERT_FALSE(list) << c.text;
    EXPECT_EQ(list.error().step, hutch::net_step::config);
    EXPECT_NE(list.error().message().find(c.says), std::string::npos)
        << c.text << ": " << list.error().message();
    EXPECT_NE(list.error().message().find("file.conflist"), std::string::npos);
  }
}

TEST(NetConfig, EachPluginGetsTheListsNameVersionPrevResultAndOnlyItsCapabilities) {
  auto list = net::parse_network_list(R"({"cniVersion":"1.0.0","name":"n","plugins":[
      {"type":"bridge"},
      {"type":"portmap","capabilities":{"portMappings":true}},
      {"type":"bandwidth","capabilities":{"bandwidth":true,"portMappings":false}}]})",
                                      "t");
  ASSERT_TRUE(list);
  const auto runtime = Network::bridge()
                           .publish({"127.0.0.1", 8080, 80, PortMapping::Protocol::tcp})
                           .bandwidth(8'000'000, 0)
                           .runtime_config();
  const nlohmann::json prev = {{"cniVersion", "1.0.0"}, {"ips", nlohmann::json::array()}};
  auto first = net::plugin_config(*list, 0, nullptr, runtime);
  EXPECT_EQ(first["name"], "n");
  EXPECT_EQ(first["cniVersion"], "1.0.0");
  EXPECT_FALSE(first.contains("prevResult"));
  EXPECT_FALSE(first.contains("runtimeConfig"));
  auto portmap = net::plugin_config(*list, 1, prev, runtime);
  EXPECT_EQ(portmap["prevResult"], prev);
  ASSERT_TRUE(portmap.contains("runtimeConfig"));
  EXPECT_FALSE(portmap["runtimeConfig"].contains("bandwidth"));
  const auto& mapping = portmap["runtimeConfig"]["portMappings"][0];
  EXPECT_EQ(mapping["hostPort"], 8080);
  EXPECT_EQ(mapping["containerPort"], 80);
  EXPECT_EQ(mapping["protocol"], "tcp");
  EXPECT_EQ(mapping["hostIP"], "127.0.0.1");
  auto bandwidth = net::plugin_config(*list, 2, prev, runtime);
  ASSERT_TRUE(bandwidth.contains("runtimeConfig"));
  EXPECT_FALSE(bandwidth["runtimeConfig"].contains("portMappings"));
  EXPECT_EQ(bandwidth["runtimeConfig"]["bandwidth"]["ingressRate"], 8'000'000);
  EXPECT_GT(bandwidth["runtimeConfig"]["bandwidth"]["ingressBurst"].get<std::uint64_t>(), 0u);
  EXPECT_FALSE(bandwidth["runtimeConfig"]["bandwidth"].contains("egressRate"));
}

TEST(NetConfig, TheDefaultBridgeListUsesItsOwnSubnetAndStateDirectory) {
  auto list = Network::bridge().state_dir("/x/state").network_list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->name(), "hutch");
  const auto& bridge = list->list["plugins"][0];
  EXPECT_EQ(bridge["type"], "bridge");
  EXPECT_EQ(bridge["bridge"], "hutch0");
  EXPECT_EQ(bridge["ipam"]["ranges"][0][0]["subnet"], "10.77.0.0/24");
  EXPECT_EQ(bridge["ipam"]["dataDir"], "/x/state/ipam");
  auto types = [](const hutch::net::NetworkList& l) {
    std::vector<std::string> out;
    for (const auto& p : l.list["plugins"]) out.push_back(p["type"]);
    return out;
  };
  EXPECT_EQ(types(*list), (std::vector<std::string>{"bridge", "firewall"}));
  auto full = Network::bridge().publish({"", 80, 80, {}}).bandwidth(1000, 0).network_list();
  ASSERT_TRUE(full);
  EXPECT_EQ(types(*full), (std::vector<std::string>{"bridge", "portmap", "firewall", "bandwidth"}));
}

TEST(NetConfig, ANamedNetworkIsLookedUpAndABadNameRefused) {
  EXPECT_FALSE(Network::cni("no/such/file.conflist").network_list());
  auto missing = Network::cni("nothere").config_dir("/nonexistent").network_list();
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/nonexistent"), std::string::npos);
  auto bad = Network::cni("a b").network_list();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("not a network name"), std::string::npos);
  auto inline_list =
      Network::cni(R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"loopback"}]})")
          .network_list();
  ASSERT_TRUE(inline_list);
  EXPECT_EQ(inline_list->name(), "x");
}

TEST(NetConfig, ResolvConfDropsLoopbackServersKeepsSearchAndOptions) {
  const char* host =
      "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\n"
      "options ndots:2 edns0\nnameserver ::1\n";
  EXPECT_EQ(net::resolv_conf(host, {}, false),
            "nameserver 10.0.0.2\nsearch corp.example\noptions ndots:2 edns0\n");
  EXPECT_EQ(net::resolv_conf("nameserver 127.0.0.1\n", {}, false),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  EXPECT_EQ(net::resolv_conf("nameserver 127.0.0.1\n", {}, true), "nameserver 127.0.0.1\n");
  net::NameConfig own;
  own.servers = {"1.1.1.1"};
  own.search = {"a.example", "b.example"};
  EXPECT_EQ(net::resolv_conf(host, own, false),
            "nameserver 1.1.1.1\nsearch a.example b.example\noptions ndots:2 edns0\n");
}

TEST(NetConfig, HostsHoldLocalhostAddedHostsAndTheContainersOwnName) {
  net::NameConfig names;
  names.hosts = {{"db", "10.1.2.3"}};
  const std::string hosts = net::hosts_file(names, "10.77.0.5", "web");
  EXPECT_NE(hosts.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(hosts.find("10.1.2.3\tdb\n"), std::string::npos);
  EXPECT_NE(hosts.find("10.77.0.5\tweb\n"), std::string::npos);
  EXPECT_EQ(net::hosts_file({}, "", "web").find("web"), std::string::npos);
}

TEST(NetConfig, APluginsErrorKeepsItsCodeAndMessage) {
  const hutch::Error e = net::detail::plugin_error(
      hutch::net_step::add, "bridge",
      {{"code", 7}, {"msg", "bad subnet"}, {"details", "10.0.0.0/33"}}, "");
  EXPECT_EQ(e.code.value(), 7);
  EXPECT_EQ(&e.code.category(), &net::cni_category());
  const std::string text = e.message();
  EXPECT_NE(text.find("bad subnet (10.0.0.0/33)"), std::string::npos) << text;
  EXPECT_NE(text.find("bridge"), std::string::npos) << text;
  EXPECT_NE(text.find("invalid network config"), std::string::npos) << text;
  const hutch::Error plain =
      net::detail::plugin_error(hutch::net_step::add, "x", nullptr, "panic: oops\n");
  EXPECT_NE(plain.message().find("panic: oops"), std::string::npos);
}

TEST(NetConfig, ThePluginIsAFileInCniPathNeverAPath) {
  EXPECT_TRUE(hutch::detail::find_executable("sh", "/nonexistent:/bin"));
  EXPECT_FALSE(hutch::detail::find_executable("sh", "relative/dir:"));
  EXPECT_FALSE(hutch::detail::find_executable("no-such-plugin", "/bin:/usr/bin"));
}

}  // namespace

namespace {

TEST(NetConfig, AnIncompatibleVersionNamesWhatThePluginSupports) {
  // A stand-in plugin in a directory of its own: VERSION answers, ADD refuses the version.
  char dir[] = "/tmp/hutch-cni-unit.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string plugin = std::string(dir) + "/old";
  {
    std::FILE* f = std::fopen(plugin.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = VERSION ]; then\n"
        "  echo '{\"cniVersion\":\"0.4.0\",\"supportedVersions\":[\"0.3.1\",\"0.4.0\"]}'\n"
        "  exit 0\nfi\necho '{\"code\":1,\"msg\":\"incompatible CNI versions\"}'\nexit 1\n",
        f);
    std::fclose(f);
  }
  ::chmod(plugin.c_str(), 0755);
  auto list = net::parse_network_list(
      R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"old"}]})", "t");
  ASSERT_TRUE(list);
  net::Invocation how;
  how.container_id = "unit";
  how.cni_path = dir;
  auto added = net::add(*list, how, nlohmann::json::object());
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().code.value(), 1);
  EXPECT_NE(
      added.error().message().find("the list asks for 1.0.0; the plugin supports 0.3.1, 0.4.0"),
      std::string::npos)
      << added.error().message();
  ::unlink(plugin.c_str());
  ::rmdir(dir);
}

/// CHECK runs each plugin in ADD's order with the stored ADD result as prevResult, says which
/// plugin found a difference, and is skipped where the spec has none (before 0.4.0) or the list
/// turns it off.
TEST(NetConfig, CheckAsksEachPluginInOrderWithTheAddResult) {
  char dir[] = "/tmp/hutch-cni-unit.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string d = dir;
  for (const char* name : {"first", "second"}) {
    std::FILE* f = std::fopen((d + "/" + name).c_str(), "w");
    ASSERT_NE(f, nullptr);
    // Logs command, name and config; the second fails CHECK when told to by its config.
    std::fprintf(f,
                 "#!/bin/sh\nconf=$(cat)\necho \"$CNI_COMMAND %s $conf\" >>%s/log\n"
                 "case \"$conf\" in *'\"fail\":true'*) "
                 "echo '{\"code\":7,\"msg\":\"veth is gone\"}'; exit 1;; esac\n",
                 name, dir);
    std::fclose(f);
    ::chmod((d + "/" + name).c_str(), 0755);
  }
  net::Invocation how;
  how.container_id = "unit";
  how.cni_path = d;
  const nlohmann::json added = {{"cniVersion", "1.0.0"}, {"ips", {{{"address", "10.0.0.2/24"}}}}};
  auto list = net::parse_network_list(
      R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"first"},{"type":"second"}]})", "t");
  ASSERT_TRUE(list);
  ASSERT_TRUE(net::check(*list, how, nlohmann::json::object(), added));
  const std::string log = hutch::net::read_small_file(d + "/log");
  const auto first = log.find("CHECK first"), second = log.find("CHECK second");
  ASSERT_NE(first, std::string::npos) << log;
  ASSERT_NE(second, std::string::npos) << log;
  EXPECT_LT(first, second);
  EXPECT_NE(log.find("\"prevResult\":{\"cniVersion\":\"1.0.0\",\"ips\""), std::string::npos) << log;

  auto failing = net::parse_network_list(
      R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"first"},{"type":"second","fail":true}]})",
      "t");
  ASSERT_TRUE(failing);
  auto checked = net::check(*failing, how, nlohmann::json::object(), added);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().step, hutch::net_step::check);
  EXPECT_EQ(checked.error().code.value(), 7);
  EXPECT_NE(checked.error().message().find("veth is gone"), std::string::npos)
      << checked.error().message();
  EXPECT_NE(checked.error().message().find("second"), std::string::npos);

  ::unlink((d + "/log").c_str());
  for (
      const char* text :
      {R"({"cniVersion":"0.3.1","name":"n","plugins":[{"type":"second","fail":true}]})",
       R"({"cniVersion":"1.0.0","name":"n","disableCheck":true,"plugins":[{"type":"second","fail":true}]})"}) {
    auto skipped = net::parse_network_list(text, "t");
    ASSERT_TRUE(skipped);
    EXPECT_FALSE(net::checkable(*skipped)) << text;
    EXPECT_TRUE(net::check(*skipped, how, nlohmann::json::object(), added)) << text;
  }
  EXPECT_EQ(::access((d + "/log").c_str(), F_OK), -1) << "a plugin ran";
  for (const char* name : {"first", "second"}) ::unlink((d + "/" + name).c_str());
  ::rmdir(dir);
}

}  // namespace
