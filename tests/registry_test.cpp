// hutch::registry against a real registry: Debian's docker-registry (the distribution
// registry 2.8) started here on 127.0.0.1 with its storage in the test's scratch directory,
// images pushed to it with skopeo; Basic auth through htpasswd, Bearer tokens from a token
// server of the test's own (tests/registry/token_server.py), and a registry that misbehaves
// (tests/registry/hostile_registry.py). What the container prints is what is checked, and
// every failure leaves the store as it was.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <hutch/registry.hpp>
#include <thread>

#include "image_support.hpp"
#include "support.hpp"

using namespace hutch_test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string scripts = HUTCH_REGISTRY_SCRIPTS;

/// A program started by the test, its output in `log`; stopped (by its pid) when destroyed.
class Daemon {
 public:
  Daemon() = default;
  Daemon(const std::vector<std::string>& argv, const fs::path& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  Daemon(Daemon&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  Daemon& operator=(Daemon&& o) noexcept {
    stop();
    pid_ = std::exchange(o.pid_, -1);
    return *this;
  }
  ~Daemon() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

/// Waits for a file a server writes its port to.
int wait_port_file(const fs::path& file) {
  for (int i = 0; i < 200; ++i) {
    if (fs::exists(file)) return std::stoi(read_file(file.string()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "skopeo", "openssl", "htpasswd", "python3"}) {
      if (shell(fmt::format("command -v {} >/dev/null", tool)) != 0) {
        GTEST_SKIP() << tool << " is not installed (scripts/install-deps installs it)";
      }
    }
    base_ = fs::temp_directory_path() /
            fmt::format("hutch-registry-{}-{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(base_);
    fs::permissions(base_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    // Nobody else's credentials: only what a test writes.
    options_.credential_files = {{(base_ / "config.json").string()}, "/nonexistent", {}};
    options_.transport.retries = 1;
    options_.transport.backoff = std::chrono::milliseconds(50);
  }
  void TearDown() override {
    registry_.stop();
    token_server_.stop();
    (void)hutch::detail::ScratchDir::remove_tree(base_.string());
  }

  /// Starts the registry; `auth` is its config's auth section (YAML, indented by two).
  void start_registry(const std::string& auth = {}) {
    port_ = free_port();
    std::ofstream(base_ / "registry.yml") << fmt::format(R"(version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {}
http:
  addr: 127.0.0.1:{}
{}
)",
                                                         (base_ / "data").string(), port_, auth);
    // As root, in a private mount namespace of its own (a daemon the test starts changes
    // nothing of the host's); a rootless caller cannot mount anyway.
    std::vector<std::string> argv = {"docker-registry", "serve", (base_ / "registry.yml").string()};
    if (is_root()) argv.insert(argv.begin(), {"unshare", "--mount", "--propagation", "private"});
    registry_ = Daemon(argv, base_ / "registry.log");
    for (int i = 0; i < 200 && !port_open(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(port_open(port_)) << read_file((base_ / "registry.log").string());
  }

  /// The registry with Basic auth: user alice, password s3cret (htpasswd, bcrypt).
  void start_basic_auth_registry() {
    ASSERT_EQ(shell(fmt::format("htpasswd -Bbc {} alice s3cret >/dev/null 2>&1",
                                (base_ / "htpasswd").string())),
              0);
    start_registry(fmt::format("auth:\n  htpasswd:\n    realm: hutch-test\n    path: {}",
                               (base_ / "htpasswd").string()));
  }

  std::string name(const std::string& repo_tag) const {
    return fmt::format("127.0.0.1:{}/{}", port_, repo_tag);
  }

  /// An image of busybox and a file, `marker`, whose Cmd prints the file.
  Layout image(const std::string& dir, const std::string& marker, const std::string& tag) {
    Layout layout(base_ / dir);
    auto manifest = layout.image({busybox_layer(), make_tar({{"marker", 'f', marker}})},
                                 {true, false}, {{"Cmd", {"/bin/cat", "/marker"}}});
    layout.index({{tag, manifest}});
    return layout;
  }

  /// skopeo copy to the registry. Its blob-info cache goes to $HOME (the scratch directory)
  /// for a user, to /var/lib/containers for root: as root it runs in a mount namespace of its
  /// own with a tmpfs over /var/lib, so nothing is left in the machine's.
  void push(const Layout& layout, const std::string& tag, const std::string& repo_tag,
            const std::string& creds = {}, bool all = false) {
    const std::string copy = fmt::format(
        "env HOME={} skopeo --insecure-policy copy --quiet {} {} --dest-tls-verify=false oci:{}:{} "
        "docker://{}",
        base_.string(), all ? "--all" : "", creds.empty() ? "" : "--dest-creds " + creds,
        layout.dir().string(), tag, name(repo_tag));
    const std::string command =
        is_root() ? "unshare --mount --propagation private sh -c 'mount -t tmpfs tmpfs /var/lib "
                    "&& exec " +
                        copy + "'"
                  : copy;
    ASSERT_EQ(shell(fmt::format("{} >>{} 2>&1", command, (base_ / "skopeo.log").string())), 0)
        << read_file((base_ / "skopeo.log").string());
  }

  /// GETs of blobs the registry's access log shows (layers and configs).
  int blob_gets() const {
    int n = 0;
    for (const auto& line : lines(read_file((base_ / "registry.log").string()))) {
      if (line.find("\"GET /v2/") != std::string::npos &&
          line.find("/blobs/sha256:") != std::string::npos) {
        ++n;
      }
    }
    return n;
  }

  hutch::ImageStore store() const { return hutch::ImageStore((base_ / "store").string()); }

  /// Nothing half-made in the store: no temporary entries, no layers, no references.
  void expect_store_empty() {
    for (const char* sub : {"tmp", "layers/sha256", "flat/sha256", "refs/sha256"}) {
      const fs::path p = base_ / "store" / sub;
      if (fs::exists(p)) {
        EXPECT_TRUE(fs::is_empty(p)) << p;
      }
    }
  }

  void write_docker_config(const std::string& user, const std::string& password) {
    json auths = {{fmt::format("127.0.0.1:{}", port_),
                   {{"auth", hutch::registry::detail::base64_encode(user + ":" + password)}}}};
    std::ofstream(base_ / "config.json") << json{{"auths", auths}}.dump();
  }

  fs::path base_;
  int port_ = 0;
  Daemon registry_, token_server_;
  hutch::registry::PullOptions options_;
};

TEST_F(RegistryTest, PullsAnImageAndRunsItAndASecondPullDownloadsNoLayer) {
  start_registry();
  push(image("layout", "pulled\n", "v1"), "v1", "library/marker:v1");
  std::vector<hutch::LayerProgress> seen;
  options_.progress = [&](const hutch::LayerProgress& p) { seen.push_back(p); };
  auto image = hutch::Image::pull(name("library/marker:v1"), store(), options_);
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_TRUE(image->unpacked_in(store()));
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "pulled\n");
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().done, seen.back().total);
  const int first = blob_gets();
  EXPECT_EQ(first, 3);  // the config and two layers

  // Pulled again: the manifest is asked for, no layer (nor the config) is fetched.
  seen.clear();
  auto again = hutch::Image::pull(name("library/marker:v1"), store(), options_);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->id(), image->id());
  EXPECT_EQ(blob_gets(), first);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0].cached && seen[1].cached);
  // And opened from the store by the reference it was pulled as, with no registry at all.
  registry_.stop();
  auto stored = hutch::Image::stored(name("library/marker:v1"), store());
  ASSERT_TRUE(stored) << stored.error().message();
  EXPECT_EQ(stored->id(), image->id());
}

TEST_F(RegistryTest, ATagTheRegistryLacksIsNamed) {
  start_registry();
  push(image("layout", "x\n", "v1"), "v1", "library/marker:v1");
  auto image = hutch::Image::pull(name("library/marker:nope"), store(), options_);
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().errno_value(), ENOENT);
  EXPECT_NE(image.error().message().find("marker:nope"), std::string::npos)
      << image.error().message();
  EXPECT_NE(image.error().message().find("MANIFEST_UNKNOWN"), std::string::npos)
      << image.error().message();
  expect_store_empty();
}

