#!/bin/sh
# Where a spawn's time goes, level by level: samples the whole machine (every CPU, kernel and
# user, the containers and the kernel's workers too) with perf's cpu-clock event while
# hutch_spawn_bench runs one row, and lists the functions that took the most samples.
# Hardware counters are not needed (these guests have none: `perf stat -e instructions true`
# says "not supported"). Needs root and Debian's linux-perf.
#
#   bench/profile.sh SPAWN_BENCH [OUT_DIR] [LEVEL ...]
#
# LEVELs are hutch_spawn_bench row names below container/ (default: none all_but_net
# all_but_net+overlay full full+net full+net_made_ahead). Writes OUT_DIR/profile-LEVEL.txt
# (the top 25 functions, by share of all samples) and prints the top 12 of each.
set -eu

[ "$(id -u)" = 0 ] || { echo "profile.sh: needs root" >&2; exit 77; }
[ $# -ge 1 ] || { echo "usage: $0 SPAWN_BENCH [OUT_DIR] [LEVEL ...]" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (linux-perf)" >&2; exit 77; }
bench=$(realpath "$1")
out=$(realpath -m "${2:-.}")
[ $# -ge 2 ] && shift 2 || shift 1
levels=${*:-none all_but_net all_but_net+overlay full full+net full+net_made_ahead}
mkdir -p "$out"
data=$(mktemp /tmp/hutch-profile.XXXXXX)
trap 'rm -f "$data" "$data.old"' EXIT INT TERM

for level in $levels; do
  filter="^container/$(printf %s "$level" | sed 's/+/\\+/g')/glibc/"
  perf record -q -a -F 4000 -e cpu-clock -o "$data" -- \
    "$bench" --benchmark_filter="$filter" --benchmark_min_time="${MIN_TIME:-2}" >/dev/null 2>&1
  perf report -q -i "$data" --no-children --sort comm,sym --percent-limit 0.5 --stdio 2>/dev/null |
    grep -v '^$' | head -25 >"$out/profile-$level.txt"
  [ -s "$out/profile-$level.txt" ] || { echo "profile.sh: no samples for $level" >&2; exit 1; }
  echo "== $level"
  head -12 "$out/profile-$level.txt"
done
