#!/bin/sh
# The cost of test isolation: a 200-test GoogleTest binary run plain, with every test
# isolated by hutch::gtest, and as 200 CTest tests with and without the hutch-test launcher
# (one process per test either way, as gtest_discover_tests makes them). Medians from one
# hyperfine run; the per-test overheads are the differences divided by 200.
# usage: isolation.sh PLAIN_BINARY ISOLATED_BINARY HUTCH_TEST OUT_DIR   (RUNS, default 10)
set -eu
plain=$(readlink -f "$1") isolated=$(readlink -f "$2") launcher=$(readlink -f "$3")
out=$(readlink -f "$4")
command -v hyperfine >/dev/null || { echo "skipped: hyperfine is not installed"; exit 77; }
mkdir -p "$out/ctest-plain" "$out/ctest-launched"
# Two CTest directories of 200 tests each, as gtest_discover_tests would list them.
"$plain" --gtest_list_tests | awk '/^[^ ]/ {suite=$1} /^  / {print suite $1}' >"$out/tests.txt"
: >"$out/ctest-plain/CTestTestfile.cmake"
: >"$out/ctest-launched/CTestTestfile.cmake"
while read -r t; do
  echo "add_test($t \"$plain\" --gtest_filter=$t)" >>"$out/ctest-plain/CTestTestfile.cmake"
  echo "add_test($t \"$launcher\" -- \"$plain\" --gtest_filter=$t)" \
    >>"$out/ctest-launched/CTestTestfile.cmake"
done <"$out/tests.txt"
n=$(wc -l <"$out/tests.txt")
hyperfine -N --runs "${RUNS:-10}" --warmup 1 --export-json "$out/isolation.json" \
  -n plain "$plain --gtest_brief=1" \
  -n isolated "$isolated --gtest_brief=1" \
  -n ctest-plain "ctest --test-dir $out/ctest-plain -j1 -Q" \
  -n ctest-launched "ctest --test-dir $out/ctest-launched -j1 -Q" \
  -n "one container start (hutch-test true)" "$launcher -- /bin/true" \
  -n "true" "/bin/true" >"$out/isolation.txt"
python3 - "$out/isolation.json" "$n" <<'PY'
import json, statistics, sys
results = {r["command"]: statistics.median(r["times"]) * 1000 for r in json.load(open(sys.argv[1]))["results"]}
n = int(sys.argv[2])
start = results["one container start (hutch-test true)"] - results["true"]
print(f"{n} tests, medians (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in results.items()))
print(f"hutch::gtest: {(results['isolated'] - results['plain']) / n:.2f} ms per test over the plain run")
print(f"hutch-test under CTest: {(results['ctest-launched'] - results['ctest-plain']) / n:.2f} ms per test over plain CTest")
print(f"one container start (hutch-test true over true): {start:.2f} ms")
PY