TEST_F(RegistryTest, BasicAuthTakesTheCredentialsFromDockersConfigJson) {
  start_basic_auth_registry();
  push(image("layout", "basic\n", "v1"), "v1", "team/app:v1", "alice:s3cret");

  // Without credentials: refused, saying none were found; nothing kept.
  auto refused = hutch::Image::pull(name("team/app:v1"), store(), options_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().errno_value(), EACCES) << refused.error().message();
  EXPECT_NE(refused.error().message().find("none were found"), std::string::npos)
      << refused.error().message();
  expect_store_empty();

  // Wrong ones: refused, naming where they came from (never what they are).
  write_docker_config("alice", "wrong");
  auto wrong = hutch::Image::pull(name("team/app:v1"), store(), options_);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().errno_value(), EACCES) << wrong.error().message();
  EXPECT_NE(wrong.error().message().find("config.json"), std::string::npos)
      << wrong.error().message();
  EXPECT_EQ(wrong.error().message().find("wrong"), std::string::npos) << wrong.error().message();
  expect_store_empty();

  write_docker_config("alice", "s3cret");
  auto image = hutch::Image::pull(name("team/app:v1"), store(), options_);
  ASSERT_TRUE(image) << image.error().message();
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "basic\n");
}

TEST_F(RegistryTest, BearerTokensComeFromTheRealmTheRegistryNames) {
  const fs::path key = base_ / "token.key", cert = base_ / "token.crt";
  ASSERT_EQ(shell(fmt::format("openssl req -x509 -newkey rsa:2048 -nodes -keyout {} -out {} "
                              "-days 2 -subj /CN=hutch-test-token >/dev/null 2>&1",
                              key.string(), cert.string())),
            0);
  token_server_ = Daemon({"python3", scripts + "/token_server.py", key.string(), cert.string(),
                          (base_ / "token.port").string(), (base_ / "token.log").string(),
                          "hutch-test-issuer", "bob:hunter2"},
                         base_ / "token.out");
  const int token_port = wait_port_file(base_ / "token.port");
  ASSERT_GT(token_port, 0) << read_file((base_ / "token.out").string());
  start_registry(fmt::format(
      "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: hutch-test-registry\n"
      "    issuer: hutch-test-issuer\n    rootcertbundle: {}",
      token_port, cert.string()));
  push(image("layout", "bearer\n", "v2"), "v2", "library/tokened:v2", "bob:hunter2");

  // Without credentials the token server refuses: the error says so, nothing is kept.
  auto refused = hutch::Image::pull(name("library/tokened:v2"), store(), options_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().errno_value(), EACCES) << refused.error().message();
  EXPECT_NE(refused.error().message().find("token server"), std::string::npos)
      << refused.error().message();
  expect_store_empty();

  write_docker_config("bob", "hunter2");
  auto image = hutch::Image::pull(name("library/tokened:v2"), store(), options_);
  ASSERT_TRUE(image) << image.error().message();
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "bearer\n");
  // The token was asked for this repository's pull scope, with the user's credentials.
  bool asked = false;
  for (const auto& line : lines(read_file((base_ / "token.log").string()))) {
    const json j = json::parse(line);
    if (j["basic"] && j["query"].contains("scope") &&
        j["query"]["scope"][0] == "repository:library/tokened:pull" &&
        j["query"]["service"][0] == "hutch-test-registry") {
      asked = true;
    }
  }
  EXPECT_TRUE(asked) << read_file((base_ / "token.log").string());
}

