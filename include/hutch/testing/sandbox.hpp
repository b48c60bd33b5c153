// hutch::testing — running a test process in a container of its own: the options (limits,
// timeout, network, what of the host it sees), a read-only view of the host's filesystem with
// a private /tmp, and the container that runs a command that way with the caller's
// environment and working directory. hutch::gtest (gtest.hpp) runs GoogleTest tests with it,
// and hutch-test (tools/hutch-test) any test command that CTest starts. Core only: no
// GoogleTest here.
#pragma once

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../hutch.hpp"

extern char** environ;

namespace hutch::testing {

/// How an isolated test runs. The defaults isolate without needing privilege: no limits, no
/// network but loopback, the host's filesystem read-only, a private 64 MiB /tmp, no timeout.
class Options {
 public:
  /// memory.max: the kernel's OOM killer ends the test beyond it (reported as such).
  Options& memory(std::uint64_t bytes) {
    memory_ = bytes;
    return *this;
  }
  /// pids.max: forks fail with EAGAIN beyond it; a failing test says the limit was hit.
  Options& pids(std::uint64_t count) {
    pids_ = count;
    return *this;
  }
  /// cpu.max as a number of CPUs, e.g. 0.5.
  Options& cpus(double count) {
    cpus_ = count;
    return *this;
  }
  /// The test is killed after this long and fails with "timed out".
  Options& timeout(std::chrono::milliseconds limit) {
    timeout_ = limit;
    return *this;
  }
  /// The host's network instead of a namespace with loopback only.
  Options& host_network(bool yes = true) {
    host_network_ = yes;
    return *this;
  }
  /// A private tmpfs at /tmp of `bytes` (0: the root's own /tmp).
  Options& private_tmp(std::uint64_t bytes) {
    tmp_bytes_ = bytes;
    return *this;
  }
  /// The host's filesystem writable (it is read-only by default).
  Options& host_writable(bool yes = true) {
    host_writable_ = yes;
    return *this;
  }
  /// A root filesystem of the caller's instead of the host's; the test binary must be in it
  /// at the same path (e.g. bound in with bind()).
  Options& root(std::string dir) {
    root_ = std::move(dir);
    return *this;
  }
  /// The capabilities inside (Docker's default set otherwise). Within the test's own user
  /// namespace, Capabilities::all() lets it change its hostname, mount and configure its
  /// network, none of which reaches the host.
  Options& capabilities(Capabilities set) {
    capabilities_ = set;
    return *this;
  }
  /// A host path bound at `inside` (read-write unless `access` says otherwise).
  Options& bind(std::string host, std::string inside, Access access = read_write) {
    binds_.push_back({std::move(host), std::move(inside), access});
    return *this;
  }

  /// A container that runs `command` with these options. Without root(), `host_view` is
  /// an empty directory that becomes the root, with each of the host's top-level directories
  /// bound in and its top-level symlinks copied (HostView makes it).
  Container container(std::vector<std::string> command, const std::string& host_view) const {
    RootFs fs = root_.empty() ? RootFs::directory(host_view) : RootFs::directory(root_);
    if (root_.empty()) {
      for (const auto& name : top_level_directories()) {
        if (name == "proc" || name == "sys" || name == "dev" || (name == "tmp" && tmp_bytes_)) {
          continue;
        }
        fs.bind("/" + name, "/" + name, host_writable_ ? read_write : read_only);
      }
    }
    if (tmp_bytes_) fs.tmpfs("/tmp", tmp_bytes_);
    for (const auto& b : binds_) fs.bind(b.host, b.inside, b.access);
    Namespaces ns = Namespaces::all();
    if (host_network_) ns = ns.without(Namespace::net);
    Container c;
    c.command(std::move(command)).rootfs(std::move(fs)).namespaces(ns).hostname("isolated-test");
    if (capabilities_) c.capabilities(*capabilities_);
    if (memory_ || pids_ || cpus_) {
      CGroup limits;
      if (memory_) limits.memory_max(*memory_);
      if (pids_) limits.pids_max(*pids_);
      if (cpus_) limits.cpu_max(*cpus_);
      c.cgroup(std::move(limits));
    }
    return c;
  }

