// hutch — cgroup v2's device controller: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
// attached to the cgroup decides each device access, as the v1 devices controller's lists
// did. The program is generated from the rules: the last rule that matches decides, and no
// match is a denial.
#pragma once

#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../fd.hpp"
#include "cgroup_limits.hpp"

namespace hutch::detail {

/// The eBPF instructions for `rules`, over struct bpf_cgroup_dev_ctx (access_type: access in
/// the high 16 bits, type in the low; major; minor): r3 the type, r4 the access asked, r5 the
/// major, r6 the minor; each rule, last first, returns its verdict when it matches.
inline std::vector<bpf_insn> device_program(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> p;
  auto insn = [&](std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off,
                  std::int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    p.push_back(i);
  };
  insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0);  // r2 = ctx->access_type
  insn(BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
  insn(BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xffff);  // r3 = type
  insn(BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0);
  insn(BPF_ALU64 | BPF_RSH | BPF_K, 4, 0, 0, 16);  // r4 = access
  insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 4, 0);     // r5 = major
  insn(BPF_LDX | BPF_MEM | BPF_W, 6, 1, 8, 0);     // r6 = minor
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const DeviceRule& r = *it;
    std::int32_t access = 0;
    for (char c : r.access) {
      access |= c == 'm'   ? BPF_DEVCG_ACC_MKNOD
                : c == 'r' ? BPF_DEVCG_ACC_READ
                : c == 'w' ? BPF_DEVCG_ACC_WRITE
                           : 0;
    }
    if (r.access.empty()) access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
    // The block's tests, each jumping past the block when it fails; filled in at the end.
    std::vector<std::size_t> jumps;
    if (r.type == 'c' || r.type == 'b') {
      jumps.push_back(p.size());
      insn(BPF_JMP | BPF_JNE | BPF_K, 3, 0, 0,
           r.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
    }
    if (access != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
      insn(BPF_ALU64 | BPF_MOV | BPF_X, 7, 4, 0, 0);
      insn(BPF_ALU64 | BPF_AND | BPF_K, 7, 0, 0, ~access);
      jumps.push_back(p.size());
      insn(BPF_JMP | BPF_JNE | BPF_K, 7, 0, 0, 0);  // asks for more than the rule gives
    }
    if (r.type != 'a' && r.major >= 0) {
      jumps.push_back(p.size());
      insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, static_cast<std::int32_t>(r.major));
    }
    if (r.type != 'a' && r.minor >= 0) {
      jumps.push_back(p.size());
      insn(BPF_JMP | BPF_JNE | BPF_K, 6, 0, 0, static_cast<std::int32_t>(r.minor));
    }
    insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r.allow ? 1 : 0);
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (std::size_t j : jumps) p[j].off = static_cast<std::int16_t>(p.size() - j - 1);
  }
  insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);  // no rule matched: denied
  insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  return p;
}

/// Loads the rules' program and attaches it to the cgroup directory `dir` (it stays with the
/// cgroup; its descriptor is not kept). Needs CAP_SYS_ADMIN (or CAP_BPF).
inline result<void> attach_device_filter(const std::string& dir,
                                         const std::vector<DeviceRule>& rules) {
  const std::vector<bpf_insn> program = device_program(rules);
  static const char license[] = "Apache";
  char log[4096] = {};
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insn_cnt = static_cast<std::uint32_t>(program.size());
  load.insns = reinterpret_cast<std::uint64_t>(program.data());
  load.license = reinterpret_cast<std::uint64_t>(license);
  load.log_buf = reinterpret_cast<std::uint64_t>(log);
  load.log_size = sizeof log;
  load.log_level = 1;
  Fd prog(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load)));
  if (!prog) {
    return last_error(
        Step::cgroup_configure, dir,
        fmt::format("loading the device filter: {}", std::string(log).substr(0, 200)));
  }
  Fd cgroup(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup) return last_error(Step::cgroup_configure, dir);
  bpf_attr attach{};
  attach.target_fd = static_cast<std::uint32_t>(cgroup.get());
  attach.attach_bpf_fd = static_cast<std::uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (::syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) != 0) {
    return last_error(Step::cgroup_configure, dir, "attaching the device filter");
  }
  return success();
}

}  // namespace hutch::detail
