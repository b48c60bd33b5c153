// Fuzz target: a layer's bytes (any compression, any tar) unpacked into a scratch directory,
// with a directory beside it that no entry may reach. After every input the harness checks
// that nothing outside the layer directory changed: no file written, removed or marked, no
// device made, whatever symlinks, hard links, whiteouts or opaque markers the input held.
//
// The scratch directory is /tmp/hutch-fuzz-layer (fixed, so seed inputs can aim at
// /tmp/hutch-fuzz-layer/outside); the first byte picks overlay whiteouts or applying them.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include <hutch/image.hpp>

namespace {

const std::string scratch = "/tmp/hutch-fuzz-layer";
const std::string outside = scratch + "/outside";

/// Everything below `dir`: path, type, size, mode and overlayfs marks.
std::set<std::string> snapshot(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    char mark[4];
    const bool marked =
        ::lgetxattr(it->path().c_str(), "trusted.overlay.opaque", mark, sizeof mark) > 0 ||
        ::lgetxattr(it->path().c_str(), "user.overlay.opaque", mark, sizeof mark) > 0;
    out.insert(fmt::format("{} {:o} {} {}", it->path().string(), st.st_mode,
                           S_ISREG(st.st_mode) ? st.st_size : 0, marked));
  }
  struct stat st {};
  ::lstat(dir.c_str(), &st);
  out.insert(fmt::format("{} {:o}", dir, st.st_mode));
  return out;
}

void set_up() {
  (void)hutch::detail::ScratchDir::remove_tree(scratch);
  std::filesystem::create_directories(outside + "/dir/deeper");
  std::ofstream(outside + "/file") << "outside";
  std::ofstream(outside + "/dir/deeper/file") << "deep";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::set<std::string> expected = (set_up(), snapshot(outside));
  const bool apply = size > 0 && (data[0] & 1);
  const std::string blob = scratch + "/blob", layer = scratch + "/layer";
  {
    std::ofstream out(blob, std::ios::binary | std::ios::trunc);
    if (size > 1) out.write(reinterpret_cast<const char*>(data + 1), std::streamsize(size - 1));
  }
  (void)hutch::detail::ScratchDir::remove_tree(layer);
  ::mkdir(layer.c_str(), 0755);
  hutch::ImageLayer l;
  l.blob = blob;
  {
    hutch::detail::Sha256 hash;
    if (size > 1) hash.update(data + 1, size - 1);
    l.digest = hash.digest();
  }
  hutch::detail::UnpackBudget budget({.max_bytes = 16 << 20, .max_entries = 4096});
  if (auto tree = hutch::detail::Tree::open(layer)) {
    hutch::detail::LayerUnpacker unpacker(
        l, *tree, apply ? hutch::detail::Whiteouts::apply : hutch::detail::Whiteouts::overlay,
        budget, {}, {});
    (void)unpacker.run();
  }
  if (snapshot(outside) != expected) {
    std::fprintf(stderr, "the layer reached outside its directory\n");
    std::abort();
  }
  for (const auto& e : std::filesystem::directory_iterator(scratch)) {
    const std::string name = e.path().filename();
    if (name != "blob" && name != "layer" && name != "outside") {
      std::fprintf(stderr, "the layer made %s beside its directory\n", name.c_str());
      std::abort();
    }
  }
  return 0;
}
