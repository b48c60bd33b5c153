// Shared helpers for hutch's tests.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <hutch/hutch.hpp>
#include <hutch/seccomp.hpp>

namespace hutch_test {

/// The static probe program (tests/probe.cpp); HUTCH_PROBE in the environment overrides the
/// path built in (the rootless run uses a copy).
inline const std::string probe =
    std::getenv("HUTCH_PROBE") ? std::getenv("HUTCH_PROBE") : HUTCH_PROBE;

/// The test snapshots (tests/make_rootfs.sh): `rootfs_dir + "/busybox"` and `"/probe"`.
inline const std::string rootfs_dir =
    std::getenv("HUTCH_TEST_ROOTFS") ? std::getenv("HUTCH_TEST_ROOTFS") : HUTCH_TEST_ROOTFS;
/// The busybox snapshot: sh and the applets in /bin, /etc/marker reads "snapshot".
inline const std::string busybox = rootfs_dir + "/busybox";

/// A container running `command` in the busybox snapshot, under an overlay of its own.
inline hutch::Container busybox_container(std::vector<std::string> command) {
  return hutch::Container{}
      .command(std::move(command))
      .rootfs(hutch::RootFs::directory(busybox).overlay());
}

inline bool is_root() {
  return ::geteuid() == 0;
}

#define HUTCH_REQUIRE_ROOT() \
  if (!::hutch_test::is_root()) GTEST_SKIP() << "needs root (runs as root in CI)"
#define HUTCH_REQUIRE_ROOTLESS() \
  if (::hutch_test::is_root()) GTEST_SKIP() << "checks rootless mode; CI runs it as nobody"

/// A container running the probe in `mode`.
inline hutch::Container probe_container(std::vector<std::string> args) {
  args.insert(args.begin(), probe);
  return hutch::Container{}.command(std::move(args));
}

/// The default seccomp profile, compiled once.
inline const hutch::SeccompProgram& default_seccomp() {
  static const hutch::SeccompProgram program = hutch::Seccomp::defaults().compile().value();
  return program;
}

/// Runs and expects success; returns stdout.
inline std::string run_ok(const hutch::Container& c) {
  auto out = c.output();
  EXPECT_TRUE(out) << (out ? "" : out.error().message());
  if (!out) return {};
  EXPECT_TRUE(out->status.success())
      << fmt::format("{}", out->status) << " stderr: " << out->std_err;
  return out->std_out;
}

/// "key value" lines into a map.
inline std::map<std::string, std::string> parse(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    if (space == std::string::npos) {
      out[line] = "";
    } else {
      out[line.substr(0, space)] = line.substr(space + 1);
    }
  }
  return out;
}

/// One field of /proc/PID/status text, e.g. status_field(text, "CapEff"); "?" if absent.
inline std::string status_field(const std::string& status, const std::string& key) {
  auto at = status.find(key + ":\t");
  if (at == std::string::npos) return "?";
  at += key.size() + 2;
  return status.substr(at, status.find('\n', at) - at);
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The namespace inode of this (the test) process, e.g. host_ns("net").
inline std::string host_ns(const std::string& name) {
  struct stat st {};
  if (::stat(("/proc/self/ns/" + name).c_str(), &st) != 0) return {};
  return std::to_string(st.st_ino);
}

/// Open descriptors of this process.
inline std::set<std::string> open_fds() {
  std::set<std::string> fds;
  DIR* d = ::opendir("/proc/self/fd");
  int own = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.' || std::stoi(e->d_name) == own) continue;
    fds.insert(e->d_name);
  }
  ::closedir(d);
  return fds;
}

/// True if this process has a child that exited but was not reaped.
inline bool has_zombie_child() {
  siginfo_t info{};
  if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return info.si_pid != 0;
}

/// Checks that a test left no descriptor and no zombie behind.
class LeakCheck {
 public:
  LeakCheck() : fds_((hutch::settle(), open_fds())) {}
  ~LeakCheck() {
    hutch::settle();  // the janitor's hold on reaped containers' namespaces
    EXPECT_EQ(open_fds(), fds_) << "a descriptor leaked";
    EXPECT_FALSE(has_zombie_child()) << "a child was left unreaped";
  }

 private:
  std::set<std::string> fds_;
};

}  // namespace hutch_test
