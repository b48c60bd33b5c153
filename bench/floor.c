/* The same-work floor: a plain C program, no library, that makes the system calls hutch's
 * Container::spawn + wait makes at each isolation level (taken from `strace -f` of
 * hutch_spawn_bench; bench/floor.sh prints the trace next to this program's) and nothing else,
 * and times them. It is the honest limit of hutch's design on this kernel: what hutch takes
 * above it is the library's own overhead.
 *
 *   floor LEVEL ROOT PAYLOAD RUNS      prints "LEVEL median_us mean_us" over RUNS spawns
 *
 * LEVEL is one of hutch_spawn_bench's rows:
 *   none                  clone(CLONE_VM) + exec, with hutch's exec report and sync socket,
 *                         capability bounding set, no_new_privs
 *   all_but_net           + user, pid, mount, uts, ipc namespaces, id maps, /proc, a cgroup
 *                         namespace
 *   all_but_net+rootfs    + a bind of ROOT, /proc, /dev, /sys, masked /proc paths,
 *                         /sys/fs/cgroup, pivot_root
 *   all_but_net+overlay   + an overlay over ROOT with its upper layer in a tmpfs
 *   full                  + a cgroup in each hierarchy with pids and memory limits
 * PAYLOAD is the program to run (inside ROOT for the rootfs levels, on the host otherwise).
 * What hutch's janitor does off the caller's path (dropping its hold on the container's mount
 * namespace, which unmounts everything in it; removing cgroups and the scratch directory) is
 * done here after the timed part. Run as root on cgroup v1 (hybrid) or v2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { NONE, NS, ROOTFS, OVERLAY, FULL };
static int level;
static const char *root, *payload;
static char scratch[256], merged[300];
static int sync_child, sync_parent, report_w;

/* The cgroups: one per hierarchy hutch uses (v1: cpuacct, memory, freezer, pids; v2: one). */
static char cgroups[4][512];
static int cgroup_count;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static int open_in_root(int dirfd, const char* path, int flags) {
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_PATH),
                         .resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_IN_ROOT};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static int mount_at(int rootfd, const char* where, const char* src, const char* type,
                    unsigned long flags, const char* data) {
  int fd = open_in_root(rootfd, where, 0);
  if (fd < 0) {
    int dir = open_in_root(rootfd, ".", O_DIRECTORY);
    mkdirat(dir, where, 0755);
    close(dir);
    fd = open_in_root(rootfd, where, 0);
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int r = mount(src, path, type, flags, data);
  close(fd);
  return r;
}

static void readonly_at(int rootfd, const char* where) {
  int fd = open_in_root(rootfd, where, 0);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
  syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr);
  close(fd);
}

static void enter(int rootfd, const char* where) {
  int fd = open_in_root(rootfd, where, O_DIRECTORY);
  if (fchdir(fd) != 0) _exit(120);
  close(fd);
}

/* /dev as hutch makes it: a tmpfs, the six device nodes bound from the host, pts, shm,
 * mqueue and the usual links. */
