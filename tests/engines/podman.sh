#!/bin/sh
# podman (with conmon) driving hutch-runtime: the commands users type, checked from outside.
# usage: podman.sh HUTCH_RUNTIME BUSYBOX_ROOTFS   (skips with 77 when podman is missing)
set -u
rt=$(readlink -f "$1") rootfs=$(cd "$2" && pwd)
engines=$(cd "$(dirname "$0")" && pwd)
. "$engines/lib.sh"
need podman conmon
enter_sandbox "$0" "$@"
s=$(mktemp -d)
trap 'podman rm -af -t 0 >/dev/null 2>&1; rm -rf "$s"' EXIT
podman_setup "$s" "$rt"
tar -C "$rootfs" -cf "$s/rootfs.tar" .
podman import -q "$s/rootfs.tar" localhost/hutch-test:latest >/dev/null
check "the image is there" 1 "$(podman images -q localhost/hutch-test | wc -l)"
img=localhost/hutch-test
# prun ARGS...: `podman run ARGS` detached, waited for, its output printed and its exit status
# returned.
runs=0
prun() {
  runs=$((runs + 1))
  id=p$runs
  podman run -d --name "$id" "$@" >/dev/null || { code=$?; podman rm -f "$id" >/dev/null; return $code; }
  code=$(podman wait "$id")
  podman logs "$id"
  podman rm "$id" >/dev/null
  return "$code"
}

check "podman run" "hello from box" "$(prun --hostname box $img sh -c 'echo hello from $(hostname)')"
prun $img sh -c 'exit 3'; check "exit status" 3 $?
prun $img no-such-command >/dev/null 2>&1; check "a missing command" 127 $?
check "environment" "x=1 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  "$(prun -e x=1 $img sh -c 'echo x=$x PATH=$PATH')"
check "user" "1000:1000" "$(prun --user 1000:1000 $img sh -c 'echo $(id -u):$(id -g)')"
check "pid 1" 1 "$(prun $img sh -c 'echo $$')"
check "read-only root" "ro" "$(prun --read-only $img sh -c 'touch /x 2>/dev/null && echo rw || echo ro')"
check "stdin" "piped in" "$(echo piped in | podman run --rm -i $img cat)"
check "capabilities" "00000000a80425fb" \
  "$(prun $img sh -c 'grep CapEff /proc/self/status | cut -f2')"
check "seccomp" 2 "$(prun $img sh -c 'grep ^Seccomp: /proc/self/status | cut -f2')"
mkdir -p "$s/vol" && echo from-host >"$s/vol/f"
check "a volume" from-host "$(prun -v "$s/vol:/vol:ro" $img cat /vol/f)"
check "a workdir" /etc "$(prun -w /etc $img pwd)"
check "logs" "out and err" "$(prun $img sh -c 'echo out and; echo err >&2' 2>&1 | paste -sd' ')"
check "a memory limit" 67108864 \
  "$(prun --memory 64m $img sh -c 'cat /sys/fs/cgroup/memory$(grep :memory: /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes')"
check "a pids limit" 50 \
  "$(prun --pids-limit 50 $img sh -c 'cat /sys/fs/cgroup/pids$(grep :pids: /proc/self/cgroup | cut -d: -f3)/pids.max')"

# A detached container: exec, top, pause, unpause, stop (SIGTERM to its PID 1), rm.
id=$(podman run -d --name d1 $img sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done')
check "run -d" 0 $?
check "running" running "$(podman inspect -f '{{.State.Status}}' d1)"
check "exec" "exec in d1" "$(podman exec d1 sh -c 'echo exec in d1')"
podman exec d1 sh -c 'exit 4'; check "exec's exit status" 4 $?
check "exec -e -w -u" "y /etc 1000" "$(podman exec -e v=y -w /etc -u 1000 d1 sh -c 'echo $v $(pwd) $(id -u)')"
contains "top" "sleep" "$(podman top d1)"
podman pause d1 >/dev/null; check "pause" paused "$(podman inspect -f '{{.State.Status}}' d1)"
podman unpause d1 >/dev/null; check "unpause" running "$(podman inspect -f '{{.State.Status}}' d1)"
podman stop -t 5 d1 >/dev/null; check "stop" exited "$(podman inspect -f '{{.State.Status}}' d1)"
check "stopped by SIGTERM, exit 0" 0 "$(podman inspect -f '{{.State.ExitCode}}' d1)"
podman start d1 >/dev/null; check "start again" running "$(podman inspect -f '{{.State.Status}}' d1)"
podman kill d1 >/dev/null; podman wait d1 >/dev/null
check "kill" 137 "$(podman inspect -f '{{.State.ExitCode}}' d1)"
podman rm d1 >/dev/null; check "rm" 0 $?
# stop's SIGKILL after the timeout, for a PID 1 that ignores SIGTERM; exec -t.
podman run -d --name d2 $img sh -c 'trap "" TERM; while :; do sleep 0.1; done' >/dev/null
out=$(script -qec "podman exec -t d2 sh -c 'test -t 0 && echo exec on a tty'" /dev/null | tr -d '\r')
contains "exec -t" "exec on a tty" "$out"
podman stop -t 1 d2 >/dev/null; check "stop, then SIGKILL" 137 "$(podman inspect -f '{{.State.ExitCode}}' d2)"
podman rm d2 >/dev/null

# A terminal (conmon's console socket).
out=$(script -qec "podman run --rm -t $img sh -c 'test -t 0 && echo on a tty'" /dev/null | tr -d '\r')
contains "run -t" "on a tty" "$out"

check "nothing left" "" "$(podman ps -aq)"
check "no container state left" "" "$(ls /run/hutch-runtime 2>/dev/null)"
report podman
