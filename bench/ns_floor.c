/* The floor under any container command line on this kernel: a static program that does
 * nothing but start its payload in the seven namespaces hutch-run gives a container (user,
 * pid, mount, uts, ipc, net, cgroup) and wait for it. No id maps, no root filesystem, no
 * /proc, no cgroup, no seccomp: whatever a real runtime does on top only adds to this.
 * bench/peers.sh times it beside hutch-run and its peers.
 *
 *   ns_floor PROGRAM [ARGS...]     exits with PROGRAM's status (125: clone3 failed, 127: exec)
 */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
               CLONE_NEWNET | CLONE_NEWCGROUP;
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) {
    perror("ns_floor: clone3");
    return 125;
  }
  if (pid == 0) {
    execv(argv[1], argv + 1);
    _exit(127);
  }
  int status;
  if (waitpid((pid_t)pid, &status, 0) < 0) return 125;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
