/* hutch-init: a tiny init for PID 1 of a container (Container::init, hutch-run --init), as tini
 * and catatonit are. It starts the command, forwards every signal it gets to it, reaps every
 * process that ends up its child (orphans are reparented to PID 1), and exits with the
 * command's status: its exit code, or 128+N when a signal N ended it.
 *
 *   hutch-init REPORT_FD COUNT PATH... -- ARG...
 *
 * The command is tried at each PATH in turn (the candidates hutch computed from the
 * container's PATH, as execvpe(3) would), with ARG... as its argv. A failure to run it is
 * written to REPORT_FD as hutch's child report (step exec, errno, candidate), so spawn() fails
 * with the real reason; the descriptor is close-on-exec, so the command's exec ends it.
 *
 * No libc: a static program of raw system calls, small enough to be copied into a sealed memfd
 * and exec'd from there in every container that asks for it. */
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_getpid 39
#define SYS_fork 57
#define SYS_execve 59
#define SYS_exit_group 231
#define SYS_kill 62
#define SYS_wait4 61
#define SYS_fcntl 72
#define SYS_rt_sigtimedwait 128
#define SYS_prctl 157
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
__asm__(
    ".globl _start\n"
    "_start:\n"
    "  xorl %ebp, %ebp\n"
    "  movq %rsp, %rdi\n"
    "  andq $-16, %rsp\n"
    "  call init_main\n"
    "  hlt\n");
#elif defined(__aarch64__)
#define SYS_read 63
#define SYS_write 64
#define SYS_close 57
#define SYS_rt_sigaction 134
#define SYS_rt_sigprocmask 135
#define SYS_getpid 172
#define SYS_clone 220
#define SYS_execve 221
#define SYS_exit_group 94
#define SYS_kill 129
#define SYS_wait4 260
#define SYS_fcntl 25
#define SYS_rt_sigtimedwait 137
#define SYS_prctl 167
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}
__asm__(
    ".globl _start\n"
    "_start:\n"
    "  mov x0, sp\n"
    "  bl init_main\n"
    "  brk #0\n");
#else
#error "hutch-init: x86_64 and aarch64 only"
#endif

#define sys(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

enum { EINTR = 4, ENOENT = 2, ENOTDIR = 20, EACCES = 13, ECHILD = 10, EAGAIN = 11 };
enum { SIGKILL = 9, SIGCHLD = 17, SIGSTOP = 19, SIGTSTP = 20, SIGTTIN = 21, SIGTTOU = 22 };
enum { F_SETFD = 2, FD_CLOEXEC = 1, PR_SET_PDEATHSIG = 1 };

/* hutch's ChildReport (detail/plan.hpp): step, errno, index. The exec step's number is
 * passed in by hutch with the report descriptor, as is the rest of the contract. */
struct report {
  int32_t step, error, index;
};

static void exit_with(int code) {
  for (;;) sys(SYS_exit_group, code, 0, 0);
}

static long number(const char* s) {
  long n = 0;
  if (!s || !*s) return -1;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return -1;
    n = n * 10 + (*s - '0');
  }
  return n;
}

static void usage(void) {
  static const char text[] = "usage: hutch-init REPORT_FD EXEC_STEP COUNT PATH... -- ARG...\n";
  sys(SYS_write, 2, text, sizeof text - 1);
  exit_with(125);
}

/* The command's process: signals back to their defaults and unblocked, then execve along the
 * candidates (execvpe's rules: ENOENT and ENOTDIR go on, EACCES is kept, anything else
 * stops); a failure is reported and ends it with 127. */
static void run_command(int report_fd, int step, char** paths, long count, char** argv,
                        char** envp) {
  uint64_t none = 0;
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } action = {0, 0, 0, 0};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sys4(SYS_rt_sigaction, sig, &action, 0, 8);
  }
  sys4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, &none, 0, 8);
  long saved = -ENOENT;
  int saved_index = 0;
  for (long i = 0; i < count; ++i) {
    long r = sys(SYS_execve, paths[i], argv, envp);
    if (r == -ENOENT || r == -ENOTDIR) continue;
    if (r == -EACCES) {
      if (saved != -EACCES) saved_index = (int)i;
      saved = r;
      continue;
    }
    saved = r;
    saved_index = (int)i;
    break;
  }
  struct report rep = {step, (int32_t)-saved, saved_index};
  if (report_fd >= 0) sys(SYS_write, report_fd, &rep, sizeof rep);
  exit_with(127);
}

static long start_command(void) {
#if defined(__x86_64__)
  return sys(SYS_fork, 0, 0, 0);
#else
  return sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
#endif
}

__attribute__((used)) void init_main(long* stack) {
  long argc = stack[0];
  char** argv = (char**)(stack + 1);
  char** envp = argv + argc + 1;
  if (argc < 5) usage();
  const long report_fd = number(argv[1]);
  const long step = number(argv[2]);
  const long count = number(argv[3]);
  if (step < 0 || count < 1 || 4 + count >= argc) usage();
  char** paths = argv + 4;
  char** command = paths + count;
  if (command[0] == 0 || command[0][0] != '-' || command[0][1] != '-' || command[0][2] != 0) {
    usage();
  }
  ++command;
  if (report_fd >= 0) sys(SYS_fcntl, report_fd, F_SETFD, FD_CLOEXEC);

  /* Every signal is taken by sigtimedwait below, none by a handler. */
  uint64_t all = ~(uint64_t)0;
  sys4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, &all, 0, 8);
  const long child = start_command();
  if (child == 0) run_command((int)report_fd, (int)step, paths, count, command, envp);
  if (report_fd >= 0) sys(SYS_close, report_fd, 0, 0);
  if (child < 0) exit_with(125);

  int exit_code = -1;
  for (;;) {
    struct {
      int signo, errno_, code, pad[29];
    } info;
    long sig = sys4(SYS_rt_sigtimedwait, &all, &info, 0, 8);
    if (sig == -EINTR || sig == -EAGAIN) continue;
    if (sig < 0) exit_with(125);
    if (sig != SIGCHLD) {
      /* Job control stops would stop PID 1, which nothing can continue: pass them on too. */
      sys(SYS_kill, child, sig, 0);
      continue;
    }
    for (;;) {
      int status = 0;
      long pid = sys4(SYS_wait4, -1, &status, 1 /* WNOHANG */, 0);
      if (pid <= 0) break;
      if (pid == child) {
        exit_code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
      }
    }
    if (exit_code >= 0) exit_with(exit_code);
  }
}
