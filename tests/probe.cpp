// The test probe: a small static program that runs inside containers and reports what it
// sees. One mode per argv[1]; output is plain "key value" lines for the tests to parse.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern char** environ;

namespace {

int print_file(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (!f) {
    std::printf("error %s %s\n", path, std::strerror(errno));
    return 1;
  }
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) std::fwrite(buffer, 1, n, stdout);
  std::fclose(f);
  return 0;
}

void list_dir(const char* path, bool numeric_only) {
  DIR* d = opendir(path);
  if (!d) {
    std::printf("error %s %s\n", path, std::strerror(errno));
    return;
  }
  int own = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (numeric_only && (e->d_name[0] < '0' || e->d_name[0] > '9')) continue;
    if (numeric_only && std::atoi(e->d_name) == own && std::strcmp(path, "/proc/self/fd") == 0) {
      continue;
    }
    std::printf("%s\n", e->d_name);
  }
  closedir(d);
}

// Reports an errno-style result of an attempt: "ok" or the errno name.
void report(const char* what, int result) {
  if (result >= 0) {
    std::printf("%s ok\n", what);
  } else {
    const char* name = strerrorname_np(errno);
    std::printf("%s %s\n", what, name ? name : "?");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: probe MODE [ARGS]\n");
    return 2;
  }
  std::string mode = argv[1];
  if (mode == "ns") {
    const char* names[] = {"user", "pid", "mnt", "uts", "ipc", "net", "cgroup", "time"};
    for (const char* n : names) {
      std::string path = std::string("/proc/self/ns/") + n;
      // pid and time: the namespace of this process, not of its children.
      struct stat st {};
      if (stat(path.c_str(), &st) == 0) std::printf("%s %lu\n", n, (unsigned long)st.st_ino);
    }
    return 0;
  }
  if (mode == "pid") {
    std::printf("pid %d\nppid %d\n", getpid(), getppid());
    return 0;
  }
  if (mode == "ids") {
    gid_t groups[64];
    int n = getgroups(64, groups);
    std::printf("uid %u\ngid %u\ngroups", getuid(), getgid());
    for (int i = 0; i < n; ++i) std::printf(" %u", groups[i]);
    std::printf("\neuid %u\negid %u\n", geteuid(), getegid());
    return 0;
  }
  if (mode == "hostname") {
    char name[256] = {};
    gethostname(name, sizeof name - 1);
    std::printf("%s\n", name);
    return 0;
  }
  if (mode == "fds") {
    list_dir("/proc/self/fd", true);
    return 0;
  }
  if (mode == "ls" && argc > 2) {
    list_dir(argv[2], false);
    return 0;
  }
  if (mode == "procs") {
    list_dir("/proc", true);
    return 0;
  }
  if (mode == "env") {
    for (char** e = environ; *e; ++e) std::printf("%s\n", *e);
    return 0;
  }
  if (mode == "cwd") {
    char buffer[4096];
    std::printf("%s\n", getcwd(buffer, sizeof buffer) ? buffer : "?");
    return 0;
  }
  if (mode == "cat" && argc > 2) return print_file(argv[2]);
  if (mode == "cat") {
    char buffer[65536];
    ssize_t n;
    while ((n = read(0, buffer, sizeof buffer)) > 0) {
      if (write(1, buffer, (size_t)n) != n) return 1;
    }
    return 0;
  }
  if (mode == "lo") {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq r{};
    std::strcpy(r.ifr_name, "lo");
    ioctl(s, SIOCGIFFLAGS, &r);
    std::printf("lo %s\n", (r.ifr_flags & IFF_UP) ? "up" : "down");
    list_dir("/sys/class/net", false);
    return 0;
  }
  if (mode == "bind" && argc > 2) {  // a TCP port on loopback: needs CAP_NET_BIND_SERVICE < 1024
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::printf("bind error %s\n", std::strerror(errno));
    } else {
      std::printf("bind ok\n");
    }
    return 0;
  }
  if (mode == "spew" && argc > 2) {
    // Interleaves N bytes on stdout and N on stderr, in 4 KiB writes.
    long total = std::atol(argv[2]);
    std::string block(4096, 'o'), eblock(4096, 'e');
    for (long done = 0; done < total; done += 4096) {
      size_t n = (size_t)std::min<long>(4096, total - done);
      if (write(1, block.data(), n) != (ssize_t)n) return 1;
      if (write(2, eblock.data(), n) != (ssize_t)n) return 1;
    }
    return 0;
  }
  if (mode == "sleep" && argc > 2) {
    std::printf("sleeping\n");
    std::fflush(stdout);
    sleep((unsigned)std::atoi(argv[2]));
    return 0;
  }
  if (mode == "exit" && argc > 2) return std::atoi(argv[2]);
  if (mode == "signal" && argc > 2) {
    std::fflush(stdout);
    signal(std::atoi(argv[2]), SIG_DFL);
    kill(getpid(), std::atoi(argv[2]));
    pause();
    return 0;
  }
  if (mode == "status") return print_file("/proc/self/status");
  if (mode == "monotonic") {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    std::printf("monotonic %ld\n", (long)t.tv_sec);
    return 0;
  }
  if (mode == "kill" && argc > 2) {
    report("kill", kill(std::atoi(argv[2]), 0));
    return 0;
  }
  if (mode == "write" && argc > 2) {
    // Opens for writing, never writes: a test of access that does no harm if it succeeds.
    int fd = open(argv[2], O_WRONLY | O_CLOEXEC);
    report("open_write", fd);
    if (fd >= 0) close(fd);
    return 0;
  }
  if (mode == "create" && argc > 3) {
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    report("create", fd);
    if (fd >= 0) {
      if (write(fd, argv[3], std::strlen(argv[3])) < 0) report("write", -1);
      close(fd);
    }
    return 0;
  }
  if (mode == "fork" && argc > 2) {
    // Forks up to N children that wait; reports how many it got and why it stopped.
    int wanted = std::atoi(argv[2]), got = 0;
    const char* why = "none";
    for (; got < wanted; ++got) {
      pid_t pid = fork();
      if (pid == 0) {
        pause();
        _exit(0);
      }
      if (pid < 0) {
        why = strerrorname_np(errno);
        break;
      }
    }
    std::printf("forked %d %s\n", got, why);
    return 0;
  }
  if ((mode == "alloc" || mode == "hold") && argc > 2) {
    // Allocates and touches N MiB; "hold" then says so and waits.
    long mib = std::atol(argv[2]);
    for (long i = 0; i < mib; ++i) {
      char* block = static_cast<char*>(std::malloc(1 << 20));
      if (!block) return 3;
      std::memset(block, 1, 1 << 20);
    }
    std::printf("allocated %ld\n", mib);
    std::fflush(stdout);
    if (mode == "hold") pause();
    return 0;
  }
  if (mode == "spin" && argc > 2) {
    // Busy for N seconds of wall time.
    timespec start{}, now{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    volatile unsigned long x = 0;
    do {
      for (int i = 0; i < 100000; ++i) x = x + 1;
      clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < std::atol(argv[2]));
    return 0;
  }
  std::fprintf(stderr, "probe: unknown mode %s\n", mode.c_str());
  return 2;
}