static void make_dev(int rootfd) {
  mount_at(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  enter(rootfd, "dev");
  static const char* nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (unsigned i = 0; i < 6; ++i) {
    char host[32];
    snprintf(host, sizeof host, "/dev/%s", nodes[i]);
    mknodat(AT_FDCWD, nodes[i], S_IFREG | 0644, 0);
    mount(host, nodes[i], NULL, MS_BIND | MS_REC, NULL);
  }
  mkdirat(AT_FDCWD, "pts", 0755);
  mount("devpts", "pts", "devpts", MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620");
  mkdirat(AT_FDCWD, "shm", 0755);
  mount("shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  mkdirat(AT_FDCWD, "mqueue", 0755);
  mount("mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  symlinkat("pts/ptmx", AT_FDCWD, "ptmx");
  symlinkat("/proc/self/fd", AT_FDCWD, "fd");
  symlinkat("/proc/self/fd/0", AT_FDCWD, "stdin");
  symlinkat("/proc/self/fd/1", AT_FDCWD, "stdout");
  symlinkat("/proc/self/fd/2", AT_FDCWD, "stderr");
}

/* The masked and read-only /proc paths (OCI's defaults, as hutch applies them) and
 * /sys/firmware. Returns the empty read-only directory that masks directories. */
static int mask_proc(int rootfd) {
  enter(rootfd, "proc");
  struct stat st;
  int empty = -1;
  if (fstatat(AT_FDCWD, "acpi", &st, AT_SYMLINK_NOFOLLOW) == 0) {
    mount("tmpfs", "acpi", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0555");
    empty = openat(AT_FDCWD, "acpi", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_PATH | O_DIRECTORY);
  }
  static const char* files[] = {"asound",        "kcore",       "keys",       "latency_stats",
                                "timer_list",    "timer_stats", "sched_debug", "scsi"};
  for (unsigned i = 0; i < 8; ++i) {
    if (fstatat(AT_FDCWD, files[i], &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    mount("/dev/null", files[i], NULL, MS_BIND, NULL);
  }
  static const char* readonly[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
  for (unsigned i = 0; i < 5; ++i) {
    if (mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL) != 0) continue;
    syscall(SYS_mount_setattr, AT_FDCWD, readonly[i], AT_RECURSIVE, &attr, sizeof attr);
  }
  enter(rootfd, "sys");
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", empty);
  if (fstatat(AT_FDCWD, "firmware", &st, AT_SYMLINK_NOFOLLOW) == 0) {
    mount(path, "firmware", NULL, MS_BIND, NULL);
  }
  fstatat(AT_FDCWD, "devices/virtual/powercap", &st, AT_SYMLINK_NOFOLLOW);
  return empty;
}

/* /sys/fs/cgroup in the container's cgroup namespace: a tmpfs with each v1 hierarchy
 * read-only (or the v2 hierarchy), then the tmpfs itself made read-only. */
static void make_cgroupfs(int rootfd, int v2) {
  if (v2) {
    mount_at(rootfd, "sys/fs/cgroup", "cgroup2", "cgroup2",
             MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    return;
  }
  mount_at(rootfd, "sys/fs/cgroup", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           "mode=755,size=64k");
  enter(rootfd, "sys/fs/cgroup");
  static const char* hierarchies[] = {"cpu",     "cpuacct", "cpuset", "memory",
                                      "devices", "freezer", "blkio",  "pids"};
  for (unsigned i = 0; i < 8; ++i) {
    mkdirat(AT_FDCWD, hierarchies[i], 0755);
    mount("cgroup", hierarchies[i], "cgroup", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
          hierarchies[i]);
  }
  struct statfs sb;
  statfs(".", &sb); /* hutch keeps the tmpfs's own flags when it remounts it */
  mount(NULL, ".", NULL, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_REMOUNT | MS_BIND | MS_RELATIME,
        NULL);
}

static int cgroup_v2;

static int child(void* arg) {
  (void)arg;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  char byte;
  if (read(sync_child, &byte, 1) != 1) _exit(121); /* the id maps are written */
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC); /* hutch reads its caps here */
  char status[4096];
  (void)!read(fd, status, sizeof status);
  close(fd);
  prctl(PR_SET_DUMPABLE, 0);
  int rootfd = -1, empty = -1;
  if (level >= NS) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  if (level == NS) {
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    unshare(CLONE_NEWCGROUP);
  }
  if (level >= ROOTFS) {
    const char* top = root;
    if (level >= OVERLAY) {
      mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
      char upper[300], work[300], options[1024];
      snprintf(upper, sizeof upper, "%s/upper", scratch);
      snprintf(work, sizeof work, "%s/work", scratch);
      mkdirat(AT_FDCWD, upper, 0755);
      mkdirat(AT_FDCWD, work, 0755);
      mkdirat(AT_FDCWD, merged, 0755);
      snprintf(options, sizeof options, "lowerdir=%s,upperdir=%s,workdir=%s", root, upper, work);
      if (mount("overlay", merged, "overlay", 0, options) != 0) _exit(122);
      top = merged;
    } else {
      mount(root, root, NULL, MS_BIND | MS_REC, NULL);
    }
    rootfd = open(top, O_RDONLY | O_CLOEXEC | O_PATH | O_DIRECTORY);
    mount_at(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    make_dev(rootfd);
    mount_at(rootfd, "sys", "/sys", NULL, MS_BIND | MS_REC, NULL);
    readonly_at(rootfd, "sys");
    empty = mask_proc(rootfd);
    if (level >= FULL && read(sync_child, &byte, 1) != 1) _exit(121);
    close(sync_child);
    unshare(CLONE_NEWCGROUP);
    make_cgroupfs(rootfd, cgroup_v2);
    int top_fd = open_in_root(rootfd, ".", 0);
    if (fchdir(top_fd) != 0 || syscall(SYS_pivot_root, ".", ".") != 0) _exit(123);
    umount2(".", MNT_DETACH);
    if (chdir("/") != 0) _exit(123);
    close(top_fd);
    close(rootfd);
    close(empty);
  }
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  setsid();
  umask(022);
  /* All but docker's default set, which capset keeps below. */
  static const int dropped[] = {2,  9,  11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24,
                                25, 26, 28, 30, 32, 33, 34, 35, 36, 37, 38, 39, 40};
  for (unsigned i = 0; i < sizeof dropped / sizeof *dropped; ++i) {
    prctl(PR_CAPBSET_DROP, dropped[i]);
  }
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{0}};
  const uint32_t kept = 0xa80425fb; /* docker's default set */
  data[0].effective = data[0].permitted = data[0].inheritable = kept;
  syscall(SYS_capset, &header, data);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  char* argv[] = {(char*)payload, NULL};
  char* envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
  execve(payload, argv, envp);
  _exit(127);
}

static void write_file(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(path);
  close(fd);
}

/* This process's own cgroup in each hierarchy hutch uses, from /proc/self/cgroup. */
static void find_cgroups(void) {
  cgroup_v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
  FILE* f = fopen("/proc/self/cgroup", "re");
  char line[1024];
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char* controllers = strchr(line, ':') + 1;
    char* path = strchr(controllers, ':');
    *path++ = 0;
    const char* names[] = {"cpuacct", "memory", "freezer", "pids"};
    for (unsigned i = 0; i < 4; ++i) {
      const int v2_line = cgroup_v2 && controllers[0] == 0 && i == 0;
      if (!v2_line && (cgroup_v2 || !strstr(controllers, names[i]))) continue;
      if (!v2_line && strcmp(controllers, names[i]) != 0 &&
          !(i == 0 && strcmp(controllers, "cpu,cpuacct") == 0)) {
        continue;
      }
      snprintf(cgroups[cgroup_count++], sizeof cgroups[0], "/sys/fs/cgroup%s%s%s/floor-%d",
               v2_line ? "" : "/", v2_line ? "" : names[i], strcmp(path, "/") ? path : "",
               getpid());
    }
  }
  if (f) fclose(f);
}

static double spawn_once(void) {
  static char stack[1 << 17] __attribute__((aligned(16)));
  struct timespec t0, t1;
  if (level >= OVERLAY) mkdir(scratch, 0700);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int report[2], sync[2];
  if (pipe2(report, O_CLOEXEC) != 0) die("pipe2");
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0) die("socketpair");
  sync_child = sync[1];
  sync_parent = sync[0];
  report_w = report[1];
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  int flags = CLONE_VM | CLONE_PIDFD | SIGCHLD;
  if (level >= NS) flags |= CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID;
  int pidfd = -1;
  pid_t pid = clone(child, stack + sizeof stack, flags, NULL, &pidfd);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) die("clone");
  close(report[1]);
  close(sync[1]);
  char path[64];
  if (level >= NS) {
    snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
    write_file(path, "0 0 1\n");
    snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
    write_file(path, "0 0 1\n");
  }
  send(sync[0], "\1", 1, MSG_NOSIGNAL);
  if (level >= FULL) {
    char pid_text[16], file[sizeof cgroups + 32];
    snprintf(pid_text, sizeof pid_text, "%d", pid);
    for (int i = 0; i < cgroup_count; ++i) {
      if (mkdir(cgroups[i], 0755) != 0) die(cgroups[i]);
      if (cgroup_v2) {
        snprintf(file, sizeof file, "%s/memory.max", cgroups[i]);
        write_file(file, "67108864");
        snprintf(file, sizeof file, "%s/pids.max", cgroups[i]);
        write_file(file, "64");
      } else if (strstr(cgroups[i], "/memory")) {
        snprintf(file, sizeof file, "%s/memory.limit_in_bytes", cgroups[i]);
        write_file(file, "67108864");
      } else if (strstr(cgroups[i], "/pids")) {
        snprintf(file, sizeof file, "%s/pids.max", cgroups[i]);
        write_file(file, "64");
      }
      snprintf(file, sizeof file, "%s/cgroup.procs", cgroups[i]);
      write_file(file, pid_text);
    }
    send(sync[0], "\2", 1, MSG_NOSIGNAL);
  }
  char reported[12];
  if (read(report[0], reported, sizeof reported) != 0) die("exec report");
  close(report[0]);
  close(sync[0]);
  /* As hutch does, hold the container's mount namespace: its mounts are then torn down when
   * this is closed (the janitor's part), not in the container's exit before it can be reaped. */
  int mount_ns = -1;
  if (level >= NS) {
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
    mount_ns = open(path, O_RDONLY | O_CLOEXEC);
  }
  siginfo_t info;
  if (syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED, NULL) != 0) die("waitid");
  if (info.si_code != CLD_EXITED || info.si_status != 0) {
    fprintf(stderr, "floor: the payload failed (%d)\n", info.si_status);
    exit(1);
  }
  if (level >= FULL) { /* hutch reads whether the kernel's OOM killer acted */
    char file[sizeof cgroups + 32], text[256];
    int memory = 0;
    for (int i = 0; i < cgroup_count; ++i) {
      if (strstr(cgroups[i], "/memory/")) memory = i;
    }
    snprintf(file, sizeof file, "%s/memory%s", cgroups[memory],
             cgroup_v2 ? ".events" : ".oom_control");
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    while (read(fd, text, sizeof text) > 0) {
    }
    close(fd);
  }
  close(pidfd);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  /* The janitor's part, off the caller's path in hutch. */
  if (mount_ns >= 0) close(mount_ns);
  for (int i = 0; level >= FULL && i < cgroup_count; ++i) rmdir(cgroups[i]);
  if (level >= OVERLAY) rmdir(scratch);
  return (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
}

static int compare(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s none|all_but_net|all_but_net+rootfs|all_but_net+overlay|full "
                    "ROOT PAYLOAD RUNS\n", argv[0]);
    return 2;
  }
  static const char* names[] = {"none", "all_but_net", "all_but_net+rootfs",
                                "all_but_net+overlay", "full"};
  level = -1;
  for (int i = 0; i < 5; ++i) {
    if (strcmp(argv[1], names[i]) == 0) level = i;
  }
  if (level < 0) {
    fprintf(stderr, "floor: unknown level %s\n", argv[1]);
    return 2;
  }
  root = argv[2];
  payload = argv[3];
  const int runs = atoi(argv[4]);
  if (runs <= 0) return 2;
  snprintf(scratch, sizeof scratch, "/dev/shm/floor-%d", getpid());
  snprintf(merged, sizeof merged, "%s/root", scratch);
  find_cgroups();
  double* times = malloc(sizeof(double) * (size_t)runs);
  double sum = 0;
  spawn_once(); /* warm the caches as the benchmark's first iterations do */
  for (int i = 0; i < runs; ++i) sum += times[i] = spawn_once();
  qsort(times, (size_t)runs, sizeof *times, compare);
  printf("%s %.1f %.1f\n", names[level], times[runs / 2], sum / runs);
  free(times);
  return 0;
}
