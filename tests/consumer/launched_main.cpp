// A consumer's plain test program, started by CTest through the installed hutch-test
// (hutch_isolate_tests): it passes only inside a container of its own.
#include <unistd.h>

#include <cstdio>

int main() {
  char name[256] = {};
  ::gethostname(name, sizeof name);
  std::printf("pid %d, hostname %s\n", static_cast<int>(::getpid()), name);
  return ::getpid() == 1 ? 0 : 1;
}
