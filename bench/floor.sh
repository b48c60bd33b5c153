#!/bin/sh
# Container::spawn + wait against the same-work floor (bench/floor.c: the system calls hutch
# makes at each isolation level, and nothing else), level by level, taking turns in the same
# run. Needs root and python3.
#
#   bench/floor.sh FLOOR SPAWN_BENCH TRUE [OUT_DIR]
#
# TRUE is the static payload (build/bench/true). ROUNDS (default 5) rounds; in each, per level,
# the floor's mean over RUNS (default 300) spawns and hutch_spawn_bench's mean over MIN_TIME
# (default 0.3) seconds of the same row. Prints, and writes OUT_DIR/floor.json and floor.md:
# each level's median over the rounds and hutch's ratio to the floor.
set -eu
[ "$(id -u)" = 0 ] || { echo "floor.sh: needs root" >&2; exit 77; }
[ $# -ge 3 ] || { echo "usage: $0 FLOOR SPAWN_BENCH TRUE [OUT_DIR]" >&2; exit 2; }
command -v python3 >/dev/null || { echo "floor.sh: needs python3" >&2; exit 77; }
floor=$(realpath "$1") bench=$(realpath "$2") payload=$(realpath "$3") out=$(realpath -m "${4:-.}")
mkdir -p "$out"
s=$(mktemp -d)
trap 'rm -rf "$s"' EXIT
mkdir "$s/root"
cp "$payload" "$s/root/true"
levels="none all_but_net all_but_net+rootfs all_but_net+overlay full"
: >"$s/rows"
for round in $(seq "${ROUNDS:-5}"); do
  for level in $levels; do
    case $level in
      *rootfs|*overlay|full) inside=/true ;;
      *) inside=$payload ;;
    esac
    "$floor" "$level" "$s/root" "$inside" "${RUNS:-300}" | awk '{print "floor", $1, $3}' >>"$s/rows"
    filter=$(printf '^container/%s/glibc/host_gib:0/real_time$' "$level" | sed 's/+/\\+/g')
    "$bench" --benchmark_filter="$filter" --benchmark_min_time="${MIN_TIME:-0.3}" \
      --benchmark_format=json >"$s/bench.json"
    python3 - "$s/bench.json" "$level" >>"$s/rows" <<'PY'
import json, sys
runs = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("run_type") == "iteration"]
if not runs:
    sys.exit("floor.sh: hutch_spawn_bench ran no row for " + sys.argv[2])
print("hutch", sys.argv[2], runs[0]["real_time"])
PY
  done
done
python3 - "$s/rows" "$out" $levels <<'PY'
import json, statistics, sys
rows, out, levels = sys.argv[1], sys.argv[2], sys.argv[3:]
times = {}
for line in open(rows):
    who, level, us = line.split()
    times.setdefault((who, level), []).append(float(us))
result = []
for level in levels:
    f = statistics.median(times[("floor", level)])
    h = statistics.median(times[("hutch", level)])
    result.append({"level": level, "floor_us": round(f, 1), "hutch_us": round(h, 1),
                   "ratio": round(h / f, 3)})
json.dump(result, open(out + "/floor.json", "w"), indent=1)
lines = ["| level | same-work floor | Container::spawn + wait | ratio |", "|---|---:|---:|---:|"]
for r in result:
    lines.append(f"| {r['level']} | {r['floor_us']:,.0f} µs | {r['hutch_us']:,.0f} µs | {r['ratio']:.2f}x |")
open(out + "/floor.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
