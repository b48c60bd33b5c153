// hutch — the init a container may run as PID 1 (tools/hutch-init): found, copied once per
// process into a sealed memfd, and exec'd from there, so a container can neither replace the
// host's binary through /proc/1/exe nor need one in its own root.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "../error.hpp"
#include "../fd.hpp"
#include "syscall.hpp"

#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif

namespace hutch::detail {

/// Where Container::init(true) finds hutch-init: $HUTCH_INIT, else where hutch's build or
/// install put it (HUTCH_INIT_PATH); empty if neither says.
inline std::string default_init_path() {
  if (const char* env = std::getenv("HUTCH_INIT"); env && *env) return env;
#ifdef HUTCH_INIT_PATH
  return HUTCH_INIT_PATH;
#else
  return {};
#endif
}

/// A sealed, close-on-exec memfd holding the init binary at `path` (made once per path).
inline result<int> init_memfd(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, Fd>* cache = new std::map<std::string, Fd>;  // never freed
  std::lock_guard lock(mutex);
  if (auto it = cache->find(path); it != cache->end()) return it->second.get();
  Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!file || ::fstat(file.get(), &st) != 0) {
    return last_error(Step::prepare_rootfs, path, "the init binary (hutch-init; set HUTCH_INIT)");
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(Step::prepare_rootfs, EINVAL, path, "the init binary is not a file");
  }
  Fd memfd(
      static_cast<int>(::syscall(SYS_memfd_create, "hutch-init", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!memfd) return last_error(Step::prepare_rootfs, path, "memfd_create for the init");
  char buffer[65536];
  for (;;) {
    const ssize_t n = sys::retry([&] { return ::read(file.get(), buffer, sizeof buffer); });
    if (n < 0) return last_error(Step::prepare_rootfs, path, "reading the init binary");
    if (n == 0) break;
    if (sys::retry([&] { return ::write(memfd.get(), buffer, static_cast<std::size_t>(n)); }) !=
        n) {
      return last_error(Step::prepare_rootfs, path, "copying the init binary");
    }
  }
  if (::fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) !=
      0) {
    return last_error(Step::prepare_rootfs, path, "sealing the init's memfd");
  }
  const int fd = memfd.get();
  cache->emplace(path, std::move(memfd));
  return fd;
}

}  // namespace hutch::detail