TEST_F(RegistryTest, AMultiPlatformIndexGivesTheHostsEntryAndNamesTheOthers) {
  start_registry();
  Layout layout(base_ / "layout");
  two_platform_image(layout, "multi");
  push(layout, "multi", "library/multi:1", {}, true);

  auto image = hutch::Image::pull(name("library/multi:1"), store(), options_);
  ASSERT_TRUE(image) << image.error().message();
  auto c = image->container(store());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(run_ok(*c), "host\n");

  options_.platform = {"linux", "riscv64", {}};
  auto missing = hutch::Image::pull(name("library/multi:1"), store(), options_);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("linux/s390x"), std::string::npos)
      << missing.error().message();
  EXPECT_NE(missing.error().message().find("riscv64"), std::string::npos)
      << missing.error().message();
}

TEST_F(RegistryTest, ATamperedBlobLeavesNothingInTheStore) {
  start_registry();
  // Both layers gzip (a registry keeps those as they are). The second is changed in the
  // registry's storage: a valid gzip tar of the same size whose digest is not the manifest's.
  Layout layout(base_ / "layout");
  auto manifest = layout.image({busybox_layer(), make_tar({{"marker", 'f', "honest\n"}})},
                               {true, true}, {{"Cmd", {"/bin/cat", "/marker"}}});
  layout.index({{"v1", manifest}});
  push(layout, "v1", "library/tampered:v1");
  // The layer as the layout holds it (gzip stamps the time: never make it again to compare).
  const json written = json::parse(read_file(
      (layout.dir() / "blobs/sha256" / hutch::detail::hex_of(manifest["digest"].get<std::string>()))
          .string()));
  const std::string hex = hutch::detail::hex_of(written["layers"][1]["digest"].get<std::string>());
  const std::size_t size = written["layers"][1]["size"].get<std::size_t>();
  std::string evil;
  for (char c = 'a'; c <= 'z' && evil.size() != size; ++c) {
    evil = gzip(make_tar({{"marker", 'f', std::string("forge") + c + "\n"}}));
  }
  ASSERT_EQ(evil.size(), size);
  const fs::path data =
      base_ / "data/docker/registry/v2/blobs/sha256" / hex.substr(0, 2) / hex / "data";
  ASSERT_TRUE(fs::exists(data));
  std::ofstream(data, std::ios::binary | std::ios::trunc) << evil;

  auto image = hutch::Image::pull(name("library/tampered:v1"), store(), options_);
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().errno_value(), EBADMSG) << image.error().message();
  EXPECT_NE(image.error().message().find(hex), std::string::npos) << image.error().message();
  // The busybox layer may have been kept (it is sound); the forged one, nor the image, not.
  const std::string diff_id = hutch::detail::Sha256::of(make_tar({{"marker", 'f', "honest\n"}}));
  EXPECT_FALSE(fs::exists(base_ / "store/layers/sha256" / hutch::detail::hex_of(diff_id)));
  if (fs::exists(base_ / "store/flat/sha256")) {
    EXPECT_TRUE(fs::is_empty(base_ / "store/flat/sha256"));
  }
  EXPECT_FALSE(hutch::Image::stored(name("library/tampered:v1"), store()));
  if (fs::exists(base_ / "store/tmp")) {
    EXPECT_TRUE(fs::is_empty(base_ / "store/tmp"));
  }
}

