// Runs a fuzz target over files (a corpus, the regression inputs) without libFuzzer: the
// suite's own compiler and sanitizers replay every input ever checked in, on every build.
//   replay DIR|FILE...
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
int replay(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  int count = 0;
  for (int i = 1; i < argc; ++i) {
    struct stat st {};
    if (::stat(argv[i], &st) != 0) continue;
    if (!S_ISDIR(st.st_mode)) {
      count += replay(argv[i]);
      continue;
    }
    DIR* d = ::opendir(argv[i]);
    std::vector<std::string> files;
    while (dirent* e = d ? ::readdir(d) : nullptr) {
      if (e->d_name[0] != '.') files.push_back(std::string(argv[i]) + "/" + e->d_name);
    }
    if (d) ::closedir(d);
    for (const auto& f : files) count += replay(f);
  }
  std::printf("%d inputs replayed\n", count);
  return 0;
}
