// The image module: images built here in code (OCI layouts with plain and gzip layers,
// whiteouts, an opaque directory, a multi-platform index, a docker save archive) and one
// written by umoci, run as containers; what the container sees is what is checked.
#include <archive.h>
#include <archive_entry.h>
#include <sys/wait.h>

#include <filesystem>
#include <hutch/image.hpp>
#include <thread>

#include "image_support.hpp"
#include "support.hpp"

using namespace hutch_test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            fmt::format("hutch-image-{}-{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_);
  }
  void TearDown() override { (void)hutch::detail::ScratchDir::remove_tree(base_.string()); }

  /// Three layers: busybox; gzip: passwd with "app", /data/{a,b}, /gone, /opq/old;
  /// then whiteouts of /gone and /data/a, /opq made opaque with /opq/new.
  Layout standard_layout(json run_config) {
    Layout layout(base_ / "layout");
    std::string second = make_tar(
        {{"etc/passwd", 'f', "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n"},
         {"etc/group", 'f', "root:x:0:\napp:x:1001:\n"},
         {"data", 'd'},
         {"data/a", 'f', "a\n"},
         {"data/b", 'f', "b\n"},
         {"gone", 'f', "x\n"},
         {"opq", 'd'},
         {"opq/old", 'f', "old\n"}});
    std::string third = make_tar({{".wh.gone", 'f', ""},
                                  {"data/.wh.a", 'f', ""},
                                  {"opq", 'd'},
                                  {"opq/.wh..wh..opq", 'f', ""},
                                  {"opq/new", 'f', "new\n"}});
    auto manifest =
        layout.image({busybox_layer(), second, third}, {false, true, false}, std::move(run_config));
    layout.index({{"latest", manifest}});
    return layout;
  }

  hutch::ImageStore store() const { return hutch::ImageStore((base_ / "store").string()); }

  /// The store holds no partial entry: nothing in tmp, nothing but complete layers.
  void expect_store_clean() {
    fs::path tmp = base_ / "store/tmp";
    if (fs::exists(tmp)) {
      EXPECT_TRUE(fs::is_empty(tmp)) << "a partial layer was left in the store";
    }
  }

  fs::path base_;
  LeakCheck leaks_;
};

json standard_config() {
  return {{"Entrypoint", {"/bin/sh", "-c"}},
          {"Cmd", {"ls /data; ls /opq; test -e /gone || echo gone-hidden; echo $GREETING; pwd"}},
          {"Env", {"PATH=/bin", "GREETING=hello"}},
          {"WorkingDir", "/data"},
          {"ExposedPorts", {{"80/tcp", json::object()}}},
          {"StopSignal", "SIGQUIT"}};
}

TEST_F(ImageTest, RunsTheMergedLayersWithTheConfigsEntrypointEnvAndWorkdir) {
  Layout layout = standard_layout(standard_config());
  auto image = hutch::Image::open(layout.dir().string(), "latest");
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_EQ(image->layers().size(), 3u);
  EXPECT_EQ(image->config().stop_signal, "SIGQUIT");
  EXPECT_EQ(image->config().exposed_ports, std::vector<std::string>{"80/tcp"});
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "b\nnew\ngone-hidden\nhello\n/data\n");
  // docker's rule: a command of one's own replaces Cmd and keeps the Entrypoint.
  EXPECT_EQ(run_ok(hutch::Container(*c).command(image->command({"echo own"}))), "own\n");
  // The container's writes go to its own overlay, never into the store.
  EXPECT_EQ(
      run_ok(hutch::Container(*c).command(image->command({"echo w > /data/new; cat /data/new"}))),
      "w\n");
  EXPECT_EQ(run_ok(*c), "b\nnew\ngone-hidden\nhello\n/data\n");
}

TEST_F(ImageTest, TheImagesUserIsResolvedThroughItsOwnPasswd) {
  json config = standard_config();
  config["User"] = "app";
  config["Cmd"] = {"echo $(id -u):$(id -g)"};
  Layout layout = standard_layout(config);
  auto image = hutch::Image::open(layout.dir().string(), "latest");
  ASSERT_TRUE(image) << image.error().message();
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  if (is_root()) {
    EXPECT_EQ(run_ok(*c), "1000:1001\n");
  } else {
    // Rootless, only the caller is mapped (as root): the error says so before anything runs.
    auto r = c->spawn();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("uid 1000"), std::string::npos) << r.error().message();
  }
  auto unknown = hutch::resolve_user({(base_ / "none").string()}, "nobody-here");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("no such user"), std::string::npos);
}