class HostileRegistryTest : public RegistryTest {
 protected:
  void start_hostile(const std::string& mode, const std::string& layout = {}) {
    std::vector<std::string> argv = {"python3", scripts + "/hostile_registry.py", mode,
                                     (base_ / "hostile.port").string(),
                                     (base_ / "hostile.log").string()};
    if (!layout.empty()) argv.push_back(layout);
    hostile_ = Daemon(argv, base_ / "hostile.out");
    port_ = wait_port_file(base_ / "hostile.port");
    ASSERT_GT(port_, 0) << read_file((base_ / "hostile.out").string());
  }
  hutch::result<hutch::Image> pull() {
    return hutch::Image::pull(name("library/evil:1"), store(), options_);
  }
  void TearDown() override {
    hostile_.stop();
    RegistryTest::TearDown();
  }
  Daemon hostile_;
};

TEST_F(HostileRegistryTest, ABrokenBlobTransferResumesWhereItStopped) {
  for (const std::string mode : {"resume", "resume-ignore"}) {
    SCOPED_TRACE(mode);
    fs::remove_all(base_ / "store");
    fs::remove_all(base_ / "hostile.port");
    fs::remove_all(base_ / "hostile.log");
    Layout layout = image("layout-" + mode, "resumed\n", "1");
    start_hostile(mode, layout.dir().string());
    LeakCheck leaks;
    auto image = pull();
    ASSERT_TRUE(image) << image.error().message();
    auto c = image->container(store());
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(run_ok(*c), "resumed\n");
    // The busybox layer (over 4 KiB) was cut off once and asked for again from where it
    // stopped; a server that ignores the Range sends it whole, and the bytes already had are
    // dropped.
    bool ranged = false;
    for (const auto& line : lines(read_file((base_ / "hostile.log").string()))) {
      const json j = json::parse(line);
      if (j["path"].get<std::string>().find("/blobs/") != std::string::npos &&
          j["range"].get<std::string>().starts_with("bytes=")) {
        ranged = j["range"] != "bytes=0-";
      }
    }
    EXPECT_TRUE(ranged) << read_file((base_ / "hostile.log").string());
    hostile_.stop();
  }
}

