// hutch — embed Linux containers in a C++ program. The umbrella header.
#pragma once

#include "cgroup.hpp"      // IWYU pragma: export
#include "child.hpp"       // IWYU pragma: export
#include "container.hpp"   // IWYU pragma: export
#include "error.hpp"       // IWYU pragma: export
#include "fd.hpp"          // IWYU pragma: export
#include "namespaces.hpp"  // IWYU pragma: export
#include "stdio.hpp"       // IWYU pragma: export
