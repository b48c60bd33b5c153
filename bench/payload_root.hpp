// A root filesystem for the benchmarks: a directory in /tmp holding only the given static
// programs, removed with the object.
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <utility>

class PayloadRoot {
 public:
  /// `files`: (host path, name in the root) pairs.
  explicit PayloadRoot(std::initializer_list<std::pair<const char*, const char*>> files) {
    char dir[] = "/tmp/hutch-bench-XXXXXX";
    if (::mkdtemp(dir) == nullptr || ::chmod(dir, 0755) != 0) std::abort();
    dir_ = dir;
    for (auto [host, name] : files) std::filesystem::copy_file(host, dir_ + "/" + name);
  }
  ~PayloadRoot() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PayloadRoot(const PayloadRoot&) = delete;
  PayloadRoot& operator=(const PayloadRoot&) = delete;
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};
