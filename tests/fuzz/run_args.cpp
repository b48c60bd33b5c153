// Fuzz target: hutch-run's command line (NUL-separated arguments) and every value parser on
// the whole input. Nothing may crash, throw or wrap around.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <hutch/user.hpp>

#include "../../tools/hutch-run/options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> args;
  for (std::string_view rest = text;;) {
    const auto nul = rest.find('\0');
    args.push_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }
  (void)hutch_run::parse_args(args);
  if (auto bytes = hutch_run::parse_size(text)) {
    if (*bytes > (std::uint64_t{1} << 63)) __builtin_trap();
  }
  (void)hutch_run::parse_cpus(text);
  (void)hutch_run::parse_count(text);
  (void)hutch_run::parse_ulimit(text);
  (void)hutch_run::parse_volume(text);
  for (bool in_bytes : {true, false}) {
    if (auto rate = hutch_run::parse_device_rate(text, in_bytes); rate && rate->second == 0) {
      __builtin_trap();  // zero would mean no limit: never accepted
    }
  }
  if (auto port = hutch_run::parse_publish(text);
      port && (port->host_port == 0 || port->container_port == 0)) {
    __builtin_trap();  // port 0 is never published
  }
  if (auto rate = hutch_run::parse_tc_rate(text); rate && *rate == 0) __builtin_trap();
  (void)hutch_run::parse_add_host(text);
  (void)hutch::resolve_user({}, std::string(text));
  return 0;
}
