// hutch — registry module: its steps, for errors (module 3, see HUTCH_MODULE_STEPS).
#pragma once

#include "../error.hpp"

namespace hutch {
#define HUTCH_REGISTRY_STEPS(X)                     \
  X(reference, "registry", "parse image reference") \
  X(credentials, "registry", "look up credentials") \
  X(request, "registry", "registry request")        \
  X(authenticate, "registry", "authenticate")       \
  X(manifest, "registry", "fetch manifest")         \
  X(blob, "registry", "fetch blob")                 \
  X(pull, "registry", "pull image")
HUTCH_MODULE_STEPS(registry, 3, HUTCH_REGISTRY_STEPS)
}  // namespace hutch
