#!/bin/sh
# containerd (its runc shim, io.containerd.runc.v2, as Kubernetes uses it) driving
# hutch-runtime through ctr, checked from outside.
# usage: containerd.sh HUTCH_RUNTIME BUSYBOX_ROOTFS   (skips with 77 when containerd is missing)
set -u
rt=$(readlink -f "$1") rootfs=$(cd "$2" && pwd)
engines=$(cd "$(dirname "$0")" && pwd)
. "$engines/lib.sh"
need containerd ctr containerd-shim-runc-v2
enter_sandbox "$0" "$@"
s=$(mktemp -d)
daemon=
trap 'for c in $(c containers ls -q 2>/dev/null); do c task kill -s KILL "$c" >/dev/null 2>&1; c task delete -f "$c" >/dev/null 2>&1; c containers delete "$c" >/dev/null 2>&1; done
      [ -n "$daemon" ] && kill "$daemon" && wait "$daemon"; rm -rf "$s"' EXIT
containerd_start "$s"
c() { ctr --address "$s/containerd.sock" --namespace hutch "$@"; }
check "containerd answers" 0 "$(c version >/dev/null 2>&1; echo $?)"

docker_save "$rootfs" "$s/image.tar" docker.io/library/hutch-test:latest
c images import --snapshotter native "$s/image.tar" >/dev/null
img=docker.io/library/hutch-test:latest
check "the image is there" 1 "$(c images ls -q | grep -c hutch-test)"
run() { c run --snapshotter native --runc-binary "$rt" "$@"; }

check "ctr run" "hello from box" "$(run --rm $img r1 sh -c 'hostname box 2>/dev/null; echo hello from box')"
run --rm $img r2 sh -c 'exit 3'; check "exit status" 3 $?
check "pid 1" 1 "$(run --rm $img r3 sh -c 'echo $$')"
check "environment" "x=1" "$(run --rm --env x=1 $img r4 sh -c 'echo x=$x')"
check "cwd" /etc "$(run --rm --cwd /etc $img r5 pwd)"
mkdir -p "$s/vol" && echo from-host >"$s/vol/f"
check "a bind mount" from-host \
  "$(run --rm --mount type=bind,src=$s/vol,dst=/vol,options=rbind:ro $img r8 cat /vol/f)"
check "read-only" ro "$(run --rm --read-only $img r9 sh -c 'touch /x 2>/dev/null && echo rw || echo ro')"
# ctr's spec mounts no cgroupfs: the limit is read where containerd asked for the cgroup.
run -d --memory-limit 67108864 $img r6 sleep 60 >/dev/null
check "memory limit" 67108864 "$(cat /sys/fs/cgroup/memory/hutch/r6/memory.limit_in_bytes)"
c task kill -s KILL r6 && c task delete r6 >/dev/null && c containers delete r6
check "its cgroup is gone" no "$([ -e /sys/fs/cgroup/memory/hutch/r6 ] && echo yes || echo no)"

# A detached task: exec, ps, pause, resume, kill, delete.
run -d $img d1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' >/dev/null
check "run -d" RUNNING "$(c task ls | awk '$1 == "d1" {print $3}')"
check "exec" "exec in d1" "$(c task exec --exec-id e1 d1 sh -c 'echo exec in d1')"
c task exec --exec-id e2 d1 sh -c 'exit 4'; check "exec's exit status" 4 $?
check "ps" yes "$([ "$(c task ps d1 | tail -n +2 | wc -l)" -ge 1 ] && echo yes)"
c task pause d1; check "pause" PAUSED "$(c task ls | awk '$1 == "d1" {print $3}')"
c task resume d1; check "resume" RUNNING "$(c task ls | awk '$1 == "d1" {print $3}')"
c task kill d1
for _ in $(seq 50); do [ "$(c task ls | awk '$1 == "d1" {print $3}')" = STOPPED ] && break; sleep 0.1; done
check "kill (SIGTERM)" STOPPED "$(c task ls | awk '$1 == "d1" {print $3}')"
c task delete d1 >/dev/null; check "task delete" 0 $?
c containers delete d1; check "container delete" 0 $?

# A terminal: the shim's console socket.
out=$(script -qec "ctr --address $s/containerd.sock --namespace hutch run --snapshotter native --runc-binary $rt -t --rm $img t1 sh -c 'test -t 0 && echo on a tty'" /dev/null | tr -d '\r')
contains "run -t" "on a tty" "$out"

check "nothing left" "" "$(c containers ls -q)"
check "no runtime state left" "" "$(ls /run/containerd/runc/hutch 2>/dev/null)"
report containerd
