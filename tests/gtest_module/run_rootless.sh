#!/bin/sh
# Runs the hutch::gtest module test as `nobody`, with copies of both binaries in a directory
# nobody can enter (the build tree may sit below one it cannot).
# usage: run_rootless.sh MODULE_TESTS CASES
set -eu
dir=$(mktemp -d /tmp/hutch-gtest-rootless.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cp "$1" "$dir/module_tests"
cp "$2" "$dir/cases"
cd "$dir"
HUTCH_GTEST_CASES="$dir/cases" setpriv --reuid=nobody --regid=nogroup --clear-groups \
  "$dir/module_tests"
