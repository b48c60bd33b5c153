// hutch — OCI module: an OCI config's linux.seccomp (defaultAction, architectures,
// syscalls with actions and argument comparisons) compiled with hutch::Seccomp.
#pragma once

#include <seccomp.h>

#include <cerrno>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../seccomp.hpp"
#include "mount_options.hpp"

namespace hutch::oci {

namespace detail {

inline result<SeccompAction> seccomp_action(const nlohmann::json& j, std::string_view field) {
  if (!j.is_string()) return bad(field, "an action is a string");
  const std::string a = j.get<std::string>();
  if (a == "SCMP_ACT_ALLOW") return SeccompAction::allow;
  if (a == "SCMP_ACT_ERRNO") return SeccompAction::error;
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SeccompAction::kill_thread;
  if (a == "SCMP_ACT_KILL_PROCESS") return SeccompAction::kill_process;
  if (a == "SCMP_ACT_TRAP") return SeccompAction::trap;
  if (a == "SCMP_ACT_TRACE") return SeccompAction::trace;
  if (a == "SCMP_ACT_LOG") return SeccompAction::log;
  return bad(a, "not a seccomp action hutch supports (SCMP_ACT_NOTIFY needs a listener)");
}

inline result<SeccompArg::Op> seccomp_op(const std::string& op) {
  static const std::pair<const char*, SeccompArg::Op> ops[] = {
      {"SCMP_CMP_NE", SeccompArg::Op::ne},
      {"SCMP_CMP_LT", SeccompArg::Op::lt},
      {"SCMP_CMP_LE", SeccompArg::Op::le},
      {"SCMP_CMP_EQ", SeccompArg::Op::eq},
      {"SCMP_CMP_GE", SeccompArg::Op::ge},
      {"SCMP_CMP_GT", SeccompArg::Op::gt},
      {"SCMP_CMP_MASKED_EQ", SeccompArg::Op::masked_eq}};
  for (const auto& [name, value] : ops) {
    if (op == name) return value;
  }
  return bad(op, "not a seccomp comparison");
}

inline result<std::uint64_t> unsigned_of(const nlohmann::json& j, std::string_view field) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer() && j.get<std::int64_t>() >= 0) return j.get<std::uint64_t>();
  return bad(field, "must be a non-negative integer");
}

/// The errno (or trace message) an action carries: `errnoRet`, else EPERM for an errno.
inline result<int> action_value(const nlohmann::json& j, SeccompAction action,
                                std::optional<int> fallback) {
  const auto it = j.find("errnoRet");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_number_unsigned()) return bad("errnoRet", "must be an errno");
    return static_cast<int>(it->get<std::uint64_t>());
  }
  if (fallback) return *fallback;
  return action == SeccompAction::error ? EPERM : 0;
}

inline result<std::vector<SeccompArg>> seccomp_args(const nlohmann::json& rule) {
  std::vector<SeccompArg> out;
  const auto it = rule.find("args");
  if (it == rule.end() || it->is_null()) return out;
  if (!it->is_array()) return bad("args", "must be an array");
  for (const auto& a : *it) {
    if (!a.is_object()) return bad("args", "each argument is an object");
    SeccompArg arg;
    HUTCH_TRY(const std::uint64_t index, unsigned_of(a.value("index", nlohmann::json()), "index"));
    arg.index = static_cast<unsigned>(index);
    HUTCH_TRY(arg.value, unsigned_of(a.value("value", nlohmann::json(0)), "value"));
    HUTCH_TRY(arg.value_two, unsigned_of(a.value("valueTwo", nlohmann::json(0)), "valueTwo"));
    if (!a.contains("op") || !a["op"].is_string()) return bad("op", "is missing");
    HUTCH_TRY(arg.op, seccomp_op(a["op"].get<std::string>()));
    out.push_back(arg);
  }
  return out;
}

