// hutch — container networks: a network of its own through CNI plugins (a bridge with
// published ports and bandwidth limits, or any CNI network), the host's, or pasta for rootless
// containers; with the /etc/resolv.conf, /etc/hosts and /etc/hostname that fit it.
//
// The optional `hutch::net` module: link the `hutch::net` CMake target (it brings
// nlohmann/json); at run time it uses the CNI plugins (Debian: containernetworking-plugins)
// and pasta (Debian: passt).
#pragma once

#include "net/cni.hpp"      // IWYU pragma: export
#include "net/files.hpp"    // IWYU pragma: export
#include "net/network.hpp"  // IWYU pragma: export
#include "net/pasta.hpp"    // IWYU pragma: export
