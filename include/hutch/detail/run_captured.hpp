// hutch — finding and running a helper program (a CNI plugin, a credential helper) with its
// input on stdin and its output captured, bounded in time and in output.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../error.hpp"
#include "../fd.hpp"

namespace hutch::detail {

/// The executable `name` (a plain file name) in the first directory of the colon-separated
/// `path` that has it as a regular executable file; relative directories are skipped.
inline std::optional<std::string> find_executable(const std::string& name, std::string_view path) {
  while (!path.empty()) {
    const auto colon = path.find(':');
    const std::string dir(path.substr(0, colon));
    path = colon == std::string_view::npos ? std::string_view() : path.substr(colon + 1);
    if (dir.empty() || dir[0] != '/') continue;
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

/// Runs `argv` (argv[0] a path) with `env`, `input` on its stdin; gives back its wait
/// status, its stdout and its stderr. Killed after `timeout`.
inline result<int> run_captured(const std::vector<std::string>& args,
                                const std::vector<std::string>& env, const std::string& input,
                                std::chrono::milliseconds timeout, Step step, std::string& out,
                                std::string& err, const std::vector<int>& pass_fds = {}) {
  const std::string& exe = args.at(0);
  // stdin is a socket: send(MSG_NOSIGNAL) to a program that does not read raises no SIGPIPE.
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pipe) != 0) {
    return last_error(step, exe, "a socket pair");
  }
  Fd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return last_error(step, exe, "a pipe");
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return last_error(step, exe, "a pipe");
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  for (std::size_t i = 0; i < pass_fds.size(); ++i) {  // at 3, 4, ...: dup2 clears CLOEXEC
    posix_spawn_file_actions_adddup2(&actions, pass_fds[i], static_cast<int>(3 + i));
  }
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return make_error(step, spawned, exe, "starting it");
  in_r.reset();
  out_w.reset();
  err_w.reset();
  // The input is small (a pipe holds 64 KiB); write it, then read both outputs.
  std::size_t written = 0;
  while (written < input.size()) {
    const ssize_t n =
        ::send(in_w.get(), input.data() + written, input.size() - written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // it does not read its stdin: its status tells
    written += static_cast<std::size_t>(n);
  }
  in_w.reset();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open_count = 2;
  while (open_count > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int r = ::poll(fds, 2, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[8192];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0 && sinks[i]->size() < (std::size_t{4} << 20)) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (n < 0 && errno != EINTR)) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return make_error(step, ETIMEDOUT, exe,
                      fmt::format("it did not finish within {} ms", timeout.count()));
  }
  return status;
}

}  // namespace hutch::detail
