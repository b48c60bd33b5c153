// hutch-runtime: what a container's state directory keeps between the runtime's processes
// (<root>/<id>/state.json, the exec FIFO, a lock), and the status read from the live system.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include <hutch/hutch.hpp>
#include <hutch/oci.hpp>

namespace hutch_runtime {

using nlohmann::json;

inline hutch::Error state_error(int code, std::string subject, std::string note = {}) {
  return hutch::make_error(hutch::oci_step::state, code, std::move(subject), std::move(note));
}

/// A container id as runc allows it: letters, digits and _ + - . (not "." or ".."), so that it
/// is one path component.
inline hutch::result<void> check_id(const std::string& id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == "..") {
    return state_error(EINVAL, id, "not a container id");
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '+' || c == '-' || c == '.';
    if (!ok) return state_error(EINVAL, id, "an id holds letters, digits and _ + - . only");
  }
  return hutch::success();
}

/// The process's start time in clock ticks since boot (/proc/PID/stat, field 22), and whether
/// it is a zombie: a pid kept in a state file is the container's only while both match.
struct ProcStat {
  std::uint64_t start_time = 0;
  bool zombie = false;
};
inline std::optional<ProcStat> proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  const std::string text = hutch::detail::read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return std::nullopt;
  // After "pid (comm) ": field 3 is the state; field 22 the start time.
  std::vector<std::string> fields;
  std::string field;
  for (std::size_t i = paren + 2; i < text.size(); ++i) {
    if (text[i] == ' ' || text[i] == '\n') {
      fields.push_back(field);
      field.clear();
    } else {
      field += text[i];
    }
  }
  if (fields.size() < 20) return std::nullopt;
  ProcStat out;
  out.zombie = fields[0] == "Z" || fields[0] == "X";
  out.start_time = std::strtoull(fields[19].c_str(), nullptr, 10);
  return out;
}

inline std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() %
      1000000000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09}Z", buffer, ns);
}

/// A container as the runtime left it.
struct State {
  std::string id;
  std::string oci_version;
  std::string bundle;
  std::string rootfs;
  std::string created;  // RFC 3339
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  std::vector<std::string> cgroup;  // the cgroup's directories
  std::map<std::string, std::string> annotations;
  json process;  // config.json's process: what `exec` starts from
  json seccomp;  // config.json's linux.seccomp: applied to exec'd processes too
  json hooks;    // config.json's hooks: the later ones run by start and delete
  bool started = false;

  json to_json() const {
    return json{{"id", id},
                {"ociVersion", oci_version},
                {"bundle", bundle},
                {"rootfs", rootfs},
                {"created", created},
                {"pid", pid},
                {"startTime", start_time},
                {"cgroup", cgroup},
                {"annotations", annotations},
                {"process", process},
                {"seccomp", seccomp},
                {"hooks", hooks},
                {"started", started}};
  }
  static hutch::result<State> from_json(const json& j, const std::string& path) {
    try {
      State s;
      s.id = j.at("id").get<std::string>();
      s.oci_version = j.at("ociVersion").get<std::string>();
      s.bundle = j.at("bundle").get<std::string>();
      s.rootfs = j.at("rootfs").get<std::string>();
      s.created = j.at("created").get<std::string>();
      s.pid = j.at("pid").get<pid_t>();
      s.start_time = j.at("startTime").get<std::uint64_t>();
      s.cgroup = j.at("cgroup").get<std::vector<std::string>>();
      s.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
      s.process = j.at("process");
      s.seccomp = j.at("seccomp");
      s.hooks = j.at("hooks");
      s.started = j.at("started").get<bool>();
      return s;
    } catch (const json::exception& e) {
      return state_error(EINVAL, path, e.what());
    }
  }

  /// Whether `pid` is still the container's init (not exited, not a reused pid).
  bool alive() const {
    const auto stat = proc_stat(pid);
    return stat && !stat->zombie && stat->start_time == start_time;
  }
};

/// The runtime's root (--root): one directory per container, 0700, owned by the caller.
class Store {
 public:
  explicit Store(std::string root) : root_(std::move(root)) {}

  const std::string& root() const noexcept { return root_; }
  std::string dir(const std::string& id) const { return root_ + "/" + id; }
  std::string fifo(const std::string& id) const { return dir(id) + "/exec.fifo"; }

