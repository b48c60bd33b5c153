#!/bin/sh
# Drives hutch-test as CTest does and checks what comes back: exit codes, signals, timeouts,
# limits, and what the command can see and change.
# usage: test.sh HUTCH_TEST
set -u
launch=$(readlink -f "$1")
. "$(dirname "$0")/../../tests/checks.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
# The launcher's scratch roots go to $TMPDIR: this run's own, so that what another test
# running at the same time has in /tmp does not count as left behind here.
mkdir "$dir/scratch"
export TMPDIR="$dir/scratch"

check "exit code" 3 "$("$launch" -- sh -c 'exit 3'; echo $?)"
check "pid 1, own hostname" "1 isolated-test" "$("$launch" sh -c 'echo $$ $(hostname)')"
check "environment and cwd pass" "bar $dir" "$(FOO=bar "$launch" sh -c 'echo $FOO $(pwd)')"
check "stdin passes" "in" "$(echo in | "$launch" cat)"
check "host read-only" "ro" "$("$launch" sh -c "touch $dir/x 2>/dev/null || echo ro")"
check "private /tmp" "hi|no" "$("$launch" sh -c 'echo hi > /tmp/from-test && cat /tmp/from-test' | paste -sd'|')|$([ -e /tmp/from-test ] && echo yes || echo no)"
check "TMPDIR is the private /tmp" "/tmp" "$("$launch" sh -c 'echo $TMPDIR')"
check "writable host" "yes" "$("$launch" --writable sh -c "touch $dir/w && echo yes")"
check "no network but lo" "lo" "$("$launch" ls /sys/class/net)"
if command -v python3 >/dev/null; then
  "$launch" python3 -c 'import ctypes; ctypes.string_at(0)' 2>/dev/null
  check "a crash is the launcher's death by the same signal" 139 $?
fi
start=$(date +%s)
err=$("$launch" --timeout 0.5 sleep 30 2>&1)
rc=$?
check "timeout" "124 yes" "$rc $(case "$err" in *"timed out after 0.5 s"*) echo yes ;; *) echo "no: $err" ;; esac)"
check "timeout is prompt" yes "$([ $(( $(date +%s) - start )) -lt 10 ] && echo yes || echo no)"
"$launch" no-such-command 2>/dev/null; check "not found" 127 $?
"$launch" --memory lots true 2>/dev/null; check "bad size" 125 $?
"$launch" --bogus true 2>/dev/null; check "unknown option" 125 $?
"$launch" 2>/dev/null; check "no command" 125 $?
err=$(TMPDIR="$dir/missing" "$launch" true 2>&1)
check "no place for the root" "125 yes" "$? $(case "$err" in *"$dir/missing"*) echo yes ;; *) echo "no: $err" ;; esac)"
if [ "$(id -u)" = 0 ]; then  # cgroups need root on v1 machines
  err=$("$launch" --memory 16M -- sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a)' 2>&1)
  rc=$?
  check "OOM" "137 yes" "$rc $(case "$err" in *"OOM killer"*) echo yes ;; *) echo "no: $err" ;; esac)"
  err=$("$launch" --pids 8 -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; exit 1' 2>&1)
  check "pids limit" "yes" "$(case "$err" in *"pids limit refused"*) echo yes ;; *) echo "no: $err" ;; esac)"
fi
check "no scratch root left" "" "$(ls -A "$dir/scratch")"
report hutch-test
