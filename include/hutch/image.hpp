// hutch — OCI images: run what `docker run IMAGE` runs, from an OCI image layout or a
// `docker save` archive, with no daemon.
//
// The optional `hutch::image` module: link the `hutch::image` CMake target (it brings
// nlohmann/json, libarchive and OpenSSL's libcrypto for SHA-256).
#pragma once

#include "image/config.hpp"       // IWYU pragma: export
#include "image/digest.hpp"       // IWYU pragma: export
#include "image/docker_save.hpp"  // IWYU pragma: export
#include "image/image.hpp"        // IWYU pragma: export
#include "image/layout.hpp"       // IWYU pragma: export
#include "image/store.hpp"        // IWYU pragma: export
#include "image/unpacker.hpp"     // IWYU pragma: export
