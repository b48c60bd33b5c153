// hutch-run: the parsers of its flags' values (sizes, CPUs, counts, ulimits, volumes). Each
// takes hostile text and either gives a value or says what is wrong: no exceptions, no
// wrap-around, nothing accepted that docker would refuse. Unit-tested and fuzzed
// (tests/unit/run_values_test.cpp, tests/fuzz/).
#pragma once

#include <sys/resource.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <hutch/error.hpp>
#include <hutch/security.hpp>

namespace hutch_run {

/// Digits only, as an unsigned 64-bit number; nothing on overflow.
inline std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

/// A decimal number as docker's units take it: digits with at most one '.', finite.
inline std::optional<double> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  bool dot = false, digit = false;
  for (char c : text) {
    if (c == '.' && !dot) {
      dot = true;
    } else if (c >= '0' && c <= '9') {
      digit = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digit) return std::nullopt;
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

/// "64M", "1g", "512k", "1.5GiB", "1048576", "64mb" -> bytes (binary units, as docker's
/// --memory). Nothing when malformed or beyond 2^63.
inline std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t end = text.size();
  auto lower = [&](std::size_t i) { return std::tolower(static_cast<unsigned char>(text[i])); };
  if (end > 0 && lower(end - 1) == 'b') --end;
  if (end > 0 && lower(end - 1) == 'i') --end;
  unsigned shift = 0;
  if (end > 0) {
    switch (lower(end - 1)) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      case 'p':
        shift = 50;
        break;
      default:
        break;
    }
  }
  if (shift) --end;
  if (end < text.size() && !shift && lower(end) == 'i') return std::nullopt;  // "12ib"
  const std::string_view number = text.substr(0, end);
  if (auto whole = parse_unsigned(number)) {
    if (*whole > (std::uint64_t{1} << 63) >> shift) return std::nullopt;
    return *whole << shift;
  }
  auto value = parse_decimal(number);
  if (!value) return std::nullopt;
  const double bytes = std::ldexp(*value, static_cast<int>(shift));
  if (!(bytes < 9.2e18)) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

/// --cpus: a positive decimal, at least 0.01 (the kernel's 1 ms quota per 100 ms period).
inline hutch::result<double> parse_cpus(std::string_view text) {
  auto value = parse_decimal(text);
  if (!value || *value < 0.01 || *value > 1e6) {
    return hutch::invalid(std::string(text), "expected a number of CPUs from 0.01, e.g. 0.5");
  }
  return *value;
}

/// A positive count (--pids).
inline hutch::result<std::uint64_t> parse_count(std::string_view text) {
  auto value = parse_unsigned(text);
  if (!value || *value == 0 || *value > (std::uint64_t{1} << 62)) {
    return hutch::invalid(std::string(text), "expected a positive whole number");
  }
  return *value;
}

/// Docker's --device-read-bps and kin: "DEVICE:RATE", split at the last ':' (so "8:0:1mb"
/// names the device by its numbers). A rate in bytes takes docker's units ("1mb", "512k",
/// binary); one in IOs is a whole number. Zero is refused: it would mean no limit.
inline hutch::result<std::pair<std::string, std::uint64_t>> parse_device_rate(std::string_view spec,
                                                                              bool in_bytes) {
  const auto colon = spec.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == spec.size()) {
    return hutch::invalid(std::string(spec), in_bytes ? "expected DEVICE:RATE, e.g. /dev/vda:1mb"
                                                      : "expected DEVICE:IOPS, e.g. /dev/vda:100");
  }
  const std::string_view rate = spec.substr(colon + 1);
  const auto value = in_bytes ? parse_size(rate) : parse_unsigned(rate);
  if (!value || *value == 0) {
    return hutch::invalid(std::string(spec),
                          in_bytes ? "the rate is bytes per second above 0, e.g. 1mb or 512k"
                                   : "the rate is IOs per second, a whole number above 0");
  }
  return std::pair{std::string(spec.substr(0, colon)), *value};
}

