// hutch-runtime: the command line as runc takes it (engines call runtimes with runc's flags):
// global flags, a command, the command's flags, then its positional arguments.
#pragma once

#include <fmt/format.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hutch_runtime {

/// A flag a command takes: its long name, a one-letter name, and whether it takes a value.
struct Flag {
  std::string_view name;
  char letter = 0;
  bool takes_value = false;
};

struct Parsed {
  std::map<std::string, std::vector<std::string>, std::less<>> values;  // by long name
  std::vector<std::string> positional;

  bool has(std::string_view name) const { return values.contains(name); }
  /// The last value given, or `fallback`.
  std::string value(std::string_view name, std::string fallback = {}) const {
    const auto it = values.find(name);
    return it == values.end() || it->second.empty() ? fallback : it->second.back();
  }
  const std::vector<std::string>& all(std::string_view name) const {
    static const std::vector<std::string> none;
    const auto it = values.find(name);
    return it == values.end() ? none : it->second;
  }
};

inline bool truthy(std::string_view v) {
  return v.empty() || v == "true" || v == "1";
}

/// Parses `args[from..]` against `flags`. Flags are read until the first positional argument
/// when `stop_at_positional` (exec: what follows the id is the command), else anywhere.
/// "--" ends the flags. A boolean flag may be given as --flag=false.
inline std::optional<std::string> parse_flags(const std::vector<std::string>& args,
                                              std::size_t from, const std::vector<Flag>& flags,
                                              bool stop_at_positional, Parsed& out) {
  for (std::size_t i = from; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.positional.insert(out.positional.end(), args.begin() + static_cast<long>(i) + 1,
                            args.end());
      return std::nullopt;
    }
    if (a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      if (stop_at_positional) {
        out.positional.insert(out.positional.end(), args.begin() + static_cast<long>(i) + 1,
                              args.end());
        return std::nullopt;
      }
      continue;
    }
    std::string name, value;
    bool has_value = false;
    const Flag* flag = nullptr;
    if (a[1] == '-') {
      name = a.substr(2);
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
        has_value = true;
      }
      for (const Flag& f : flags) {
        if (f.name == name) flag = &f;
      }
    } else {
      // go's flag package takes "-name" as "--name" too.
      std::string word = a.substr(1);
      if (const auto eq = word.find('='); eq != std::string::npos) {
        value = word.substr(eq + 1);
        word.resize(eq);
        has_value = true;
      }
      for (const Flag& f : flags) {
        if ((word.size() == 1 && f.letter == word[0]) || f.name == word) flag = &f;
      }
    }
    if (!flag) return fmt::format("unknown flag {}", a);
    if (flag->takes_value && !has_value) {
      if (i + 1 >= args.size()) return fmt::format("{} needs a value", a);
      value = args[++i];
    }
    if (!flag->takes_value && has_value && !truthy(value)) {
      out.values.erase(std::string(flag->name));
      continue;
    }
    out.values[std::string(flag->name)].push_back(value);
  }
  return std::nullopt;
}

}  // namespace hutch_runtime
