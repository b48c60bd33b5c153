// hutch — Fd: a move-only owner of one file descriptor.
#pragma once

#include <unistd.h>

#include <utility>

namespace hutch {

/// Owns one file descriptor and closes it when destroyed. Move-only; a moved-from or empty
/// Fd holds -1. `release()` gives the descriptor up without closing it.
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the held descriptor (close(2) is never retried on EINTR: on Linux the descriptor
  /// is gone either way) and takes `fd` instead.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace hutch