/// "nofile=1024:2048" (docker's --ulimit) -> an rlimit.
inline hutch::result<hutch::Rlimit> parse_ulimit(std::string_view spec) {
  static const std::pair<const char*, int> names[] = {
      {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},         {"fsize", RLIMIT_FSIZE},
      {"locks", RLIMIT_LOCKS},       {"memlock", RLIMIT_MEMLOCK},
      {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},
      {"rss", RLIMIT_RSS},           {"rtprio", RLIMIT_RTPRIO},
      {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}};
  const std::string text(spec);
  auto bad = [&](const char* why) { return hutch::invalid(text, why); };
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos) return bad("expected NAME=SOFT[:HARD], e.g. nofile=1024:2048");
  const std::string_view name = spec.substr(0, eq), values = spec.substr(eq + 1);
  int resource = -1;
  for (const auto& [known, number] : names) {
    if (name == known) resource = number;
  }
  if (resource < 0) return bad("not a limit name (core, cpu, nofile, nproc, stack, ...)");
  auto number = [](std::string_view s) -> std::optional<rlim_t> {
    if (s == "unlimited" || s == "-1") return RLIM_INFINITY;
    auto value = parse_unsigned(s);
    if (!value || *value >= RLIM_INFINITY) return std::nullopt;
    return static_cast<rlim_t>(*value);
  };
  const auto colon = values.find(':');
  const auto soft = number(values.substr(0, colon));
  const auto hard = colon == std::string_view::npos ? soft : number(values.substr(colon + 1));
  if (!soft || !hard) return bad("the limits are whole numbers (or unlimited)");
  if (*soft > *hard) return bad("the soft limit is above the hard one");
  return hutch::Rlimit{resource, *soft, *hard};
}

/// An absolute path inside the container, without "..", NUL or an empty component; "/"
/// only where `root_ok`.
inline bool good_inside_path(std::string_view path, bool root_ok) {
  if (path.empty() || path[0] != '/' || path.size() > 4096) return false;
  if (path.find('\0') != std::string_view::npos) return false;
  if (path.find_first_not_of('/') == std::string_view::npos) return root_ok;
  for (std::string_view rest = path.substr(1); !rest.empty();) {
    const auto slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part == "..") return false;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return true;
}

struct Volume {
  std::string host;    // as given; made absolute by the caller
  std::string inside;  // absolute
  bool read_only = false;
};

/// "HOST:CONTAINER[:ro|rw]" (docker's -v with a host path). A name without '/' would be a
/// docker named volume, which hutch does not have.
inline hutch::result<Volume> parse_volume(std::string_view spec) {
  const std::string text(spec);
  auto bad = [&](const char* why) { return hutch::invalid(text, why); };
  std::string_view parts[4];
  std::size_t count = 0;
  for (std::string_view rest = spec;;) {
    const auto colon = rest.find(':');
    if (count == 3) return bad("expected HOST:CONTAINER[:ro]");
    parts[count++] = rest.substr(0, colon);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (count < 2) return bad("expected HOST:CONTAINER[:ro]");
  Volume v{std::string(parts[0]), std::string(parts[1]), false};
  if (count == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") return bad("the mode is ro or rw");
    v.read_only = parts[2] == "ro";
  }
  if (v.host.empty() || v.host.find('\0') != std::string::npos) return bad("no host path");
  if (v.host.find('/') == std::string::npos && v.host != "." && v.host != "..") {
    return bad("named volumes are not supported: give a host path (absolute, or ./relative)");
  }
  if (!good_inside_path(v.inside, false)) {
    return bad("the container path must be absolute, without '..', and not /");
  }
  return v;
}

/// A published port (docker's -p), before the net module makes a PortMapping of it.
struct Publish {
  std::string host_ip;  // empty: every address
  std::uint16_t host_port = 0, container_port = 0;
  bool udp = false;
};

/// A port number, 1..65535.
inline std::optional<std::uint16_t> parse_port(std::string_view text) {
  auto value = parse_unsigned(text);
  if (!value || *value == 0 || *value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*value);
}

/// Whether `text` is a dotted IPv4 address ("127.0.0.1") or an IPv6 one (hex digits and
/// colons, at most one "::"); the kernel checks the rest when the port is reserved.
inline bool plausible_ip(std::string_view text) {
  if (text.empty() || text.size() > 45) return false;
  if (text.find(':') == std::string_view::npos) {
    int parts = 0;
    for (std::string_view rest = text;; ++parts) {
      const auto dot = rest.find('.');
      const auto part = rest.substr(0, dot);
      auto value = parse_unsigned(part);
      if (!value || *value > 255 || part.size() > 3) return false;
      if (dot == std::string_view::npos) return parts == 3;
      rest.remove_prefix(dot + 1);
    }
  }
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
  }
  return true;
}