TEST_F(ImageTest, ASecondRunReusesTheStore) {
  Layout layout = standard_layout(standard_config());
  auto image = hutch::Image::open(layout.dir().string(), "latest");
  ASSERT_TRUE(image) << image.error().message();
  std::size_t reports = 0;
  std::uint64_t last_done = 0, total = 0;
  auto first = image->unpack(store(), [&](const hutch::LayerProgress& p) {
    ++reports;
    if (p.layer == 0) last_done = p.done, total = p.total;
  });
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_GT(reports, 0u);
  EXPECT_EQ(last_done, total);
  reports = 0;
  auto second = image->unpack(store(), [&](const hutch::LayerProgress&) { ++reports; });
  ASSERT_TRUE(second);
  EXPECT_EQ(reports, 0u) << "the second run unpacked again";
  EXPECT_EQ(*first, *second);
  expect_store_clean();
}

TEST_F(ImageTest, AMultiPlatformIndexGivesTheHostsManifest) {
  Layout layout(base_ / "layout");
  two_platform_image(layout, "multi");
  auto image = hutch::Image::open(layout.dir().string(), "multi");
  ASSERT_TRUE(image) << image.error().message();
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "host\n");
  // Asking for an architecture the index lacks names what it has.
  auto arm = hutch::Image::open(layout.dir().string(), "multi", {.architecture = "riscv64"});
  ASSERT_FALSE(arm);
  EXPECT_NE(arm.error().message().find("linux/s390x"), std::string::npos) << arm.error().message();
}

TEST_F(ImageTest, ADockerSaveArchiveRunsToo) {
  // docker < 25: manifest.json, <config hex>.json, <id>/layer.tar, in one tar.
  std::string layer = busybox_layer();
  std::string diff_id = hutch::detail::Sha256::of(layer);
  json config = {{"architecture", hutch::detail::host_architecture()},
                 {"os", "linux"},
                 {"config", {{"Cmd", {"/bin/echo", "saved"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id}}}}};
  std::string config_text = config.dump();
  std::string config_name = hutch::detail::Sha256::of(config_text).substr(7) + ".json";
  json manifest = json::array(
      {{{"Config", config_name}, {"RepoTags", {"demo:1"}}, {"Layers", {"abc/layer.tar"}}}});
  std::string archive_bytes = make_tar({{"manifest.json", 'f', manifest.dump()},
                                        {config_name, 'f', config_text},
                                        {"abc", 'd'},
                                        {"abc/layer.tar", 'f', layer}});
  const fs::path saved = base_ / "demo.tar";
  std::ofstream(saved, std::ios::binary) << archive_bytes;
  auto image = hutch::Image::open(saved.string(), "demo:1", {.store = store()});
  ASSERT_TRUE(image) << image.error().message();
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "saved\n");
}

TEST_F(ImageTest, BadImagesAreClearErrorsAndLeaveNoPartialLayer) {
  Layout layout = standard_layout(standard_config());
  // Unknown tag: the error lists what there is.
  auto unknown = hutch::Image::open(layout.dir().string(), "nope");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("it has: latest"), std::string::npos)
      << unknown.error().message();

  // A corrupted layer blob: found when it is unpacked, named, and nothing is left.
  auto image = hutch::Image::open(layout.dir().string(), "latest");
  ASSERT_TRUE(image);
  const std::string blob = image->layers()[2].blob;
  std::string bytes = read_file(blob);
  // One byte more after the tar's end: it unpacks fine, only the digest tells.
  std::ofstream(blob, std::ios::binary) << bytes << '\0';
  auto corrupted = image->unpack(store());
  ASSERT_FALSE(corrupted);
  EXPECT_EQ(corrupted.error().step, hutch::image_step::verify) << corrupted.error().message();
  EXPECT_NE(corrupted.error().message().find(image->layers()[2].digest), std::string::npos);
  expect_store_clean();
  EXPECT_FALSE(fs::exists(base_ / "store/layers/sha256" / image->layers()[2].diff_id.substr(7)));
  EXPECT_FALSE(fs::exists(base_ / "store/flat/sha256") &&
               !fs::is_empty(base_ / "store/flat/sha256"));

  // A missing blob: refused at open, named.
  fs::remove(blob);
  auto missing = hutch::Image::open(layout.dir().string(), "latest");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("is missing"), std::string::npos)
      << missing.error().message();

  // A manifest for another architecture (no index to choose from).
  Layout foreign(base_ / "foreign");
  foreign.index(
      {{"x", foreign.image({busybox_layer()}, {false}, {{"Cmd", {"/bin/true"}}}, "s390x")}});
  auto wrong = hutch::Image::open(foreign.dir().string(), "x");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("another architecture"), std::string::npos)
      << wrong.error().message();
}

