// hutch — scratch directories on the host: where an overlay's writable layer lives, and the
// reclaiming of those that hosts killed mid-way left behind.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <cerrno>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "private_dir.hpp"

namespace hutch::detail {

/// When process `pid` started (field 22 of /proc/PID/stat, in clock ticks since boot); 0 if
/// it is gone. A pid with another start time is another process.
inline std::uint64_t start_time(long pid) {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  std::FILE* f = std::fopen(path, "re");
  if (!f) return 0;
  char text[1024];
  const std::size_t n = std::fread(text, 1, sizeof text - 1, f);
  std::fclose(f);
  text[n] = '\0';
  const char* p = std::strrchr(text, ')');  // the command name may hold spaces
  if (!p) return 0;
  unsigned long long value = 0;
  // After ")": state (field 3), then fields 4..21, then starttime (22).
  if (std::sscanf(p + 1,
                  " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                  "%*d %*d %llu",
                  &value) != 1) {
    return 0;
  }
  return value;
}

/// This process's own start time, read once.
inline std::uint64_t own_start_time() {
  static const std::uint64_t value = start_time(::getpid());
  return value;
}

/// "hutch-<pid>-<start>-": what a process's reclaimable names begin with. A name of this form
/// whose process is gone (no such pid, or one that started at another time) was left by a
/// host that died.
inline std::string owner_prefix() {
  return fmt::format("hutch-{}-{}-", ::getpid(), own_start_time());
}

/// Whether `name` ("hutch-<pid>-<start>-...") belongs to a process that is gone.
inline bool owner_is_gone(std::string_view name) {
  unsigned long pid = 0;
  unsigned long long start = 0;
  const std::string text(name);
  if (std::sscanf(text.c_str(), "hutch-%lu-%llu-", &pid, &start) != 2 || pid == 0) return false;
  return start_time(static_cast<long>(pid)) != start;
}

/// Whether `st` was last modified more than `seconds` ago: an entry in the making is younger.
inline bool older_than(const struct stat& st, int seconds) {
  return std::time(nullptr) - st.st_mtime > seconds;
}

/// The names in directory `fd` (a descriptor it keeps), but "." and "..".
inline int read_names(int fd, std::vector<std::string>& names) {
  const int copy = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return errno;
  DIR* d = ::fdopendir(copy);
  if (!d) {
    const int e = errno;
    ::close(copy);
    return e;
  }
  while (dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return 0;
}

/// Opens directory `name` in `dir` to empty it: made ours to read first (overlayfs leaves
/// work/work with mode 000); -1 if it cannot be.
inline int open_to_empty(int dir, const char* name, const struct stat& st) {
  if ((st.st_mode & 0700) != 0700) ::fchmodat(dir, name, 0700, 0);
  return ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/// Removes `name` in directory `dir` and, if it is a directory, everything below it, without
/// following a symlink anywhere. Depth-first with one directory open at a time (it climbs
/// back with ".."), so a tree nested thousands deep needs no more descriptors than a flat one.
/// 0 or the first errno.
inline int remove_at(int dir, const char* name) {
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(dir, name, 0) == 0 ? 0 : errno;
  struct Level {
    std::string name;
    std::vector<std::string> subdirectories;
  };
  std::vector<Level> path;
  int error = 0;
  int current = open_to_empty(dir, name, st);
  if (current < 0) return errno;
  path.push_back({name, {}});
  bool fresh = true;  // `current` was just entered: read it
  while (!path.empty()) {
    Level& level = path.back();
    if (fresh) {
      std::vector<std::string> names;
      if (int e = read_names(current, names); e && !error) error = e;
      for (const auto& n : names) {
        struct stat entry {};
        if (::fstatat(current, n.c_str(), &entry, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(entry.st_mode)) {
          if ((entry.st_mode & 0700) != 0700) ::fchmodat(current, n.c_str(), 0700, 0);
          level.subdirectories.push_back(n);
        } else if (::unlinkat(current, n.c_str(), 0) != 0 && !error) {
          error = errno;
        }
      }
      fresh = false;
    }
    if (!level.subdirectories.empty()) {
      std::string next = std::move(level.subdirectories.back());
      level.subdirectories.pop_back();
      const int child =
          ::openat(current, next.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) {
        if (!error) error = errno;
        continue;
      }
      ::close(current);
      current = child;
      path.push_back({std::move(next), {}});
      fresh = true;
      continue;
    }
    // Empty: climb back and remove it.
    const std::string done = std::move(level.name);
    path.pop_back();
    const int parent =
        path.empty() ? -1 : ::openat(current, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(current);
    current = parent;
    if (path.empty()) {
      if (::unlinkat(dir, done.c_str(), AT_REMOVEDIR) != 0 && !error) error = errno;
    } else if (current < 0) {
      return error ? error : errno;
    } else if (::unlinkat(current, done.c_str(), AT_REMOVEDIR) != 0 && !error) {
      error = errno;
    }
  }
  return error;
}

/// A scratch directory on the host, removed (with everything below it) when dropped, unless
/// it is to be kept and its container started. Holds an overlay's writable layer.
class ScratchDir {
 public:
  ScratchDir() = default;
  ScratchDir(ScratchDir&& other) noexcept
      : path_(std::exchange(other.path_, {})),
        keep_(other.keep_),
        started_(other.started_),
        marked_(other.marked_) {}
  ScratchDir& operator=(ScratchDir&& other) noexcept {
    if (this != &other) {
      (void)remove();
      path_ = std::exchange(other.path_, {});
      keep_ = other.keep_;
      started_ = other.started_;
      marked_ = other.marked_;
    }
    return *this;
  }
  ~ScratchDir() { (void)remove(); }

  /// A new directory below `parent` (mkdtemp: mode 0700, a name no one else has). One to be
  /// kept is named "hutch-keep-..."; the others carry their host's pid and start time, so a
  /// later run can reclaim them if this host dies (reclaim_scratch).
  static result<ScratchDir> create(const std::string& parent, bool keep) {
    std::string pattern =
        parent + "/" + (keep ? std::string("hutch-keep-") : owner_prefix()) + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return last_error(Step::prepare_rootfs, parent, "creating the overlay scratch directory");
    }
    ScratchDir s;
    s.path_ = std::move(pattern);
    s.keep_ = keep;
    return s;
  }
  const std::string& path() const noexcept { return path_; }
  /// The container runs: from now on a directory to be kept is kept.
  void started() noexcept { started_ = true; }
  /// The container `pid` may outlive this host (die_with_parent(false)): a marker tells a
  /// later reclaim to leave the directory while the container runs.
  void mark_live(long pid);

  /// Removes the directory now; errors are reported, not thrown.
  result<void> remove() noexcept {
    if (path_.empty() || (keep_ && started_)) return success();
    std::string path = std::exchange(path_, {});
    if (marked_) ::unlink((path + ".live").c_str());
    // Usually empty: the writable layer was a tmpfs in the container's mount namespace.
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return success();
    return remove_tree(path);
  }

  /// Removes `path` and everything below it, following no symlink on the way (remove_at).
  static result<void> remove_tree(const std::string& path) noexcept {
    if (int e = remove_at(AT_FDCWD, path.c_str())) {
      return make_error(Step::remove_scratch, e, path);
    }
    return success();
  }

 private:
  std::string path_;
  bool keep_ = false;
  bool started_ = false;
  bool marked_ = false;
};

/// The default place for scratch directories: $XDG_RUNTIME_DIR if it is the caller's own and
/// no one else may write in it (one of another user is not used), else /dev/shm if it is a
/// usable tmpfs, else /tmp (both sticky: no one else can move or remove what hutch makes
/// there). The directory is only a mount point (the writable layer is a tmpfs mounted on it
/// inside the container), and on a tmpfs creating and removing it costs no disk I/O.
inline std::string default_scratch_parent() {
  const char* runtime = ::getenv("XDG_RUNTIME_DIR");
  if (runtime && *runtime == '/' && ::access(runtime, W_OK | X_OK) == 0 &&
      private_directory(runtime, Step::prepare_rootfs, {.others_may_read = true})) {
    return runtime;
  }
  static const bool shm = [] {
    struct statfs info {};
    return ::statfs("/dev/shm", &info) == 0 && info.f_type == TMPFS_MAGIC &&
           ::access("/dev/shm", W_OK | X_OK) == 0;
  }();
  return shm ? "/dev/shm" : "/tmp";
}

/// Removes the scratch directories in `parent` that hosts now gone left behind (killed with
/// SIGKILL mid-spawn, or before their Child was destroyed): only the caller's own, only those
/// named for a process that no longer exists, and only ones older than a minute. A container
/// that outlives its host (die_with_parent(false), detach()) keeps its directory: its
/// "<name>.live" marker names the container, which is checked instead.
inline void reclaim_scratch(const std::string& parent) {
  DIR* d = ::opendir(parent.c_str());
  if (!d) return;
  const int dir = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (!name.starts_with("hutch-") || name.ends_with(".live") || !owner_is_gone(name)) continue;
    struct stat st {};
    if (::fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != ::geteuid() || !older_than(st, 60)) {
      continue;
    }
    const std::string marker = std::string(name) + ".live";
    if (std::FILE* f = std::fopen((parent + "/" + marker).c_str(), "re")) {
      long pid = 0;
      unsigned long long start = 0;
      const bool read = std::fscanf(f, "%ld %llu", &pid, &start) == 2;
      std::fclose(f);
      if (read && start_time(pid) == start) continue;  // its container still runs
      ::unlinkat(dir, marker.c_str(), 0);
    }
    (void)ScratchDir::remove_tree(parent + "/" + std::string(name));
  }
  ::closedir(d);
}

/// Marks scratch directory `dir` as in use by container `pid` beyond its host's life.
inline void mark_scratch_live(const std::string& dir, long pid) {
  if (dir.empty() || dir.find("/hutch-keep-") != std::string::npos) return;
  if (std::FILE* f = std::fopen((dir + ".live").c_str(), "we")) {
    std::fprintf(f, "%ld %llu\n", pid, static_cast<unsigned long long>(start_time(pid)));
    std::fclose(f);
  }
}

}  // namespace hutch::detail

namespace hutch::detail {
inline void ScratchDir::mark_live(long pid) {
  mark_scratch_live(path_, pid);
  marked_ = true;
}
}  // namespace hutch::detail
