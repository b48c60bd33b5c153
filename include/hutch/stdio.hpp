// hutch — Stdio: where the container's stdin, stdout and stderr come from and go to.
#pragma once

#include <string>
#include <utility>

#include "fd.hpp"

namespace hutch {

/// The source or destination of one standard stream of the container.
///
/// - `inherit()`: the host's own stream (the default).
/// - `null()`: /dev/null.
/// - `piped()`: a pipe; the host end is on the Child (`stdin_pipe()`, `stdout_pipe()`, ...).
/// - `file(path)`: a host file, opened by the host before clone: read for stdin; for stdout
///   and stderr created if missing (mode 0644) and truncated; `append(path)` appends.
/// - `fd(n)`: a descriptor the host owns; hutch duplicates it into the container and never
///   closes it. It must stay open until spawn() returns.
class Stdio {
 public:
  enum class Kind { inherit, null, piped, file, append, fd };

  static Stdio inherit() { return Stdio(Kind::inherit); }
  static Stdio null() { return Stdio(Kind::null); }
  static Stdio piped() { return Stdio(Kind::piped); }
  static Stdio file(std::string path) { return Stdio(Kind::file, std::move(path)); }
  static Stdio append(std::string path) { return Stdio(Kind::append, std::move(path)); }
  static Stdio fd(int fd) {
    Stdio s(Kind::fd);
    s.fd_ = fd;
    return s;
  }

  Kind kind() const noexcept { return kind_; }
  const std::string& path() const noexcept { return path_; }
  int borrowed_fd() const noexcept { return fd_; }

  friend bool operator==(const Stdio&, const Stdio&) = default;

 private:
  explicit Stdio(Kind kind, std::string path = {}) : kind_(kind), path_(std::move(path)) {}
  Kind kind_;
  std::string path_;
  int fd_ = -1;
};

}  // namespace hutch