TEST_F(ImageTest, ArchiveEntriesThatLeaveTheLayerAreRefused) {
  const fs::path outside = base_ / "outside";
  fs::create_directories(outside);
  const std::vector<std::pair<const char*, std::vector<TarEntry>>> attacks = {
      {"dot-dot", {{"../../../../../../../.." + (outside / "evil").string(), 'f', "x"}}},
      {"absolute", {{(outside / "evil").string(), 'f', "x"}}},
      {"symlink then write", {{"link", 'l', outside.string()}, {"link/evil", 'f', "x"}}},
      {"hard link out", {{"hard", 'h', "../../../../../../etc/passwd"}}},
  };
  for (const auto& [name, entries] : attacks) {
    Layout layout(base_ / fmt::format("layout-{}", name[0]));
    layout.index({{"t", layout.image({busybox_layer(), make_tar(entries)}, {false, true},
                                     {{"Cmd", {"/bin/true"}}})}});
    auto image = hutch::Image::open(layout.dir().string(), "t");
    ASSERT_TRUE(image) << name << ": " << image.error().message();
    auto unpacked = image->unpack(store());
    ASSERT_FALSE(unpacked) << name << " was unpacked";
    EXPECT_EQ(unpacked.error().step, hutch::image_step::unpack) << unpacked.error().message();
    EXPECT_TRUE(fs::is_empty(outside)) << name << " wrote outside the layer";
    expect_store_clean();
  }
}

TEST_F(ImageTest, TwoProcessesUnpackingTheSameImageAtOnceBothSucceed) {
  Layout layout = standard_layout(standard_config());
  auto image = hutch::Image::open(layout.dir().string(), "latest");
  ASSERT_TRUE(image);
  pid_t pids[2];
  for (pid_t& pid : pids) {
    pid = ::fork();
    if (pid == 0) {
      auto dirs = image->unpack(store());
      ::_exit(dirs && !dirs->empty() ? 0 : 1);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto c = image->container(store());
  ASSERT_TRUE(c);
  EXPECT_EQ(run_ok(*c), "b\nnew\ngone-hidden\nhello\n/data\n");
  expect_store_clean();
}

// An image written by umoci, Debian's OCI image tool: what real tools write, hutch reads.
TEST_F(ImageTest, ReadsALayoutWrittenByUmoci) {
  if (std::system("command -v umoci >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "umoci is not installed (apt-get install umoci)";
  }
  const std::string dir = (base_ / "umoci").string(), bundle = (base_ / "bundle").string();
  std::string rootless = is_root() ? "" : " --rootless";
  std::string script = fmt::format(
      "set -e; umoci init --layout {0}; umoci new --image {0}:demo;"
      "umoci unpack{2} --image {0}:demo {1};"
      "mkdir -p {1}/rootfs/bin; cp /bin/busybox {1}/rootfs/bin/; ln -s busybox {1}/rootfs/bin/sh;"
      "echo from-umoci > {1}/rootfs/marker;"
      "umoci repack --image {0}:demo {1};"
      "umoci config --image {0}:demo --config.entrypoint /bin/sh --config.cmd '-c'"
      " --config.cmd 'busybox cat /marker; echo $X' --config.env X=set --config.workingdir /bin",
      dir, bundle, rootless);
  ASSERT_EQ(std::system(("(" + script + ") >/dev/null 2>&1").c_str()), 0) << script;
  auto image = hutch::Image::open(dir, "demo");
  ASSERT_TRUE(image) << image.error().message();
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "from-umoci\nset\n");
}

}  // namespace
