#!/bin/sh
# Proves the package works for a consumer: installs hutch into a temporary prefix, builds
# and runs a project that uses find_package(hutch) (and runs its CTest test through the
# installed hutch-test), then one that uses add_subdirectory, then Conan's test_package.
# usage: run.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -eu
source=$1 build=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/share/cmake/hutch/hutchConfig.cmake"
test -f "$work/prefix/share/pkgconfig/hutch.pc"
# build_and_run KIND CMAKE_ARGS...: configure and build tests/consumer/KIND, run every consumer.
build_and_run() {
  kind=$1
  shift
  cmake -S "$source/tests/consumer/$kind" -B "$work/$kind" "$@" >/dev/null
  cmake --build "$work/$kind" >/dev/null
  for program in consumer consumer_seccomp consumer_image consumer_oci consumer_net consumer_registry \
    consumer_gtest; do
    "$work/$kind/$program" >/dev/null
  done
}
build_and_run find_package -DCMAKE_PREFIX_PATH="$work/prefix"
test -x "$work/prefix/bin/hutch-test"
ctest --test-dir "$work/find_package" --output-on-failure >/dev/null
build_and_run add_subdirectory -DHUTCH_SOURCE_DIR="$source"
# Conan's test_package is plain CMake over find_package: build it against the same prefix
# (Conan itself cannot be installed on these machines).
cmake -S "$source/conan/test_package" -B "$work/conan_test_package" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/conan_test_package" >/dev/null
"$work/conan_test_package/test_package"
# pkg-config sees it too.
PKG_CONFIG_PATH="$work/prefix/share/pkgconfig" pkg-config --cflags hutch
rm -rf "$work"
