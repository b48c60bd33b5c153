// The escape program: runs inside a container and tries one way out, named by argv[1].
// It prints "blocked: <why>" and exits 0 when the attempt fails, or "ESCAPED: <what>" and
// exits 1 when it works. Every attempt is harmless if it works: files are opened for writing
// but never written, a ptrace is a SEIZE followed by a detach, the hostname is set to what it
// already is, reboot gets a wrong magic number, and settimeofday gets no time.
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <dirent.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int escaped(const std::string& what) {
  std::printf("ESCAPED: %s\n", what.c_str());
  return 1;
}

int blocked(const std::string& why) {
  std::printf("blocked: %s\n", why.c_str());
  return 0;
}

std::string err(int e) {
  return std::string(strerrorname_np(e) ? strerrorname_np(e) : "?");
}

/// Opens `path` for writing and closes it at once, never writing.
bool opens_for_writing(const std::string& path, int* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    *error = errno;
    return false;
  }
  ::close(fd);
  return true;
}

bool readable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char c;
  bool ok = ::read(fd, &c, 1) >= 0;
  ::close(fd);
  return ok;
}

std::vector<int> process_ids() {
  std::vector<int> pids;
  DIR* d = ::opendir("/proc");
  if (!d) return pids;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] >= '1' && e->d_name[0] <= '9') pids.push_back(std::atoi(e->d_name));
  }
  ::closedir(d);
  return pids;
}

