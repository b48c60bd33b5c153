// hutch — OCI bundles: a runtime-spec config.json (1.0–1.2) as a Container, for an OCI runtime
// (tools/hutch-runtime) or a program that runs bundles itself.
//
// The optional `hutch::oci` module: link the `hutch::oci` CMake target (it brings
// nlohmann/json and hutch::seccomp).
#pragma once

#include "oci/config.hpp"         // IWYU pragma: export
#include "oci/linux.hpp"          // IWYU pragma: export
#include "oci/mount_options.hpp"  // IWYU pragma: export
#include "oci/process.hpp"        // IWYU pragma: export
#include "oci/seccomp.hpp"        // IWYU pragma: export