/// "SCMP_ARCH_X86_64" as libseccomp's token.
inline result<std::uint32_t> seccomp_arch(const std::string& name) {
  if (!name.starts_with("SCMP_ARCH_")) return bad(name, "not a seccomp architecture");
  std::string lower;
  for (char c : name.substr(10))
    lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  const std::uint32_t token = ::seccomp_arch_resolve_name(lower.c_str());
  if (token == 0) return bad(name, "an architecture this libseccomp does not know");
  return token;
}

}  // namespace detail

/// Compiles an OCI config's linux.seccomp. Names of calls this libseccomp does not know are
/// left out (engines' profiles list newer calls); a listener or an unknown action is refused.
inline result<SeccompProgram> seccomp_program(const nlohmann::json& j) {
  using detail::bad;
  if (!j.is_object()) return bad("linux.seccomp", "must be an object");
  if (j.contains("listenerPath") && !j["listenerPath"].is_null()) {
    return bad("linux.seccomp.listenerPath", "seccomp notification is not supported");
  }
  if (j.contains("flags") && j["flags"].is_array()) {
    // Each flag known makes the filter log more, sync threads or let speculation
    // mitigations off: leaving them out confines no less. An unknown one is refused.
    for (const auto& f : j["flags"]) {
      const std::string flag = f.is_string() ? f.get<std::string>() : std::string();
      if (flag != "SECCOMP_FILTER_FLAG_TSYNC" && flag != "SECCOMP_FILTER_FLAG_LOG" &&
          flag != "SECCOMP_FILTER_FLAG_SPEC_ALLOW" &&
          flag != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
        return bad(flag.empty() ? "linux.seccomp.flags" : flag, "not a seccomp flag hutch knows");
      }
    }
  }
  if (!j.contains("defaultAction")) return bad("linux.seccomp.defaultAction", "is missing");
  HUTCH_TRY(const SeccompAction default_action,
            detail::seccomp_action(j["defaultAction"], "defaultAction"));
  std::optional<int> default_errno;
  if (j.contains("defaultErrnoRet") && j["defaultErrnoRet"].is_number_unsigned()) {
    default_errno = static_cast<int>(j["defaultErrnoRet"].get<std::uint64_t>());
  }
  HUTCH_TRY(const int default_value,
            detail::action_value(nlohmann::json::object(), default_action, default_errno));
  Seccomp profile = Seccomp::with_default(default_action, default_value);
  if (j.contains("architectures") && j["architectures"].is_array()) {
    std::vector<std::uint32_t> arches;
    for (const auto& a : j["architectures"]) {
      if (!a.is_string()) return bad("architectures", "are strings");
      HUTCH_TRY(const std::uint32_t token, detail::seccomp_arch(a.get<std::string>()));
      if (token != ::seccomp_arch_native()) arches.push_back(token);
    }
    profile.architectures(std::move(arches));
  }
  if (j.contains("syscalls") && !j["syscalls"].is_null()) {
    if (!j["syscalls"].is_array()) return bad("linux.seccomp.syscalls", "must be an array");
    for (const auto& rule : j["syscalls"]) {
      if (!rule.is_object() || !rule.contains("names") || !rule["names"].is_array()) {
        return bad("linux.seccomp.syscalls", "each rule has names");
      }
      if (!rule.contains("action")) return bad("linux.seccomp.syscalls", "each rule has an action");
      HUTCH_TRY(const SeccompAction action, detail::seccomp_action(rule["action"], "action"));
      HUTCH_TRY(const int value, detail::action_value(rule, action, std::nullopt));
      HUTCH_TRY(const std::vector<SeccompArg> args, detail::seccomp_args(rule));
      for (const auto& name : rule["names"]) {
        if (!name.is_string()) return bad("names", "are strings");
        profile.rule(name.get<std::string>(), action, value, args);
      }
    }
  }
  return profile.compile();
}

}  // namespace hutch::oci