TEST_F(HostileRegistryTest, AManifestOverTheCapIsRefused) {
  start_hostile("big");
  LeakCheck leaks;
  auto image = pull();
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().errno_value(), EFBIG);
  EXPECT_NE(image.error().message().find("4 MiB"), std::string::npos) << image.error().message();
  expect_store_empty();
}

TEST_F(HostileRegistryTest, ARedirectLoopEnds) {
  start_hostile("loop");
  LeakCheck leaks;
  auto image = pull();
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().errno_value(), ELOOP) << image.error().message();
  expect_store_empty();
}

TEST_F(HostileRegistryTest, AStalledServerTimesOut) {
  start_hostile("stall");
  LeakCheck leaks;
  options_.transport.stall_timeout = std::chrono::milliseconds(1000);
  options_.transport.retries = 0;
  const auto start = std::chrono::steady_clock::now();
  auto image = pull();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().errno_value(), ETIMEDOUT) << image.error().message();
  EXPECT_LT(took, std::chrono::seconds(10));
  expect_store_empty();
}

TEST_F(HostileRegistryTest, ABusyRegistryIsRetriedAfterWhatItAsks) {
  start_hostile("busy");
  options_.transport.retries = 3;
  const auto start = std::chrono::steady_clock::now();
  auto image = pull();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(image);
  // Two 503s with Retry-After: 1, then the registry's real answer.
  EXPECT_EQ(image.error().errno_value(), ENOENT) << image.error().message();
  EXPECT_GE(took, std::chrono::milliseconds(1900));
}

TEST_F(HostileRegistryTest, ARedirectToAnotherHostGetsNoAuthorization) {
  start_hostile("redirect");
  write_docker_config("carol", "pw");
  auto image = pull();
  ASSERT_FALSE(image);  // the other host has nothing
  bool reached_other = false;
  for (const auto& line : lines(read_file((base_ / "hostile.log").string()))) {
    const json j = json::parse(line);
    if (j["port"] == "other") {
      reached_other = true;
      EXPECT_EQ(j["authorization"], "") << line;
    }
  }
  EXPECT_TRUE(reached_other) << read_file((base_ / "hostile.log").string());
  expect_store_empty();
}

#ifdef HUTCH_RUN
/// hutch-run's output (stdout and stderr, unless `args` sends one elsewhere) and exit
/// status, its stdin empty.
std::pair<std::string, int> hutch_run(const std::string& args, const std::string& env = {}) {
  const std::string command = fmt::format("{} {} </dev/null 2>&1 {}", env, HUTCH_RUN, args);
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, p)) > 0;) out.append(buffer, n);
  const int status = ::pclose(p);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : 128};
}

