/* The scale benchmark's payload: a static program without libc that waits for a signal. */
void _start(void) {
  for (;;) __asm__ volatile("movl $34, %%eax\n\tsyscall" ::: "rax", "rcx", "r11", "memory");
}
