// A consumer of the optional net module: it links, and a broken network list is a clear
// error before anything is made.
#include <hutch/net.hpp>

int main() {
  auto list = hutch::Network::cni(R"({"name": "x", "plugins": []})").network_list();
  if (list) return 1;
  fmt::print("{}\n", list.error());
  return list.error().step == hutch::net_step::config ? 0 : 1;
}