TEST_F(RegistryTest, HutchRunPullsWhatIsMissingAndRunsIt) {
  start_registry();
  push(image("layout", "from the registry\n", "v1"), "v1", "library/cli:v1");
  const std::string store_flag = "--store " + (base_ / "store").string();
  const std::string env = "DOCKER_CONFIG=" + base_.string() + " REGISTRY_AUTH_FILE=/nonexistent";

  // Not in the store: pulled (a plain line per layer, not a terminal), then run.
  auto [out, rc] =
      hutch_run(fmt::format("--image {} {} --rm", name("library/cli:v1"), store_flag), env);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("from the registry\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Pull complete"), std::string::npos) << out;
  EXPECT_NE(out.find("Digest: sha256:"), std::string::npos) << out;

  // In the store: --pull missing (the default) asks the registry nothing.
  const auto requests = [&] {
    int n = 0;
    for (const auto& line : lines(read_file((base_ / "registry.log").string()))) {
      n += line.find("\"GET /v2/") != std::string::npos;
    }
    return n;
  };
  const int before = requests();
  std::tie(out, rc) = hutch_run(
      fmt::format("--image {} {} --rm cat /marker", name("library/cli:v1"), store_flag), env);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "from the registry\n");
  EXPECT_EQ(requests(), before);

  // `hutch-run pull` prints the manifest digest; --pull always asks again and fetches no layer.
  std::tie(out, rc) =
      hutch_run(fmt::format("pull {} {} 2>/dev/null", store_flag, name("library/cli:v1")), env);
  EXPECT_EQ(rc, 0) << out;
  ASSERT_EQ(out.size(), 72u) << out;
  EXPECT_TRUE(hutch::detail::valid_digest(out.substr(0, 71))) << out;
  EXPECT_GT(requests(), before);
  const int blobs = blob_gets();
  std::tie(out, rc) = hutch_run(
      fmt::format("--pull always --image {} {} --rm true", name("library/cli:v1"), store_flag),
      env);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Already exists"), std::string::npos) << out;
  EXPECT_EQ(blob_gets(), blobs);

  // --pull never, for an image never pulled: 125, naming it.
  std::tie(out, rc) = hutch_run(
      fmt::format("--pull never --image {} {} --rm true", name("library/other:v1"), store_flag),
      env);
  EXPECT_EQ(rc, 125) << out;
  EXPECT_NE(out.find("library/other:v1"), std::string::npos) << out;
  // A tag the registry lacks: 125, naming the tag.
  std::tie(out, rc) =
      hutch_run(fmt::format("--image {} {} --rm true", name("library/cli:v9"), store_flag), env);
  EXPECT_EQ(rc, 125) << out;
  EXPECT_NE(out.find("cli:v9"), std::string::npos) << out;
  // --tls-verify takes true or false only.
  std::tie(out, rc) = hutch_run(
      fmt::format("--tls-verify=maybe --image {} --rm true", name("library/cli:v1")), env);
  EXPECT_EQ(rc, 125) << out;
  EXPECT_NE(out.find("--tls-verify maybe"), std::string::npos) << out;
}

TEST_F(RegistryTest, HutchRunSaysWhyARegistryRefusesIt) {
  start_basic_auth_registry();
  push(image("layout", "private\n", "v1"), "v1", "team/private:v1", "alice:s3cret");
  const std::string args = fmt::format("--image {} --store {} --rm", name("team/private:v1"),
                                       (base_ / "store").string());
  const std::string env = "DOCKER_CONFIG=" + base_.string() + " REGISTRY_AUTH_FILE=/nonexistent";
  auto [out, rc] = hutch_run(args, env);
  EXPECT_EQ(rc, 125) << out;
  EXPECT_NE(out.find("none were found"), std::string::npos) << out;
  write_docker_config("alice", "s3cret");
  std::tie(out, rc) = hutch_run(args, env);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("private\n"), std::string::npos) << out;
}
#endif

TEST(RegistryReferences, AMalformedReferenceIsRefusedBeforeAnyRequest) {
  auto image = hutch::Image::pull("library/UPPER:tag", hutch::ImageStore("/nonexistent/store"));
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().step, hutch::registry_step::reference) << image.error().message();
  EXPECT_FALSE(fs::exists("/nonexistent/store"));
}

}  // namespace
