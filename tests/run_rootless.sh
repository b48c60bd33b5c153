#!/bin/sh
# Runs a test binary as `nobody` (rootless mode). The build tree may sit below a directory
# that nobody cannot enter, so the binary and the probe are copied to a private temporary
# directory first; HUTCH_PROBE and HUTCH_TEST_ROOTFS tell the tests where the copies are.
# usage: run_rootless.sh TEST_BINARY PROBE ROOTFS_DIR INIT [ARGS...]
set -eu
binary=$1 probe=$2 rootfs=$3 init=$4
shift 4
dir=$(mktemp -d /tmp/hutch-rootless.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cp "$binary" "$dir/tests"
cp "$probe" "$dir/probe"
cp "$init" "$dir/hutch-init"
cp -a "$rootfs" "$dir/rootfs"
chown -R nobody:nogroup "$dir/rootfs"  # a rootless user's snapshot is its own
cd "$dir"
HUTCH_PROBE="$dir/probe" HUTCH_TEST_ROOTFS="$dir/rootfs" HUTCH_INIT="$dir/hutch-init" setpriv --reuid=nobody --regid=nogroup --clear-groups "$dir/tests" "$@"
