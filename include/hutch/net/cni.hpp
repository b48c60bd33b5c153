// hutch — net module: the runtime side of the Container Network Interface (CNI spec 1.0):
// network configuration lists, running a plugin (CNI_* variables, its configuration on stdin,
// a result or an error on stdout), and a list's ADD chain (each plugin gets the one before's
// result as prevResult) and its DEL (in reverse, from the stored ADD result, tolerant of
// what is already gone).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/ranges.h>

#include "../detail/run_captured.hpp"
#include "../error.hpp"
#include "../fd.hpp"

extern char** environ;

namespace hutch {
#define HUTCH_NET_STEPS(X)                         \
  X(config, "network", "read network config")      \
  X(add, "network", "attach (CNI ADD)")            \
  X(del, "network", "detach (CNI DEL)")            \
  X(check, "network", "check (CNI CHECK)")         \
  X(prepare, "network", "prepare container files") \
  X(publish, "network", "reserve published port")  \
  X(pasta, "network", "start pasta")
HUTCH_MODULE_STEPS(net, 4, HUTCH_NET_STEPS)
}  // namespace hutch

namespace hutch::net {

/// CNI's well-known error codes (spec 1.0, "Error"), as an error category: a plugin's error
/// keeps its own code.
inline const std::error_category& cni_category() noexcept {
  struct Category final : std::error_category {
    const char* name() const noexcept override { return "cni"; }
    std::string message(int code) const override {
      switch (code) {
        case 1:
          return "incompatible CNI version";
        case 2:
          return "unsupported field in network configuration";
        case 3:
          return "container unknown or does not exist";
        case 4:
          return "invalid necessary environment variables";
        case 5:
          return "I/O failure";
        case 6:
          return "failed to decode content";
        case 7:
          return "invalid network config";
        case 11:
          return "try again later";
        case 50:
          return "invalid network namespace";
        default:
          return fmt::format("plugin error {}", code);
      }
    }
  };
  static const Category category;
  return category;
}

/// A network configuration list: {"cniVersion", "name", "plugins": [...]} (a single-plugin
/// .conf is turned into a list of one).
struct NetworkList {
  nlohmann::json list;
  std::string source;  // where it came from, for errors
  std::string name() const { return list.value("name", ""); }
  std::string version() const { return list.value("cniVersion", "1.0.0"); }
};

namespace detail {

inline Error config_error(std::string_view source, std::string note) {
  return make_error(net_step::config, EINVAL, std::string(source), std::move(note));
}

/// A name CNI allows for a network or a plugin type: letters, digits, '_', '.', '-' (a
/// type is a file name in CNI_PATH: never a path).
inline bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace detail

/// Parses a configuration list (or a single plugin's configuration) and checks what the
/// runtime relies on: a name, a version, plugins that are objects with a plain "type".
inline result<NetworkList> parse_network_list(std::string_view text, std::string source) {
  auto json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return detail::config_error(source, "not a JSON object");
  }
  if (!json.contains("plugins")) {  // a .conf: one plugin
    if (!json.contains("type")) {
      return detail::config_error(source, "neither \"plugins\" nor a plugin's \"type\"");
    }
    nlohmann::json list = {{"cniVersion", json.value("cniVersion", "1.0.0")},
                           {"name", json.contains("name") ? json["name"] : nlohmann::json()},
                           {"plugins", nlohmann::json::array({json})}};
    list["plugins"][0].erase("name");
    list["plugins"][0].erase("cniVersion");
    json = std::move(list);
  }
  if (!json.contains("name") || !json["name"].is_string() ||
      !detail::valid_name(json["name"].get<std::string>())) {
    return detail::config_error(source, "\"name\" must be a string of letters, digits, _ . -");
  }
  if (json.contains("cniVersion") && !json["cniVersion"].is_string()) {
    return detail::config_error(source, "\"cniVersion\" must be a string");
  }
  if (!json["plugins"].is_array() || json["plugins"].empty()) {
    return detail::config_error(source, "\"plugins\" must be a non-empty array");
  }
  for (const auto& p : json["plugins"]) {
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string() ||
        !detail::valid_name(p["type"].get<std::string>())) {
      return detail::config_error(source,
                                  "every plugin needs a \"type\" that is a plain file name");
    }
  }
  return NetworkList{std::move(json), std::move(source)};
}

