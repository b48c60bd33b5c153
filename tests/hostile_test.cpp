// Hostile images and hostile neighbours: what an image, another local user or an absurd
// value tries, and that none of it reaches the host. Every target is a file in the test's own
// scratch directory, opened only to be read: an attack that worked would be seen, not felt.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <hutch/image.hpp>
#include <thread>

#include "image_support.hpp"
#include "support.hpp"

using namespace hutch_test;
namespace fs = std::filesystem;
using hutch::Container;
using hutch::RootFs;
using nlohmann::json;

namespace {

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            fmt::format("hutch-hostile-{}-{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    (void)hutch::detail::ScratchDir::remove_tree(base_.string());
    fs::create_directories(victim() / "inner");
    ::chmod(base_.c_str(), 0755);
    std::ofstream(victim() / "keep1") << "one";
    std::ofstream(victim() / "keep2") << "two";
    std::ofstream(victim() / "inner/keep3") << "three";
  }
  void TearDown() override { (void)hutch::detail::ScratchDir::remove_tree(base_.string()); }

  fs::path victim() const { return base_ / "victim"; }
  hutch::ImageStore store(hutch::UnpackLimits limits = {}) const {
    return hutch::ImageStore((base_ / "store").string(), limits);
  }

  /// The victim directory as it was: its three files, nothing added, no overlayfs marks.
  void expect_victim_untouched(const std::string& what) {
    EXPECT_EQ(read_file((victim() / "keep1").string()), "one") << what;
    EXPECT_EQ(read_file((victim() / "keep2").string()), "two") << what;
    EXPECT_EQ(read_file((victim() / "inner/keep3").string()), "three") << what;
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(victim())) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"inner", "keep1", "keep2"})) << what;
    char value[4];
    for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
      EXPECT_LT(::getxattr(victim().c_str(), name, value, sizeof value), 0) << what << name;
    }
  }

  /// An image of the given layers (uncompressed), tagged "t".
  hutch::result<hutch::Image> image_of(const std::vector<std::string>& layers,
                                       json config = {{"Cmd", {"/bin/true"}}}) {
    Layout layout(base_ / fmt::format("layout-{}", counter_++));
    layout.index(
        {{"t", layout.image(layers, std::vector<bool>(layers.size(), false), std::move(config))}});
    return hutch::Image::open(layout.dir().string(), "t");
  }

  void expect_store_clean() {
    const fs::path tmp = base_ / "store/tmp";
    if (fs::exists(tmp)) {
      EXPECT_TRUE(fs::is_empty(tmp)) << "a partial entry was left";
    }
  }

  /// Runs `f` in a child process as `nobody` and returns its exit code.
  template <class F>
  int as_nobody(F f) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
          ::setresuid(65534, 65534, 65534) != 0) {
        ::_exit(99);
      }
      ::_exit(f());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  }

  fs::path base_;
  int counter_ = 0;
  LeakCheck leaks_;
};

// 1. A whiteout or opaque marker in a directory that is a symlink (to a host directory, by an
// absolute or a relative path) would delete host files, or mark them, or put a 0/0 device
// there. It is refused, and the host directory stays as it was.
TEST_F(Hostile, WhiteoutsAndOpaqueMarkersNeverReachThroughASymlink) {
  const std::string relative =
      "../../../../../../../../../.." + victim().string();  // from the store's unpack dir
  for (const std::string& target : {victim().string(), relative}) {
    for (const char* marker : {"evil/.wh..wh..opq", "evil/.wh.keep1", "evil/inner/.wh.keep3"}) {
      const std::string what = fmt::format("{} with evil -> {}", marker, target);
      auto image = image_of({make_tar({{"evil", 'l', target}, {marker, 'f', ""}})});
      ASSERT_TRUE(image) << image.error().message();
      auto unpacked = image->unpack(store());
      ASSERT_FALSE(unpacked) << what << " was unpacked";
      EXPECT_EQ(unpacked.error().step, hutch::image_step::unpack) << unpacked.error().message();
      EXPECT_NE(unpacked.error().message().find("symlink"), std::string::npos)
          << unpacked.error().message();
      expect_victim_untouched(what);
      expect_store_clean();
    }
  }
}

