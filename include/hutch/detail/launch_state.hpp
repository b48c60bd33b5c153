// hutch — everything one launch owns: the plan, the strings and arrays it points into, the
// pipes and the sync socket. It outlives the child's use of them (until exec or exit); for a
// created container it lives on in the Created handle until start().
#pragma once

#include <sys/types.h>

#include <deque>
#include <string>
#include <vector>

#include "../fd.hpp"
#include "plan.hpp"
#include "scratch.hpp"

namespace hutch::detail {

struct LaunchState {
  Plan plan;
  std::vector<std::string> strings_argv, strings_env, strings_exec;
  std::vector<const char*> argv, envp, exec_paths;
  std::vector<std::string> init_strings;
  std::vector<const char*> init_argv;
  std::string init_path;
  std::string hostname, domainname, cwd, timens_offsets, oom_score_adj;
  std::vector<std::string> sysctl_strings;
  std::vector<SysctlStep> sysctls;
  std::vector<Fd> join_fds;
  std::vector<std::string> join_paths;
  std::vector<JoinStep> joins;
  Fd pid_namespace;  // joined: the host's thread enters it around clone
  Fd start_fifo;
  std::vector<gid_t> groups;
  std::vector<RlimitStep> rlimits;
  std::deque<std::string> mount_strings;  // stable addresses for MountStep pointers
  std::vector<MountStep> mounts;
  std::vector<FdMove> fd_moves;
  Fd child_stdio[3];  // the container's ends
  Fd host_stdio[3];   // the host's ends of pipes
  Fd pty_master;      // the host's end of the container's terminal
  Fd report_read, report_write;
  Fd sync_host, sync_child;
  bool searched_path = false;
  std::string search_path;
  ScratchDir scratch;
};

}  // namespace hutch::detail