/// Reads a configuration list from a file (.conflist, .conf or .json).
inline result<NetworkList> read_network_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) return last_error(net_step::config, path);
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().size() > (std::size_t{1} << 20)) {
    return detail::config_error(path, "larger than 1 MiB");
  }
  return parse_network_list(text.str(), path);
}

/// The list named `name` among the *.conflist, *.conf and *.json files of `dir` (first in
/// file-name order, as libcni does).
inline result<NetworkList> find_network_list(const std::string& name, const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string ext = e.path().extension().string();
    if ((ext == ".conflist" || ext == ".conf" || ext == ".json") && e.is_regular_file(ec)) {
      files.push_back(e.path().string());
    }
  }
  if (ec && ec.value() != ENOENT) {
    return make_error(net_step::config, ec.value(), dir, "the network config directory");
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto list = read_network_list(f);
    if (list && list->name() == name) return list;
  }
  return make_error(net_step::config, ENOENT, name,
                    fmt::format("no network of this name in {}", dir));
}

/// What every plugin of one container's attachment is run with.
struct Invocation {
  std::string container_id;
  std::string netns;  // a path to the network namespace; empty for a DEL after it is gone
  std::string ifname = "eth0";
  std::string cni_path = "/opt/cni/bin:/usr/lib/cni";
  std::string args;  // CNI_ARGS
  std::chrono::milliseconds timeout{60000};
};

namespace detail {

/// A plugin's error ({"code", "msg", "details"}) as an Error of `step`, in cni_category.
inline Error plugin_error(Step step, const std::string& type, const nlohmann::json& body,
                          const std::string& stderr_text) {
  int code = 999;
  std::string msg, details;
  if (body.is_object()) {
    if (body.contains("code") && body["code"].is_number_integer()) code = body["code"].get<int>();
    if (body.contains("msg") && body["msg"].is_string()) msg = body["msg"].get<std::string>();
    if (body.contains("details") && body["details"].is_string()) {
      details = body["details"].get<std::string>();
    }
  }
  if (msg.empty()) msg = stderr_text.substr(0, 2000);
  std::string note = msg;
  if (!details.empty()) note += fmt::format(" ({})", details);
  return Error{step, std::error_code(code, cni_category()), type, std::move(note)};
}

}  // namespace detail

inline result<nlohmann::json> invoke(const std::string& command, const nlohmann::json& config,
                                     const Invocation& how);

