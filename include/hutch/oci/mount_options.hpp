// hutch — OCI module: a mount's options (an OCI config's "options": "nosuid", "rbind",
// "mode=755", ...) turned into mount(2) flags, filesystem data and a propagation.
#pragma once

#include <sys/mount.h>

#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../rootfs.hpp"

namespace hutch {
#define HUTCH_OCI_STEPS(X)             \
  X(config, "oci", "read config.json") \
  X(state, "oci", "container state")   \
  X(hook, "oci", "run hook")
HUTCH_MODULE_STEPS(oci, 5, HUTCH_OCI_STEPS)
}  // namespace hutch

namespace hutch::oci {

namespace detail {

/// A config's field (or value) that hutch refuses, and why.
inline Error bad(std::string_view field, std::string_view why) {
  return make_error(oci_step::config, EINVAL, std::string(field), std::string(why));
}

struct MountFlag {
  std::string_view name;
  unsigned long set, clear;
};

/// The mount(8) options that are flags, as runc and crun read them.
inline constexpr MountFlag mount_flags[] = {
    {"ro", MS_RDONLY, 0},
    {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},
    {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},
    {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},
    {"async", 0, MS_SYNCHRONOUS},
    {"dirsync", MS_DIRSYNC, 0},
    {"mand", MS_MANDLOCK, 0},
    {"nomand", 0, MS_MANDLOCK},
    {"atime", 0, MS_NOATIME},
    {"noatime", MS_NOATIME, 0},
    {"diratime", 0, MS_NODIRATIME},
    {"nodiratime", MS_NODIRATIME, 0},
    {"relatime", MS_RELATIME, 0},
    {"norelatime", 0, MS_RELATIME},
    {"strictatime", MS_STRICTATIME, 0},
    {"nostrictatime", 0, MS_STRICTATIME},
    {"silent", MS_SILENT, 0},
    {"loud", 0, MS_SILENT},
    {"bind", MS_BIND, 0},
    {"rbind", MS_BIND | MS_REC, 0},
    {"remount", MS_REMOUNT, 0},
};

struct Propagation {
  std::string_view name;
  unsigned long flags;
};

inline constexpr Propagation propagations[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

}  // namespace detail

/// A propagation name ("rprivate", "shared", ...) as mount(2) flags; 0 if it is none.
inline unsigned long propagation_flags(std::string_view name) {
  for (const auto& p : detail::propagations) {
    if (p.name == name) return p.flags;
  }
  return 0;
}

/// Fills `m`'s flags, data, propagation and recursive attributes from `options`. Options
/// hutch cannot honour ("idmap", "remount", an unknown recursive one) are refused by name;
/// any other word goes to the filesystem as data (as "mode=755" does), which refuses what it
/// does not know when mounted.
inline result<void> apply_mount_options(Mount& m, const std::vector<std::string>& options) {
  std::string data;
  for (const std::string& option : options) {
    bool known = false;
    for (const auto& f : detail::mount_flags) {
      if (option == f.name) {
        m.flags = (m.flags | f.set) & ~f.clear;
        known = true;
      }
    }
    if (option == "remount")
      return detail::bad(option, "a remount is not a mount an OCI config makes");
    if (known) continue;
    if (const unsigned long p = propagation_flags(option)) {
      m.propagation = p;
      continue;
    }
    // Recursive attributes (mount_setattr): "rro", "rnosuid", "rnodev", "rnoexec".
    if (option == "rro" || option == "rnosuid" || option == "rnodev" || option == "rnoexec") {
      const std::string plain = option.substr(1);
      for (const auto& f : detail::mount_flags) {
        if (plain == f.name) m.flags |= f.set;
      }
      m.recursive_attributes = true;
      continue;
    }
    if (option == "rrw" || option == "rsuid" || option == "rdev" || option == "rexec") continue;
    if (option == "idmap" || option == "ridmap" || option.starts_with("idmap=")) {
      return detail::bad(option, "id-mapped mounts are not supported");
    }
    // crun's copy of the directory's files into a new tmpfs: the tmpfs starts empty here, as
    // with runc; nothing about what the container may reach changes.
    if (option == "tmpcopyup" || option == "notmpcopyup") continue;
    if (option.empty() || option.find(',') != std::string::npos ||
        option.find('\0') != std::string::npos) {
      return detail::bad(option, "a mount option is one word");
    }
    data += (data.empty() ? "" : ",") + option;
  }
  m.data = std::move(data);
  return success();
}

}  // namespace hutch::oci
