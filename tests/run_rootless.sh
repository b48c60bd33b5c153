#!/bin/sh
# Runs a test binary as `nobody` (rootless mode). The build tree may sit below a directory
# that nobody cannot enter, so the binary and the probe are copied to a private temporary
# directory first; HUTCH_PROBE tells the tests where the copy of the probe is.
# usage: run_rootless.sh TEST_BINARY PROBE [ARGS...]
set -eu
binary=$1 probe=$2
shift 2
dir=$(mktemp -d /tmp/hutch-rootless.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cp "$binary" "$dir/tests"
cp "$probe" "$dir/probe"
cd "$dir"
HUTCH_PROBE="$dir/probe" setpriv --reuid=nobody --regid=nogroup --clear-groups "$dir/tests" "$@"