/// The CNI versions a plugin supports (CNI_COMMAND=VERSION).
inline result<std::vector<std::string>> supported_versions(const std::string& type,
                                                           const Invocation& how) {
  HUTCH_TRY(const nlohmann::json answer,
            invoke("VERSION", {{"cniVersion", "1.0.0"}, {"type", type}}, how));
  std::vector<std::string> out;
  if (answer.is_object() && answer.contains("supportedVersions") &&
      answer["supportedVersions"].is_array()) {
    for (const auto& v : answer["supportedVersions"]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

/// Runs one plugin: CNI_COMMAND `command` with `config` on stdin. Gives its result (ADD, and
/// VERSION's answer), or null (DEL, CHECK); a failure comes back with the plugin's own code and
/// message.
inline result<nlohmann::json> invoke(const std::string& command, const nlohmann::json& config,
                                     const Invocation& how) {
  const std::string type = config.value("type", "");
  const Step step = command == "DEL"     ? net_step::del
                    : command == "CHECK" ? net_step::check
                                         : net_step::add;
  const auto exe = hutch::detail::find_executable(type, how.cni_path);
  if (!exe) {
    return make_error(step, ENOENT, type,
                      fmt::format("no plugin of this type in CNI_PATH {}", how.cni_path));
  }
  std::vector<std::string> env = {
      "CNI_COMMAND=" + command,
      "CNI_CONTAINERID=" + how.container_id,
      "CNI_NETNS=" + how.netns,
      "CNI_IFNAME=" + how.ifname,
      "CNI_PATH=" + how.cni_path,
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  };
  if (!how.args.empty()) env.push_back("CNI_ARGS=" + how.args);
  std::string out, err;
  HUTCH_TRY(const int status,
            hutch::detail::run_captured({*exe}, env, config.dump(), how.timeout, step, out, err));
  auto body = nlohmann::json::parse(out, nullptr, false);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFSIGNALED(status) && (body.is_discarded() || !body.is_object())) {
      return make_error(step, EPIPE, type,
                        fmt::format("the plugin was killed by signal {}", WTERMSIG(status)));
    }
    Error e = detail::plugin_error(step, type, body.is_discarded() ? nlohmann::json() : body, err);
    if (e.code.value() == 1 && command != "VERSION" &&
        e.note.find("support") == std::string::npos) {  // incompatible: say what it has
      if (auto versions = supported_versions(type, how); versions && !versions->empty()) {
        e.note += fmt::format(" (the list asks for {}; the plugin supports {})",
                              config.value("cniVersion", "?"), fmt::join(*versions, ", "));
      }
    }
    return e;
  }
  if (command == "VERSION") return body.is_discarded() ? nlohmann::json() : body;
  if (command != "ADD") return nlohmann::json();
  if (body.is_discarded() || !body.is_object()) {
    return make_error(step, EPROTO, type, "the plugin's result is not a JSON object");
  }
  return body;
}

/// A plugin's configuration within `list`, as the spec builds it: the list's name and
/// version, the previous result, and the runtime configuration for the capabilities the
/// plugin declares.
inline nlohmann::json plugin_config(const NetworkList& list, std::size_t i,
                                    const nlohmann::json& prev_result,
                                    const nlohmann::json& runtime_config) {
  nlohmann::json conf = list.list["plugins"][i];
  conf["name"] = list.name();
  conf["cniVersion"] = list.version();
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;
  if (conf.contains("capabilities") && conf["capabilities"].is_object() &&
      runtime_config.is_object()) {
    nlohmann::json given = nlohmann::json::object();
    for (const auto& [capability, on] : conf["capabilities"].items()) {
      if (on.is_boolean() && on.get<bool>() && runtime_config.contains(capability)) {
        given[capability] = runtime_config[capability];
      }
    }
    if (!given.empty()) conf["runtimeConfig"] = std::move(given);
  }
  return conf;
}

/// DEL for every plugin of `list`, last first, each with the stored ADD result. Goes on past
/// a failure (what can be removed is) and gives the first one.
inline result<void> del(const NetworkList& list, const Invocation& how,
                        const nlohmann::json& runtime_config, const nlohmann::json& add_result,
                        std::size_t count) {
  std::optional<Error> first;
  for (std::size_t i = count; i-- > 0;) {
    auto done = invoke("DEL", plugin_config(list, i, add_result, runtime_config), how);
    if (!done && !first) first = done.error();
  }
  if (first) return *first;
  return success();
}

/// Whether CHECK applies to `list`: the spec has it from 0.4.0 on, and a list may turn it off
/// ("disableCheck").
inline bool checkable(const NetworkList& list) {
  if (list.list.value("disableCheck", false)) return false;
  const std::string v = list.version();
  int major = 0, minor = 0;
  if (std::sscanf(v.c_str(), "%d.%d", &major, &minor) != 2) return false;
  return major > 0 || minor >= 4;
}

/// CHECK for every plugin of `list`, in ADD's order, each with the stored ADD result as
/// prevResult: whether the container's network is still as ADD left it. The first plugin
/// that says it is not gives its error.
inline result<void> check(const NetworkList& list, const Invocation& how,
                          const nlohmann::json& runtime_config, const nlohmann::json& add_result) {
  if (!checkable(list)) return success();
  const std::size_t n = list.list["plugins"].size();
  for (std::size_t i = 0; i < n; ++i) {
    HUTCH_TRYV(invoke("CHECK", plugin_config(list, i, add_result, runtime_config), how));
  }
  return success();
}

/// ADD through the whole list, each plugin given the result before it. If one fails, the
/// plugins already run are deleted again (in reverse) and its error is returned.
inline result<nlohmann::json> add(const NetworkList& list, const Invocation& how,
                                  const nlohmann::json& runtime_config) {
  nlohmann::json prev;
  const std::size_t n = list.list["plugins"].size();
  for (std::size_t i = 0; i < n; ++i) {
    auto result = invoke("ADD", plugin_config(list, i, prev, runtime_config), how);
    if (!result) {
      (void)del(list, how, runtime_config, prev, i + 1);
      return result.error();
    }
    prev = std::move(*result);
  }
  return prev;
}

}  // namespace hutch::net