/// "[IP:]HOST:CONTAINER[/tcp|/udp]" (docker's -p; an IPv6 address in brackets:
/// "[::1]:8080:80"). hutch publishes fixed host ports only: "8080:80", not "80".
inline hutch::result<Publish> parse_publish(std::string_view spec) {
  const std::string text(spec);
  auto bad = [&](const char* why) { return hutch::invalid(text, why); };
  Publish p;
  std::string_view rest = spec;
  if (const auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    const auto protocol = rest.substr(slash + 1);
    if (protocol != "tcp" && protocol != "udp") return bad("the protocol is tcp or udp");
    p.udp = protocol == "udp";
    rest = rest.substr(0, slash);
  }
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:HOST:CONTAINER
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad("expected [IPv6]:HOST:CONTAINER");
    }
    p.host_ip = std::string(rest.substr(1, close - 1));
    if (!plausible_ip(p.host_ip)) return bad("not an IP address");
    rest = rest.substr(close + 2);
  }
  const auto last = rest.rfind(':');
  if (last == std::string_view::npos) {
    return bad("give the host port too: HOST:CONTAINER, e.g. 8080:80");
  }
  const auto container = parse_port(rest.substr(last + 1));
  rest = rest.substr(0, last);
  const auto before = rest.rfind(':');
  if (before != std::string_view::npos) {
    if (!p.host_ip.empty()) return bad("expected [IPv6]:HOST:CONTAINER");
    p.host_ip = std::string(rest.substr(0, before));
    if (p.host_ip.find(':') != std::string::npos || !plausible_ip(p.host_ip)) {
      return bad("not an IP address (IPv6 goes in brackets)");
    }
    rest = rest.substr(before + 1);
  }
  const auto host = parse_port(rest);
  if (!host || !container) return bad("ports are numbers from 1 to 65535");
  p.host_port = *host;
  p.container_port = *container;
  return p;
}

/// A rate as tc writes it (--bandwidth): "8mbit", "500kbit", "1gbit", "1.5mbit", bits per
/// second as a bare number or "bit"; bytes per second as "bps", "kbps", "mbps", "gbps" (tc's
/// units: decimal, k = 1000). Above 0, at most 10^15 bits per second.
inline hutch::result<std::uint64_t> parse_tc_rate(std::string_view text) {
  static const std::pair<const char*, double> units[] = {
      {"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
      {"tbps", 8e12}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8}};
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double scale = 1;
  std::string_view number = lower;
  for (const auto& [unit, factor] : units) {
    if (number.size() > std::string_view(unit).size() && number.ends_with(unit)) {
      number.remove_suffix(std::string_view(unit).size());
      scale = factor;
      break;
    }
  }
  const auto value = parse_decimal(number);
  const double bits = value ? *value * scale : 0;
  if (!value || !(bits >= 1) || bits > 1e15) {
    return hutch::invalid(std::string(text),
                          "expected a rate above 0 as tc writes it, e.g. 8mbit, 500kbit, 1gbit");
  }
  return static_cast<std::uint64_t>(bits);
}

/// "NAME:IP" (docker's --add-host).
inline hutch::result<std::pair<std::string, std::string>> parse_add_host(std::string_view spec) {
  const auto colon = spec.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return hutch::invalid(std::string(spec), "expected NAME:IP, e.g. db:10.0.0.5");
  }
  const std::string name(spec.substr(0, colon)), ip(spec.substr(colon + 1));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return hutch::invalid(std::string(spec), "the name is letters, digits, '-', '.', '_'");
    }
  }
  if (!plausible_ip(ip)) return hutch::invalid(std::string(spec), "not an IP address");
  return std::pair{name, ip};
}

}  // namespace hutch_run
