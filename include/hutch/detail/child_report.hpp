// hutch — the child's failure record turned into an Error on the host: the step, the errno,
// and the path or value it concerned, named from the host's copy of the plan.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <string>
#include <string_view>

#include "../error.hpp"
#include "launch_state.hpp"
#include "plan.hpp"
#include "syscall.hpp"

namespace hutch::detail {

/// A mount step's failure: its target, and what the step was.
inline Error mount_step_error(Step step, int err, const MountStep& m) {
  std::string note;
  if (m.fstype && std::string_view(m.fstype) == "overlay" && (err == EPERM || err == EINVAL) &&
      ::geteuid() != 0) {
    note = "overlayfs without root needs Linux >= 5.11";
  } else if (err == ENOSYS && (m.kind == MountStep::Kind::readonly ||
                               (m.kind == MountStep::Kind::bind && m.flags & MS_RDONLY))) {
    note = "read-only with its submounts needs mount_setattr, Linux >= 5.12";
  } else if (m.kind == MountStep::Kind::bind && m.source) {
    note = fmt::format("bind of {}", m.source);
  } else if (m.fstype) {
    note = fmt::format("{} filesystem", m.fstype);
  }
  return make_error(step, err, m.target ? m.target : "", std::move(note));
}

inline Error exec_error(const LaunchState& s, int err, std::size_t index) {
  if (static_cast<int>(index) == init_index) {
    return make_error(Step::exec, err, s.init_path, "the init (hutch-init)");
  }
  if (static_cast<int>(index) == exec_fd_index) {
    return make_error(Step::exec, err, s.strings_argv.empty() ? "" : s.strings_argv[0],
                      "the file given by its descriptor");
  }
  if (s.searched_path && err == ENOENT) {
    return make_error(Step::exec, err, s.strings_argv.empty() ? "" : s.strings_argv[0],
                      fmt::format("not found in PATH={}", s.search_path));
  }
  return make_error(
      Step::exec, err, index < s.strings_exec.size() ? s.strings_exec[index] : "",
      err == EACCES ? "not executable, or a directory on the way is not searchable" : "");
}

inline Error rlimit_error(const LaunchState& s, int err, std::size_t index) {
  std::string subject = index < s.rlimits.size()
                            ? fmt::format("resource {} = {}/{}", s.rlimits[index].resource,
                                          s.rlimits[index].soft, s.rlimits[index].hard)
                            : "";
  return make_error(Step::set_rlimit, err, subject,
                    err == EPERM
                        ? "raising a hard limit above the host's needs CAP_SYS_RESOURCE on the host"
                        : "");
}

/// The Error for a report the child wrote.
inline Error child_error(const LaunchState& s, const ChildReport& report) {
  const Step step = static_cast<Step>(report.step);
  const int err = report.error;
  const auto index = static_cast<std::size_t>(report.index);
  const char* root = s.plan.new_root ? s.plan.new_root : "";
  switch (step) {
    case Step::exec:
      return exec_error(s, err, index);
    case Step::chdir:
      return make_error(step, err, s.cwd);
    case Step::set_hostname:
      return make_error(step, err, report.index == -2 ? s.domainname : s.hostname,
                        report.index == -2 ? "setdomainname" : "");
    case Step::set_sysctl:
      return make_error(step, err, index < s.sysctls.size() ? s.sysctls[index].path : "");
    case Step::join_namespaces:
      return make_error(step, err, index < s.join_paths.size() ? s.join_paths[index] : "");
    case Step::set_controlling_tty:
      return make_error(step, err, "fd 0");
    case Step::setup_fds:
      return make_error(step, err, fmt::format("fd {}", report.index));
    case Step::set_uid:
    case Step::set_gid:
      return make_error(step, err, std::to_string(step == Step::set_uid ? s.plan.uid : s.plan.gid),
                        err == EINVAL ? "the id is not mapped in the user namespace" : "");
    case Step::set_rlimit:
      return rlimit_error(s, err, index);
    case Step::install_seccomp:
      return make_error(step, err, fmt::format("{} instructions", s.plan.seccomp_length),
                        err == EACCES   ? "a seccomp filter needs no_new_privs or CAP_SYS_ADMIN"
                        : err == EINVAL ? "the kernel refused the program (not valid BPF)"
                                        : "");
    case Step::set_capabilities:
      return make_error(step, err,
                        report.index >= 0 ? fmt::format("capability {}", report.index) : "");
    case Step::set_groups:
      return make_error(step, err, "",
                        err == EPERM ? "supplementary groups need a gid_map written with "
                                       "privilege (setgroups is denied rootless)"
                                     : "");
    case Step::prepare_rootfs:
      return make_error(step, err, root);
    case Step::pivot_root:
      return make_error(step, err, root,
                        err == EINVAL ? "the host's root cannot be pivoted away from (an "
                                        "initramfs?): use RootFs::chroot_fallback()"
                                      : "");
    default:
      if (report.index >= 0 && index < s.mounts.size()) {
        return mount_step_error(step, err, s.mounts[index]);
      }
      return make_error(step, err);
  }
}

/// The child's failure report, if it wrote one (it is dead or dying), else `e`.
inline Error reported_or(const LaunchState& s, Error e) {
  ChildReport report{};
  if (s.report_read && sys::retry([&] {
                         return ::read(s.report_read.get(), &report, sizeof report);
                       }) == static_cast<ssize_t>(sizeof report)) {
    return child_error(s, report);
  }
  return e;
}

}  // namespace hutch::detail
