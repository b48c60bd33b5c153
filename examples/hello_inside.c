/* hello_inside: the only file in the hello example's root filesystem. A static program that
 * says what it sees from inside the container. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void print_file(const char* label, const char* path) {
  char line[256];
  FILE* f = fopen(path, "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) printf("  %-10s %s", label, line);
  fclose(f);
}

int main(void) {
  char host[65] = {0};
  gethostname(host, sizeof host - 1);
  printf("Hello from inside a hutch container!\n");
  printf("  %-10s %d\n", "pid", (int)getpid());
  printf("  %-10s %s\n", "hostname", host);
  printf("  %-10s %d (gid %d)\n", "uid", (int)getuid(), (int)getgid());
  print_file("uid_map", "/proc/self/uid_map");
  /* Its own cgroup is the root of /sys/fs/cgroup (a cgroup namespace); v2 or v1 files. */
  print_file("memory.max", "/sys/fs/cgroup/memory.max");
  print_file("memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes");
  print_file("pids.max", "/sys/fs/cgroup/pids.max");
  print_file("pids.max", "/sys/fs/cgroup/pids/pids.max");
  printf("  %-10s", "files in /");
  DIR* root = opendir("/");
  struct dirent* e;
  while (root && (e = readdir(root))) {
    if (e->d_name[0] != '.') printf(" %s", e->d_name);
  }
  if (root) closedir(root);
  FILE* probe = fopen("/hello_inside", "a");
  printf("\n  %-10s %s\n", "root", probe ? "writable" : "read-only");
  if (probe) fclose(probe);
  return 0;
}