  /// Makes the root (and its parents) if missing; refuses one another user could write.
  hutch::result<void> ensure_root() const {
    std::string path;
    for (std::size_t i = 1; i <= root_.size(); ++i) {
      if (i == root_.size() || root_[i] == '/') {
        path = root_.substr(0, i);
        if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
          return hutch::last_error(hutch::oci_step::state, path, "the runtime's root");
        }
      }
    }
    struct stat st {};
    if (::lstat(root_.c_str(), &st) != 0) return hutch::last_error(hutch::oci_step::state, root_);
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022)) {
      return state_error(EPERM, root_,
                         "the runtime's root must be a directory of the caller's that no one "
                         "else may write");
    }
    return hutch::success();
  }

  /// Makes the container's directory: fails if it exists.
  hutch::result<void> make(const std::string& id) const {
    HUTCH_TRYV(check_id(id));
    HUTCH_TRYV(ensure_root());
    if (::mkdir(dir(id).c_str(), 0700) != 0) {
      if (errno == EEXIST) return state_error(EEXIST, id, "a container with this id exists");
      return hutch::last_error(hutch::oci_step::state, dir(id));
    }
    return hutch::success();
  }

  /// An exclusive lock on the container's directory, held while one command changes it.
  hutch::result<hutch::Fd> lock(const std::string& id) const {
    HUTCH_TRYV(check_id(id));
    hutch::Fd fd(::open(dir(id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
      if (errno == ENOENT) return state_error(ENOENT, id, "container does not exist");
      return hutch::last_error(hutch::oci_step::state, dir(id));
    }
    if (::flock(fd.get(), LOCK_EX) != 0) return hutch::last_error(hutch::oci_step::state, dir(id));
    return fd;
  }

  hutch::result<State> load(const std::string& id) const {
    const std::string path = dir(id) + "/state.json";
    hutch::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
      if (errno == ENOENT) return state_error(ENOENT, id, "container does not exist");
      return hutch::last_error(hutch::oci_step::state, path);
    }
    HUTCH_TRY(const std::string text, hutch::oci::read_bounded(fd.get(), path));
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return state_error(EINVAL, path, "not JSON");
    return State::from_json(j, path);
  }

  /// Writes the state whole (a new file renamed over the old).
  hutch::result<void> save(const State& s) const {
    const std::string path = dir(s.id) + "/state.json", temporary = path + ".new";
    const std::string text = s.to_json().dump();
    hutch::Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return hutch::last_error(hutch::oci_step::state, temporary);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fsync(fd.get()) != 0 || ::rename(temporary.c_str(), path.c_str()) != 0) {
      return hutch::last_error(hutch::oci_step::state, path);
    }
    return hutch::success();
  }

  /// Removes the container's directory and what is in it (a state file, the FIFO, temporaries).
  void remove(const std::string& id) const {
    for (const char* name : {"state.json", "state.json.new", "exec.fifo"}) {
      ::unlink((dir(id) + "/" + name).c_str());
    }
    ::rmdir(dir(id).c_str());
  }

  std::vector<std::string> ids() const {
    std::vector<std::string> out;
    hutch::Fd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return out;
    DIR* d = ::fdopendir(fd.release());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != ".." && check_id(name)) out.push_back(name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string root_;
};

/// The status the runtime-spec names: created (waiting on its FIFO), running, paused (its
/// cgroup frozen) or stopped.
inline std::string status_of(const State& s) {
  if (!s.alive()) return "stopped";
  if (!s.started) return "created";
  if (!s.cgroup.empty()) {
    for (const auto& dir : s.cgroup) {
      if (hutch::detail::read_text(dir + "/freezer.state").starts_with("FROZEN")) return "paused";
      const std::string events = hutch::detail::read_text(dir + "/cgroup.events");
      if (events.find("frozen 1") != std::string::npos) return "paused";
    }
  }
  return "running";
}

/// The state as `runc state` prints it (what engines read).
inline json public_state(const State& s) {
  const std::string status = status_of(s);
  json j{{"ociVersion", s.oci_version},
         {"id", s.id},
         {"status", status},
         {"pid", status == "stopped" ? 0 : s.pid},
         {"bundle", s.bundle},
         {"rootfs", s.rootfs},
         {"created", s.created},
         {"owner", ""}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j;
}

/// The state a hook reads on its stdin (runtime-spec: ociVersion, id, status, pid, bundle,
/// annotations).
inline json hook_state(const State& s, const std::string& status) {
  json j{{"ociVersion", s.oci_version},
         {"id", s.id},
         {"status", status},
         {"pid", s.pid},
         {"bundle", s.bundle}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j;
}

}  // namespace hutch_runtime
