// hutch — registries: pulling images (`Image::pull`) by the OCI distribution spec, image
// references as docker reads them, what a registry's authentication challenges ask for, and
// the credentials users keep for it (the containers auth.json, docker's config.json and its
// credential helpers).
//
// The optional `hutch::registry` module: link the `hutch::registry` CMake target (it brings
// libcurl and hutch::image).
#pragma once

#include "registry/auth.hpp"       // IWYU pragma: export
#include "registry/client.hpp"     // IWYU pragma: export
#include "registry/http.hpp"       // IWYU pragma: export
#include "registry/pull.hpp"       // IWYU pragma: export
#include "registry/reference.hpp"  // IWYU pragma: export
