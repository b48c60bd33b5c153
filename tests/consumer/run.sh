#!/bin/sh
# Proves the package works for a consumer: installs hutch into a temporary prefix, builds
# and runs a project that uses find_package(hutch), then one that uses add_subdirectory,
# then Conan's test_package.
# usage: run.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -eu
source=$1 build=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/share/cmake/hutch/hutchConfig.cmake"
test -f "$work/prefix/share/pkgconfig/hutch.pc"
cmake -S "$source/tests/consumer/find_package" -B "$work/find_package" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/find_package" >/dev/null
"$work/find_package/consumer"
"$work/find_package/consumer_seccomp"
"$work/find_package/consumer_image"
cmake -S "$source/tests/consumer/add_subdirectory" -B "$work/add_subdirectory" \
  -DHUTCH_SOURCE_DIR="$source" >/dev/null
cmake --build "$work/add_subdirectory" >/dev/null
"$work/add_subdirectory/consumer"
"$work/add_subdirectory/consumer_seccomp"
"$work/add_subdirectory/consumer_image"
# Conan's test_package is plain CMake over find_package: build it against the same prefix
# (Conan itself cannot be installed on these machines).
cmake -S "$source/conan/test_package" -B "$work/conan_test_package" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/conan_test_package" >/dev/null
"$work/conan_test_package/test_package"
# pkg-config sees it too.
PKG_CONFIG_PATH="$work/prefix/share/pkgconfig" pkg-config --cflags hutch
rm -rf "$work"
