// hutch — embed Linux containers in a C++ program. The umbrella header (public headers only).
#pragma once

#include "cgroup.hpp"      // IWYU pragma: export
#include "child.hpp"       // IWYU pragma: export
#include "container.hpp"   // IWYU pragma: export
#include "created.hpp"     // IWYU pragma: export
#include "error.hpp"       // IWYU pragma: export
#include "fd.hpp"          // IWYU pragma: export
#include "namespaces.hpp"  // IWYU pragma: export
#include "pool.hpp"        // IWYU pragma: export
#include "process.hpp"     // IWYU pragma: export
#include "rootfs.hpp"      // IWYU pragma: export
#include "security.hpp"    // IWYU pragma: export
#include "stdio.hpp"       // IWYU pragma: export
#include "user.hpp"        // IWYU pragma: export