/// A call that must fail: `result` < 0 with errno set.
int expect_failure(const char* what, long result) {
  if (result >= 0) return escaped(std::string(what) + " succeeded");
  return blocked(std::string(what) + ": " + err(errno));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string attempt = argv[1];
  const char* arg = argc > 2 ? argv[2] : "";

  // A host process, by pid (the test's own): signal 0 and /proc must not reach it.
  if (attempt == "signal-host") {
    int pid = std::atoi(arg);
    if (::kill(pid, 0) == 0) return escaped("kill(host pid, 0) succeeded");
    for (int p : process_ids()) {
      if (p > 1) return escaped("sees pid " + std::to_string(p) + " besides its own 1");
    }
    return blocked("kill: " + err(errno) + ", /proc shows pid 1 alone");
  }
  if (attempt == "ptrace-host") {
    int pid = std::atoi(arg);
    if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) == 0) {
      ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
      return escaped("PTRACE_SEIZE of a host process succeeded");
    }
    return blocked("ptrace: " + err(errno));
  }
  // A host-only file (argv[2], an absolute host path) by every path trick; argv[3] is a bind
  // mount inside the container to climb out of with "..".
  if (attempt == "read-host-file") {
    std::string file = arg, bind = argc > 3 ? argv[3] : "/";
    std::vector<std::string> tries = {file,
                                      "/proc/1/root" + file,
                                      "/proc/self/root" + file,
                                      "/proc/self/cwd/../../../../../.." + file,
                                      "/proc/1/cwd/../../../../.." + file,
                                      bind + "/../../../../../../.." + file};
    for (int fd = 0; fd < 64; ++fd) tries.push_back("/proc/self/fd/" + std::to_string(fd) + file);
    for (const auto& path : tries) {
      if (readable(path)) return escaped("read " + path);
    }
    // cwd through /proc/self/fd/N of any open directory, then climb.
    for (int fd = 0; fd < 64; ++fd) {
      std::string dir = "/proc/self/fd/" + std::to_string(fd);
      if (::chdir(dir.c_str()) == 0 && readable("../../../../../.." + file)) {
        return escaped("read via cwd " + dir);
      }
    }
    return blocked("no path reaches " + file);
  }
  // Only stdio may be open: no host directory (or anything else) may survive exec.
  if (attempt == "leaked-fds") {
    std::string open;
    for (int fd = 3; fd < 1024; ++fd) {
      if (::fcntl(fd, F_GETFD) >= 0) open += " " + std::to_string(fd);
    }
    if (!open.empty()) return escaped("descriptors open beyond stdio:" + open);
    return blocked("fds 0-2 only");
  }
  if (attempt == "mount") {
    ::mkdir("/tmp/m", 0700);
    return expect_failure("mount tmpfs", ::mount("none", "/tmp/m", "tmpfs", 0, nullptr));
  }
  if (attempt == "mount-cgroup-v1") {
    // CVE-2022-0492: a fresh v1 hierarchy with a writable release_agent.
    ::mkdir("/tmp/cg", 0700);
    return expect_failure("mount cgroup", ::mount("cgroup", "/tmp/cg", "cgroup", 0, "rdma"));
  }
  // Remount a read-only mount read-write; argv[2] is the mount point, argv[3] a file in it.
  if (attempt == "remount-rw") {
    std::string target = arg, probe = argc > 3 ? argv[3] : "";
    long r = ::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND, nullptr);
    int remount_errno = errno;
    int e = 0;
    if (!probe.empty() && opens_for_writing(probe, &e)) return escaped("opened " + probe + " rw");
    struct statvfs st {};
    if (::statvfs(target.c_str(), &st) == 0 && !(st.f_flag & ST_RDONLY)) {
      return escaped(target + " is writable");
    }
    if (r == 0) return escaped("remount of " + target + " succeeded");
    return blocked("remount: " + err(remount_errno) + ", still read-only");
  }
  if (attempt == "mknod-disk") {
    // The host's first SCSI disk, 8:0.
    if (::mknod("/tmp/disk", S_IFBLK | 0600, makedev(8, 0)) != 0) {
      return blocked("mknod: " + err(errno));
    }
    int fd = ::open("/tmp/disk", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::close(fd);
      return escaped("made and opened a block device");
    }
    return escaped("made a block device node (open: " + err(errno) + ")");
  }
  if (attempt == "load-module") {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    long r = ::syscall(SYS_finit_module, fd, "", 0);
    int finit = errno;
    ::close(fd);
    if (r == 0) return escaped("finit_module succeeded");
    // The capability check comes first (EPERM); ENOSYS: a kernel without module support.
    r = ::syscall(SYS_init_module, nullptr, 0, "");
    if (r == 0 || (errno != EPERM && errno != ENOSYS)) {
      return escaped("init_module got past the permission check: " + err(errno));
    }
    return blocked("finit_module: " + err(finit) + ", init_module: " + err(errno));
  }
  if (attempt == "reboot") {
    // Wrong second magic number: the kernel checks the capability first, so EPERM means
    // refused and EINVAL means the call was allowed (and did nothing).
    long r = ::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, 0, LINUX_REBOOT_CMD_CAD_OFF, nullptr);
    if (r == 0 || errno != EPERM) return escaped("reboot got past the permission check");
    return blocked("reboot: EPERM");
  }
  if (attempt == "hostname") {
    utsname u{};
    ::uname(&u);
    return expect_failure("sethostname", ::sethostname(u.nodename, std::strlen(u.nodename)));
  }
  if (attempt == "clock") {
    // No time given: the capability check runs and nothing is set either way.
    return expect_failure("settimeofday", ::syscall(SYS_settimeofday, nullptr, nullptr));
  }
  if (attempt == "open-for-writing") {
    // Each argument a file that must not open for writing (sysrq-trigger, core_pattern, ...).
    for (int i = 2; i < argc; ++i) {
      int e = 0;
      if (opens_for_writing(argv[i], &e)) return escaped(std::string("opened ") + argv[i]);
    }
    return blocked("none opens for writing");
  }
  if (attempt == "release-agent") {
    std::vector<std::string> files = {"/sys/fs/cgroup/release_agent"};
    if (DIR* d = ::opendir("/sys/fs/cgroup")) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.')
          files.push_back("/sys/fs/cgroup/" + std::string(e->d_name) + "/release_agent");
      }
      ::closedir(d);
    }
    for (const auto& f : files) {
      int e = 0;
      if (opens_for_writing(f, &e)) return escaped("opened " + f);
    }
    return blocked("no release_agent opens for writing");
  }
  if (attempt == "new-userns") {
    if (::unshare(CLONE_NEWUSER) == 0) return escaped("unshare(CLONE_NEWUSER) succeeded");
    int unshare_errno = errno;
    long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (pid == 0) ::_exit(0);
    if (pid > 0) return escaped("clone(CLONE_NEWUSER) succeeded");
    return blocked("unshare: " + err(unshare_errno) + ", clone: " + err(errno));
  }
  if (attempt == "clone3") {
    clone_args args{};
    args.exit_signal = SIGCHLD;
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) ::_exit(0);
    return expect_failure("clone3", pid);
  }
  if (attempt == "thread") {
    // glibc starts threads with clone3 and falls back to clone on ENOSYS.
    pthread_t thread;
    int r = ::pthread_create(
        &thread, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
    if (r != 0) return escaped("(not an escape) pthread_create failed: " + err(r));
    ::pthread_join(thread, nullptr);
    std::printf("thread ok\n");
    return 0;
  }
  if (attempt == "keyctl") {
    return expect_failure("keyctl",
                          ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
  }
  if (attempt == "bpf") {
    bpf_attr attr{};
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = ::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return expect_failure("bpf", fd);
  }
  if (attempt == "open-by-handle") {
    // A made-up handle: the capability check (CAP_DAC_READ_SEARCH in the host) comes first,
    // so EPERM means refused and ESTALE/EINVAL means the call was allowed.
    alignas(file_handle) unsigned char storage[sizeof(file_handle) + 8] = {};
    auto* handle = reinterpret_cast<file_handle*>(storage);
    handle->handle_bytes = 8;
    handle->handle_type = 1;
    int root = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long fd = ::syscall(SYS_open_by_handle_at, root, handle, O_RDONLY);
    int e = errno;
    ::close(root);
    if (fd >= 0) ::close(static_cast<int>(fd));
    if (fd >= 0 || e != EPERM) return escaped("open_by_handle_at got past the permission check");
    return blocked("open_by_handle_at: EPERM");
  }
  if (attempt == "tiocsti") {
    char c = '#';
    return expect_failure("ioctl(0, TIOCSTI)", ::ioctl(0, TIOCSTI, &c));
  }
  if (attempt == "raise-rlimit") {
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    if (r.rlim_max == RLIM_INFINITY) return blocked("no hard limit to raise");
    r.rlim_max += 1;
    return expect_failure("setrlimit above the hard limit", ::setrlimit(RLIMIT_NOFILE, &r));
  }
  if (attempt == "raise-capabilities") {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ::syscall(SYS_capget, &header, data);
    data[0].effective |= 1u << CAP_SYS_ADMIN;
    data[0].permitted |= 1u << CAP_SYS_ADMIN;
    if (::syscall(SYS_capset, &header, data) == 0) return escaped("capset gained CAP_SYS_ADMIN");
    int capset_errno = errno;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0) == 0) {
      return escaped("ambient CAP_SYS_ADMIN raised");
    }
    return blocked("capset: " + err(capset_errno) + ", ambient raise: " + err(errno));
  }
  // CVE-2019-5736: no process it can see may be the host's program (argv[2] = "dev:ino" of
  // it), and no visible executable may open for writing.
  if (attempt == "host-exe") {
    for (int p : process_ids()) {
      std::string exe = "/proc/" + std::to_string(p) + "/exe";
      struct stat st {};
      if (::stat(exe.c_str(), &st) == 0) {
        std::string id = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
        if (id == arg) return escaped(exe + " is the host's program");
      }
      int e = 0;
      if (opens_for_writing(exe, &e)) return escaped("opened " + exe + " for writing");
    }
    return blocked("no visible executable is the host's or opens for writing");
  }
  std::fprintf(stderr, "escape: unknown attempt %s\n", attempt.c_str());
  return 2;
}