// The same for entries, directories and hard links: nothing is written through a symlink,
// nothing linked from outside the layer.
TEST_F(Hostile, EntriesAndHardLinksNeverReachThroughASymlink) {
  const std::vector<std::pair<const char*, std::vector<TarEntry>>> attacks = {
      {"a file through a link", {{"evil", 'l', victim().string()}, {"evil/planted", 'f', "x"}}},
      {"a directory through a link", {{"evil", 'l', victim().string()}, {"evil/d", 'd'}}},
      {"a file through a deeper link",
       {{"evil", 'l', victim().string()}, {"evil/inner/planted", 'f', "x"}}},
      {"a hard link through a link", {{"evil", 'l', victim().string()}, {"h", 'h', "evil/keep1"}}},
      {"a hard link up", {{"h", 'h', "../../../../../../../.." + (victim() / "keep1").string()}}},
      {"an absolute path", {{(victim() / "planted").string(), 'f', "x"}}},
  };
  for (const auto& [what, entries] : attacks) {
    auto image = image_of({make_tar(entries)});
    ASSERT_TRUE(image) << image.error().message();
    auto unpacked = image->unpack(store());
    EXPECT_FALSE(unpacked) << what << " was unpacked";
    expect_victim_untouched(what);
    expect_store_clean();
  }
}

// A lower layer's symlink under an upper layer's entry: the upper layer's directory replaces
// it, as overlayfs would show it; the symlink's target is never touched.
TEST_F(Hostile, ALowerLayersSymlinkIsShadowedNotFollowed) {
  auto image = image_of({make_tar({{"lib", 'l', victim().string()}}),
                         make_tar({{"lib/x", 'f', "new"}, {"lib/.wh.keep1", 'f', ""}})});
  ASSERT_TRUE(image) << image.error().message();
  auto unpacked = image->unpack(store());
  ASSERT_TRUE(unpacked) << unpacked.error().message();
  expect_victim_untouched("lib/x over lib -> victim");
  // What the container would see: lib is a directory holding x.
  const std::string top = unpacked->back();
  EXPECT_EQ(read_file(top + "/lib/x"), "new");
  EXPECT_FALSE(fs::is_symlink(top + "/lib"));
}

// overlayfs reads its own xattrs from a layer: an image that set trusted.overlay.* or
// user.overlay.* could fake whiteouts, opaque directories or redirects. They are dropped;
// other user.* xattrs are kept.
TEST_F(Hostile, AnImagesOverlayXattrsAreDropped) {
  auto image = image_of({make_tar({{"d", 'd'},
                                   TarEntry{"d/f", 'f', "x"}
                                       .xattr("trusted.overlay.opaque", "y")
                                       .xattr("user.overlay.redirect", "/etc")
                                       .xattr("user.kept", "yes")})});
  ASSERT_TRUE(image) << image.error().message();
  auto unpacked = image->unpack(store());
  ASSERT_TRUE(unpacked) << unpacked.error().message();
  const std::string file = unpacked->back() + "/d/f";
  char value[16];
  EXPECT_LT(::getxattr(file.c_str(), "trusted.overlay.opaque", value, sizeof value), 0);
  EXPECT_LT(::getxattr(file.c_str(), "user.overlay.redirect", value, sizeof value), 0);
  EXPECT_EQ(::getxattr(file.c_str(), "user.kept", value, sizeof value), 3);
}

