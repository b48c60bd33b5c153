// hutch-runtime: a config's hooks run at their points, the state on their stdin: in the
// runtime's namespaces (createRuntime, prestart, poststart, poststop) or, for createContainer
// and startContainer, in the container's, the program taken from the host by descriptor.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <hutch/hutch.hpp>
#include <hutch/oci.hpp>

#include "state.hpp"

namespace hutch_runtime {

inline hutch::Error hook_error(const hutch::oci::Hook& hook, int code, std::string note) {
  return hutch::make_error(hutch::oci_step::hook, code, hook.path, std::move(note));
}

/// The hooks at `point` ("createRuntime", ...) of a config's "hooks", read as load_config
/// read them.
inline std::vector<hutch::oci::Hook> hooks_of(const json& hooks, std::string_view point) {
  auto all = hutch::oci::detail::read_hooks(json{{"hooks", hooks}});
  if (!all) return {};
  for (auto [name, list] : {std::pair{"prestart", &all->prestart},
                            {"createRuntime", &all->create_runtime},
                            {"createContainer", &all->create_container},
                            {"startContainer", &all->start_container},
                            {"poststart", &all->poststart},
                            {"poststop", &all->poststop}}) {
    if (point == name) return std::move(*list);
  }
  return {};
}

/// The result of a hook's process: fails unless it exited 0 within its timeout (then killed).
inline hutch::result<void> await_hook(const hutch::oci::Hook& hook, hutch::Child& child) {
  const auto timeout = std::chrono::seconds(hook.timeout_seconds.value_or(60 * 60));
  HUTCH_TRY(const auto status, child.wait_for(timeout));
  if (!status) {
    (void)child.kill(SIGKILL);
    (void)child.wait();
    return hook_error(hook, ETIMEDOUT,
                      fmt::format("timed out after {} s", hook.timeout_seconds.value_or(3600)));
  }
  if (!status->success()) return hook_error(hook, ECHILD, fmt::format("{}", *status));
  return hutch::success();
}

/// Runs `hook` in the runtime's own namespaces.
inline hutch::result<void> run_host_hook(const hutch::oci::Hook& hook, const json& state) {
  std::vector<std::string> argv =
      hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return hutch::last_error(hutch::oci_step::hook, hook.path);
  hutch::Fd read_end(in[0]), write_end(in[1]);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, read_end.get(), 0);
  std::vector<char*> args, env;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> envs = hook.env;
  for (auto& e : envs) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, hook.path.c_str(), &actions, nullptr, args.data(), env.data());
  ::posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return hutch::make_error(hutch::oci_step::hook, rc, hook.path, "could not run it");
  read_end.reset();
  const std::string text = state.dump();
  // A hook that does not read its stdin must not stop the runtime: a broken pipe is fine.
  ::signal(SIGPIPE, SIG_IGN);
  (void)!::write(write_end.get(), text.data(), text.size());
  write_end.reset();
  hutch::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  const int timeout_ms = hook.timeout_seconds.value_or(3600) * 1000;
  pollfd p{pidfd.get(), POLLIN, 0};
  const int ready = pidfd ? ::poll(&p, 1, timeout_ms) : 1;
  if (ready == 0) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (ready == 0) {
    return hook_error(hook, ETIMEDOUT, fmt::format("timed out after {} s", timeout_ms / 1000));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return hutch::success();
  return hook_error(hook, ECHILD,
                    WIFEXITED(status) ? fmt::format("exited {}", WEXITSTATUS(status))
                                      : fmt::format("killed by signal {}", WTERMSIG(status)));
}

/// Runs `hook` inside the container whose init is `pid`: its namespaces and cgroup, as root
/// of the container with every capability (hooks are the engine's, not the image's), the
/// program the host's file at `hook.path`.
inline hutch::result<void> run_container_hook(const hutch::oci::Hook& hook, pid_t pid,
                                              const json& state) {
  hutch::Fd program(::open(hook.path.c_str(), O_PATH | O_CLOEXEC));
  if (!program) return hutch::last_error(hutch::oci_step::hook, hook.path);
  hutch::Process p;
  p.command(hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args)
      .env_clear()
      .executable_fd(program.get())
      .capability_sets(hutch::CapabilitySets::of(hutch::Capabilities::all()))
      .no_new_privs(false)
      .std_in(hutch::Stdio::piped());
  for (const auto& kv : hook.env) {
    const auto eq = kv.find('=');
    if (eq != std::string::npos) p.env(kv.substr(0, eq), kv.substr(eq + 1));
  }
  HUTCH_TRY(hutch::Child child, hutch::exec_in(pid, p));
  const std::string text = state.dump();
  ::signal(SIGPIPE, SIG_IGN);
  (void)!::write(child.stdin_pipe().get(), text.data(), text.size());
  child.stdin_pipe().reset();
  return await_hook(hook, child);
}

}  // namespace hutch_runtime