  /// The host's top-level directories (not symlinks), by name.
  static std::vector<std::string> top_level_directories() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/", ec)) {
      if (!e.is_symlink(ec) && e.is_directory(ec)) out.push_back(e.path().filename().string());
    }
    return out;
  }

  std::optional<std::chrono::milliseconds> timeout() const { return timeout_; }
  bool own_root() const { return !root_.empty(); }
  Access host_access() const { return host_writable_ ? read_write : read_only; }
  std::optional<std::uint64_t> pids() const { return pids_; }
  bool has_private_tmp() const { return tmp_bytes_ != 0; }

 private:
  struct Bind {
    std::string host, inside;
    Access access;
  };
  std::optional<std::uint64_t> memory_, pids_;
  std::optional<double> cpus_;
  std::optional<std::chrono::milliseconds> timeout_;
  std::optional<Capabilities> capabilities_;
  bool host_network_ = false, host_writable_ = false;
  std::uint64_t tmp_bytes_ = std::uint64_t{64} << 20;
  std::string root_;
  std::vector<Bind> binds_;
};

/// The empty root for a view of the host: a private directory (in $TMPDIR when that names
/// an absolute directory, else /tmp) with the host's top-level symlinks copied and a mount
/// point for each directory. Removed with rmdir and unlink only, so nothing but what it made
/// can go.
class HostView {
 public:
  HostView() {
    std::string pattern = scratch_parent() + "/hutch-gtest-root.XXXXXX";
    if (!::mkdtemp(pattern.data())) {
      errno_ = errno;
      return;
    }
    path_ = pattern;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/", ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_symlink(ec)) {
        std::filesystem::copy_symlink(e.path(), path_ + "/" + name, ec);
      } else if (e.is_directory(ec)) {
        ::mkdir((path_ + "/" + name).c_str(), 0755);
      }
    }
  }
  ~HostView() {
    if (path_.empty()) return;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path_, ec)) {
      const std::string p = e.path().string();
      if (e.is_symlink(ec)) {
        ::unlink(p.c_str());
      } else {
        ::rmdir(p.c_str());
      }
    }
    ::rmdir(path_.c_str());
  }
  HostView(const HostView&) = delete;
  HostView& operator=(const HostView&) = delete;
  const std::string& path() const { return path_; }
  /// Why the directory could not be made (path() is empty then).
  int error() const { return errno_; }

  /// Where the views are made: $TMPDIR if it is an absolute path, else /tmp.
  static std::string scratch_parent() {
    const char* dir = std::getenv("TMPDIR");
    return dir && dir[0] == '/' ? std::string(dir) : std::string("/tmp");
  }

 private:
  std::string path_;
  int errno_ = 0;
};

/// The container that runs `command` (command[0] an absolute path) as `options` say, seeing
/// the host through `view`: the caller's environment but for the variables `drop` names, and
/// its working directory. A private /tmp would hide a test binary or a working directory
/// below /tmp (a build tree there, say): those are bound over it, as the rest of the host is.
/// With a private /tmp, TMPDIR inside is /tmp, so the test's temporary files go there.
inline result<Container> sandbox(
    const Options& options, std::vector<std::string> command, const HostView& view,
    const std::function<bool(std::string_view)>& drop = [](std::string_view) { return false; }) {
  if (command.empty() || command[0].empty() || command[0][0] != '/') {
    return invalid(command.empty() ? std::string() : command[0],
                   "the test command must be an absolute path");
  }
  if (!options.own_root() && view.path().empty()) {
    return make_error(Step::prepare_rootfs, view.error(), HostView::scratch_parent(),
                      "a directory for the test's root");
  }
  char cwd[4096] = {};
  const bool have_cwd = !options.own_root() && ::getcwd(cwd, sizeof cwd);
  Options with_binds = options;
  if (!options.own_root()) {
    const std::string binary_dir = std::filesystem::path(command[0]).parent_path().string();
    for (const std::string& dir : {binary_dir, std::string(have_cwd ? cwd : "")}) {
      if (dir.starts_with("/tmp/")) with_binds.bind(dir, dir, with_binds.host_access());
    }
  }
  Container c = with_binds.container(std::move(command), view.path());
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry = *e;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos || drop(entry.substr(0, eq))) continue;
    c.env(entry.substr(0, eq), entry.substr(eq + 1));
  }
  if (!options.own_root() && options.has_private_tmp()) c.env("TMPDIR", "/tmp");
  if (have_cwd) c.cwd(cwd);
  return c;
}

}  // namespace hutch::testing
