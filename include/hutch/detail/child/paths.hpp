// hutch — the child side of spawn(), between clone and exec: looking paths up inside the new
// root, never following a symlink out of it.
//
// ============================================================================================
//  WARNING: runs between clone and exec in a child that shares the host's memory; see
//  detail/child/report.hpp. Raw system calls only: no allocation, no locks, no errno.
// ============================================================================================
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#include "../plan.hpp"
#include "../syscall.hpp"
#include "report.hpp"

#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif

namespace hutch::detail::child {

struct OpenHow {
  std::uint64_t flags;
  std::uint64_t mode;
  std::uint64_t resolve;
};

/// openat2(2) of `path` (relative) under `root` as if `root` were "/": `..` and absolute
/// symlinks stay inside it, and /proc magic links are refused.
HUTCH_CHILD_CODE inline long open_in_root(int root, const char* path,
                                          std::uint64_t flags) noexcept {
  OpenHow how{flags | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  return raw::sys(SYS_openat2, root, *path ? path : ".", &how, sizeof how);
}

/// Opens the directory holding `path` (relative, inside the root) and points `name` at the
/// path's last component. Returns the directory's fd or -errno.
HUTCH_CHILD_CODE inline long open_parent_in_root(int root, const char* path,
                                                 const char*& name) noexcept {
  name = path;
  for (const char* c = path; *c; ++c) {
    if (*c == '/') name = c + 1;
  }
  char parent_path[4096];
  const auto n = static_cast<std::size_t>(name - path);
  if (n >= sizeof parent_path) return -ENAMETOOLONG;
  for (std::size_t i = 0; i < n; ++i) parent_path[i] = path[i];
  parent_path[n] = '\0';
  return open_in_root(root, parent_path, O_PATH | O_DIRECTORY);
}

HUTCH_CHILD_CODE inline bool dot_or_dot_dot(const char* name) noexcept {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/// Creates `name` in directory `parent`: an empty file, or a directory of `mode`. Never
/// through a symlink (O_NOFOLLOW; mkdirat does not follow one either).
HUTCH_CHILD_CODE inline long create_entry(long parent, const char* name, bool file,
                                          unsigned mode) noexcept {
  if (!file) return raw::sys(SYS_mkdirat, parent, name, mode);
  long r = raw::sys(SYS_openat, parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                    0644);
  if (r >= 0) raw::sys(SYS_close, r);
  return r < 0 ? r : 0;
}

/// The common case of a missing target: its parent exists, so create the last component
/// there and open it as the walk below would. -EAGAIN when the parent is missing too or the
/// name exists after all (a dangling link): the caller walks the path by hand.
HUTCH_CHILD_CODE inline long create_last(int root, const MountStep& step,
                                         const char* target) noexcept {
  const char* name = nullptr;
  long parent = open_parent_in_root(root, target, name);
  if (parent < 0) return parent == -ENOENT ? -EAGAIN : parent;
  if (*name == '\0' || dot_or_dot_dot(name)) {
    raw::sys(SYS_close, parent);
    return -EAGAIN;
  }
  long r = create_entry(parent, name, step.create_file, step.mode);
  raw::sys(SYS_close, parent);
  if (r == -EEXIST) return -EAGAIN;
  return r < 0 ? r : open_in_root(root, target, O_PATH);
}

/// Splices symlink text `link` (n bytes) in for path[done, end) of the path being walked:
/// <done part, or nothing if the link is absolute>/<link>/<rest>. 0 or -errno.
HUTCH_CHILD_CODE inline long splice_link(char (&path)[4096], std::size_t done, std::size_t end,
                                         bool last, const char* link, long n) noexcept {
  const std::size_t rest = last ? end : end + 1;
  const std::size_t rest_length = last ? 0 : raw::length(path + end + 1);
  const std::size_t base = link[0] == '/' ? 0 : done;
  if (base + static_cast<std::size_t>(n) + 1 + rest_length >= sizeof path) return -ENAMETOOLONG;
  char tail[4096];
  for (std::size_t i = 0; i <= rest_length; ++i) tail[i] = path[rest + i];
  std::size_t at = base;
  for (long i = 0; i < n; ++i) path[at++] = link[i];
  path[at++] = '/';
  for (std::size_t i = 0; i <= rest_length; ++i) path[at + i] = tail[i];
  return 0;
}

/// One component of the walk below, path[done, end): created if missing; a symlink is
/// read into `link` (its length returned, > 0); a real entry gives 0.
HUTCH_CHILD_CODE inline long walk_component(int root, const MountStep& step, char (&path)[4096],
                                            std::size_t done, bool last,
                                            char (&link)[4096]) noexcept {
  const char* name = path + done;
  long entry = open_in_root(root, path, O_PATH | O_NOFOLLOW);
  if (entry == -ENOENT) {
    char* slash = done > 0 ? path + done - 1 : nullptr;
    if (slash) *slash = '\0';
    long parent = open_in_root(root, slash ? path : "", O_PATH | O_DIRECTORY);
    if (slash) *slash = '/';
    if (parent < 0) return parent;
    long r = create_entry(parent, name, last && step.create_file, last ? step.mode : 0755);
    raw::sys(SYS_close, parent);
    return r < 0 && r != -EEXIST ? r : 0;
  }
  if (entry < 0) return entry;
  struct stat info {};
  long r = raw::sys(SYS_fstat, entry, &info);
  long n = r == 0 && S_ISLNK(info.st_mode)
               ? raw::sys(SYS_readlinkat, entry, "", link, sizeof link - 1)
               : 0;
  raw::sys(SYS_close, entry);
  if (r < 0) return r;
  return n < 0 ? n : (S_ISLNK(info.st_mode) && n == 0 ? -ENOENT : n);
}

/// Opens `target` (absolute inside the root) as an O_PATH descriptor, creating what is
/// missing on the way and, if asked, the last component as a directory or an empty file.
/// Symlinks met on the way are followed by hand, inside the root: a link to "/etc" or to
/// "../../x" leads to the root's /etc or /x, and missing directories are created there,
/// never on the host.
HUTCH_CHILD_CODE inline long resolve_target(int root, const MountStep& step) noexcept {
  const char* target = step.target;
  while (*target == '/') ++target;
  long fd = open_in_root(root, target, O_PATH);
  if (fd != -ENOENT || !step.create) return fd;
  fd = create_last(root, step, target);
  if (fd != -EAGAIN) return fd;

  char path[4096];  // the path being walked: done part, then the rest
  char link[4096];
  const std::size_t length = raw::length(target);
  if (length >= sizeof path) return -ENAMETOOLONG;
  for (std::size_t i = 0; i <= length; ++i) path[i] = target[i];
  std::size_t done = 0;  // path[0, done) is resolved: real directories inside the root
  int links = 0;
  while (path[done] != '\0') {
    std::size_t end = done;
    while (path[end] != '\0' && path[end] != '/') ++end;
    const bool last = path[end] == '\0';
    const char saved = path[end];
    path[end] = '\0';
    if (path[done] != '\0' && !dot_or_dot_dot(path + done)) {
      long n = walk_component(root, step, path, done, last, link);
      if (n < 0) return n;
      if (n > 0) {
        if (++links > 40) return -ELOOP;
        if (long r = splice_link(path, done, end, last, link, n); r < 0) return r;
        done = 0;  // walk again from the root: the link may lead anywhere inside it
        while (path[done] == '/') ++done;
        continue;
      }
    }
    path[end] = saved;
    done = last ? end : end + 1;
  }
  return open_in_root(root, path, O_PATH);
}

/// "/proc/self/fd/<fd>": mount(2) follows this magic link to exactly the resolved file.
HUTCH_CHILD_CODE inline const char* fd_path(char (&buffer)[32], long fd) noexcept {
  const char prefix[] = "/proc/self/fd/";
  std::size_t n = 0;
  for (; prefix[n]; ++n) buffer[n] = prefix[n];
  char digits[16];
  std::size_t count = 0;
  do digits[count++] = static_cast<char>('0' + fd % 10);
  while ((fd /= 10) > 0);
  while (count > 0) buffer[n++] = digits[--count];
  buffer[n] = '\0';
  return buffer;
}

}  // namespace hutch::detail::child
