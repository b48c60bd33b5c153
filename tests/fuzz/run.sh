#!/bin/sh
# Runs every fuzz target for a bounded time on a copy of its checked-in corpus (the corpus in
# the tree is not changed) and fails on the first crash, leak or timeout, whose input it keeps
# in OUT (to become a regression input under tests/fuzz/regressions/TARGET).
# usage: run.sh FUZZ_BUILD_DIR SECONDS_PER_TARGET [OUT]
set -eu
build=$1 seconds=$2 out=${3:-fuzz-findings}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for target in image_documents layer_unpack run_args oci_config registry_inputs; do
  cp -r "$here/corpus/$target" "$work/$target"
  cp "$here/regressions/$target"/* "$work/$target/" 2>/dev/null || true
  log=$work/$target.log
  if "$build/tests/fuzz/hutch_fuzz_$target" -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=2048 -artifact_prefix="$out/$target-" "$work/$target" >"$log" 2>&1; then
    result=clean
  else
    result=FAILED
    status=1
    grep -E "ERROR|SUMMARY|reached|made|Test unit written" "$log" || tail -n 20 "$log"
  fi
  done_line=$(grep -E "^#[0-9]+.*DONE" "$log" | tail -n 1)
  echo "fuzz $target: $result in ${seconds}s: $done_line"
done
exit $status