// 2. The store keeps an image's setuid binaries and device nodes: no other user may reach
// them (Docker keeps /var/lib/docker 0700/0710 for this reason).
TEST_F(Hostile, TheStoreIsItsOwnersAlone) {
  std::vector<TarEntry> layer = {{"bin", 'd'}, {"bin/suid", 'f', "#!/bin/sh\n", 04755}};
  if (is_root()) layer.push_back(TarEntry{"disk", 'b', "", 0666}.device(8, 0));
  auto image = image_of({make_tar(layer)});
  ASSERT_TRUE(image) << image.error().message();
  auto unpacked = image->unpack(store());
  ASSERT_TRUE(unpacked) << unpacked.error().message();
  struct stat st {};
  ASSERT_EQ(::stat((base_ / "store").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << "the store is reachable by others: " << std::oct << st.st_mode;
  const std::string suid = unpacked->back() + "/bin/suid";
  if (is_root()) {
    ASSERT_EQ(::stat(suid.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 04000, 04000u) << "the image's setuid bit is kept, inside the store";
    const std::string disk = unpacked->back() + "/disk";
    EXPECT_EQ(as_nobody([&] {
                struct stat s {};
                return ::stat(suid.c_str(), &s) == 0 || ::stat(disk.c_str(), &s) == 0 ? 1 : 0;
              }),
              0)
        << "another user reached the store's setuid binary or device node";
  }
  // A store made too open is repaired the next time it is used.
  ::chmod((base_ / "store").c_str(), 0755);
  ASSERT_TRUE(image->unpack(store()));
  ASSERT_EQ(::stat((base_ / "store").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

// A store, or a store entry, of another user is refused, never used.
TEST_F(Hostile, AStorePlantedByAnotherUserIsRefused) {
  HUTCH_REQUIRE_ROOT();
  auto image = image_of({make_tar({{"f", 'f', "x"}})});
  ASSERT_TRUE(image);
  fs::create_directories(base_ / "store");
  ASSERT_EQ(::chown((base_ / "store").c_str(), 65534, 65534), 0);
  auto foreign = image->unpack(store());
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message().find("uid 65534"), std::string::npos)
      << foreign.error().message();
  ASSERT_EQ(::chown((base_ / "store").c_str(), 0, 0), 0);
  // An entry planted where the layer would go.
  const fs::path planted = base_ / "store/layers/sha256" / image->layers()[0].diff_id.substr(7);
  fs::create_directories(planted);
  std::ofstream(planted / "f") << "planted";
  ASSERT_EQ(::chown(planted.c_str(), 65534, 65534), 0);
  auto used = image->unpack(store());
  ASSERT_FALSE(used) << "a planted entry was used";
  EXPECT_NE(used.error().message().find("refused"), std::string::npos) << used.error().message();
}

// 3. A scratch parent another user could write in: they could swap the container's scratch
// directory during setup (and have their own /bin/cat run with the caller's volumes). It is
// refused with its owner named.
TEST_F(Hostile, AScratchParentOthersCanWriteInIsRefused) {
  const fs::path parent = base_ / "scratch";
  fs::create_directories(parent);
  ::chmod(parent.c_str(), 0777);
  auto open = Container{}
                  .command({"/bin/true"})
                  .rootfs(RootFs::directory(busybox).overlay(parent.string()))
                  .spawn();
  ASSERT_FALSE(open);
  EXPECT_NE(open.error().message().find("0777"), std::string::npos) << open.error().message();
  if (is_root()) {
    ::chmod(parent.c_str(), 0700);
    ASSERT_EQ(::chown(parent.c_str(), 65534, 65534), 0);
    auto foreign = Container{}
                       .command({"/bin/true"})
                       .rootfs(RootFs::directory(busybox).overlay(parent.string()))
                       .spawn();
    ASSERT_FALSE(foreign);
    EXPECT_NE(foreign.error().message().find("uid 65534"), std::string::npos)
        << foreign.error().message();
  }
  EXPECT_TRUE(fs::is_empty(parent)) << "a scratch directory was made in a refused parent";
}

// An XDG_RUNTIME_DIR others can write in (or of another user) is not used for scratch.
TEST_F(Hostile, AForeignRuntimeDirectoryIsNotUsedForScratch) {
  const fs::path runtime = base_ / "runtime";
  fs::create_directories(runtime);
  ::chmod(runtime.c_str(), 0777);
  const char* saved = ::getenv("XDG_RUNTIME_DIR");
  const std::string restore = saved ? saved : "";
  ::setenv("XDG_RUNTIME_DIR", runtime.c_str(), 1);
  auto child =
      Container{}.command({"/bin/true"}).rootfs(RootFs::directory(busybox).overlay()).spawn();
  if (saved) {
    ::setenv("XDG_RUNTIME_DIR", restore.c_str(), 1);
  } else {
    ::unsetenv("XDG_RUNTIME_DIR");
  }
  ASSERT_TRUE(child) << child.error().message();
  EXPECT_EQ(child->scratch_dir().rfind(runtime.string(), 0), std::string::npos)
      << child->scratch_dir();
  ASSERT_TRUE(child->wait());
}

// 5. A root's /etc/passwd that points out of the root (absolutely or by ".."), is a FIFO, a
// device or huge: resolved inside the root, read only if regular and small, never blocking.
TEST_F(Hostile, AUsersFilesAreReadInsideTheRootOnly) {
  const fs::path root = base_ / "root";
  fs::create_directories(root / "etc");
  std::ofstream(base_ / "fake-shadow") << "root:x:4242:4242::/:/bin/sh\n";
  auto resolve = [&](const std::string& spec) {
    auto run = std::async(std::launch::async, [&] { return hutch::resolve_user({root}, spec); });
    EXPECT_EQ(run.wait_for(std::chrono::seconds(10)), std::future_status::ready)
        << "resolving " << spec << " hung";
    return run.get();
  };
  auto set_passwd = [&](auto make) {
    fs::remove(root / "etc/passwd");
    make((root / "etc/passwd").string());
  };
  for (const std::string& link : {(base_ / "fake-shadow").string(),
                                  "../../../../../../../.." + (base_ / "fake-shadow").string()}) {
    set_passwd([&](const std::string& p) { fs::create_symlink(link, p); });
    auto ids = resolve("root");
    ASSERT_FALSE(ids) << "read a host file through " << link << ": uid " << ids->first;
    EXPECT_NE(ids.error().message().find("no such user"), std::string::npos);
  }
  // A link inside the root is followed inside it.
  fs::create_directories(root / "usr/share");
  std::ofstream(root / "usr/share/passwd") << "app:x:7:8::/:/bin/sh\n";
  set_passwd([&](const std::string& p) { fs::create_symlink("/usr/share/passwd", p); });
  auto inside = resolve("app");
  ASSERT_TRUE(inside) << inside.error().message();
  EXPECT_EQ(inside->first, 7u);
  set_passwd([&](const std::string& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0); });
  auto fifo = resolve("root");
  ASSERT_FALSE(fifo);
  EXPECT_NE(fifo.error().message().find("not a regular file"), std::string::npos)
      << fifo.error().message();
  if (is_root()) {
    set_passwd([&](const std::string& p) {
      ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0644, makedev(1, 5)), 0);
    });
    EXPECT_FALSE(resolve("root")) << "read a device as /etc/passwd";
  }
  set_passwd([&](const std::string& p) { std::ofstream(p) << std::string(3 << 20, 'x'); });
  auto huge = resolve("root");
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().errno_value(), EFBIG) << huge.error().message();
}

// An image's "User" of the wrong type is an error naming it (1000 as a number ran as root).
TEST_F(Hostile, ImageDocumentsAreReadStrictly) {
  auto numeric_user = image_of({make_tar({{"f", 'f', "x"}})}, {{"User", 1000}});
  ASSERT_FALSE(numeric_user);
  EXPECT_NE(numeric_user.error().message().find("\"User\" must be a string"), std::string::npos)
      << numeric_user.error().message();
  Layout layout(base_ / "odd");
  json bad = layout.blob("application/x-not-a-tarball", "junk");
  json config = layout.blob("application/vnd.oci.image.config.v1+json",
                            json{{"architecture", hutch::detail::host_architecture()},
                                 {"os", "linux"},
                                 {"rootfs", {{"type", "layers"}, {"diff_ids", {bad["digest"]}}}}}
                                .dump());
  layout.index({{"t", layout.blob("application/vnd.oci.image.manifest.v1+json",
                                  json{{"schemaVersion", 2},
                                       {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                       {"config", config},
                                       {"layers", {bad}}}
                                      .dump())}});
  auto odd = hutch::Image::open(layout.dir().string(), "t");
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().message().find("application/x-not-a-tarball"), std::string::npos)
      << odd.error().message();
}

// A layer of zeros that unpacks to more than the store allows stops there and leaves
// nothing; what a dead unpacker left in the store's tmp is reclaimed by the next.
TEST_F(Hostile, UnpackingIsBoundedAndWhatADeadUnpackerLeftIsReclaimed) {
  auto image = image_of({make_tar({{"zeros", 'f', std::string(2 << 20, '\0')}})});
  ASSERT_TRUE(image);
  auto bounded = image->unpack(store({.max_bytes = 1 << 20}));
  ASSERT_FALSE(bounded);
  EXPECT_EQ(bounded.error().errno_value(), EFBIG) << bounded.error().message();
  expect_store_clean();
  // A dead unpacker's directory (no one holds its lock), last changed two minutes ago.
  const fs::path dead = base_ / "store/tmp/unpack-dead00";
  fs::create_directories(dead / "deep");
  std::ofstream(dead / "deep/half-a-layer") << "x";
  const timespec old[2] = {{std::time(nullptr) - 120, 0}, {std::time(nullptr) - 120, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, dead.c_str(), old, 0), 0);
  ASSERT_TRUE(image->unpack(store()));
  EXPECT_FALSE(fs::exists(dead)) << "the dead unpacker's directory was not reclaimed";
  expect_store_clean();
}

}  // namespace
