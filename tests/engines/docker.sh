#!/bin/sh
# dockerd (with the containerd it starts, and containerd's runc shim) driving hutch-runtime
# as `--add-runtime hutch=...`: the docker commands users type, checked from outside.
# usage: docker.sh HUTCH_RUNTIME BUSYBOX_ROOTFS   (skips with 77 when dockerd is missing)
set -u
rt=$(readlink -f "$1") rootfs=$(cd "$2" && pwd)
engines=$(cd "$(dirname "$0")" && pwd)
. "$engines/lib.sh"
need dockerd docker
enter_sandbox "$0" "$@"
s=$(mktemp -d)
daemon=
trap 'docker rm -f $(docker ps -aq) >/dev/null 2>&1
      [ -n "$daemon" ] && kill "$daemon" && wait "$daemon"; rm -rf "$s"' EXIT
# Its own roots and socket; no bridge, no iptables (no network is touched); limits it may
# set (this machine lacks CAP_SYS_RESOURCE). dockerd writes /etc/docker/key.json whatever
# it is told: a tmpfs of this mount namespace takes it.
[ -d /etc/docker ] && mount -t tmpfs -o mode=755 tmpfs /etc/docker
dockerd --data-root "$s/data" --exec-root "$s/exec" --host "unix://$s/docker.sock" \
  --pidfile "$s/docker.pid" --iptables=false --ip6tables=false --bridge=none \
  --storage-driver vfs --add-runtime "hutch=$rt" --default-runtime hutch \
  --default-ulimit nofile=4096:4096 --default-ulimit nproc=4096:4096 >"$s/dockerd.log" 2>&1 &
daemon=$!
export DOCKER_HOST="unix://$s/docker.sock"
for _ in $(seq 150); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
check "dockerd answers" 0 "$(docker version >/dev/null 2>&1; echo $?)"
docker_save "$rootfs" "$s/image.tar" docker.io/library/hutch-test:latest
docker load -q -i "$s/image.tar" >/dev/null
img=hutch-test
d() { docker run --network none "$@"; }

check "docker run" "hello from box" "$(d --rm --hostname box $img sh -c 'echo hello from $(hostname)')"
check "the runtime" hutch "$(docker info -f '{{.DefaultRuntime}}')"
d --rm $img sh -c 'exit 3'; check "exit status" 3 $?
d --rm $img no-such-command 2>/dev/null; check "a missing command" 127 $?
check "environment" "x=1" "$(d --rm -e x=1 $img sh -c 'echo x=$x')"
check "user" "1000:1000" "$(d --rm --user 1000:1000 $img sh -c 'echo $(id -u):$(id -g)')"
check "pid 1" 1 "$(d --rm $img sh -c 'echo $$')"
check "stdin" "piped in" "$(echo piped in | d --rm -i $img cat)"
check "capabilities" "00000000a80425fb" "$(d --rm $img sh -c 'grep CapEff /proc/self/status | cut -f2')"
check "seccomp" 2 "$(d --rm $img sh -c 'grep ^Seccomp: /proc/self/status | cut -f2')"
check "read-only root" ro "$(d --rm --read-only $img sh -c 'touch /x 2>/dev/null && echo rw || echo ro')"
mkdir -p "$s/vol" && echo from-host >"$s/vol/f"
check "a volume" from-host "$(d --rm -v "$s/vol:/vol:ro" $img cat /vol/f)"
check "a workdir" /etc "$(d --rm -w /etc $img pwd)"
check "a memory limit" 67108864 \
  "$(d --rm --memory 64m $img sh -c 'cat /sys/fs/cgroup/memory$(grep :memory: /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes')"

d -d --name d1 $img sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' >/dev/null
check "run -d" running "$(docker inspect -f '{{.State.Status}}' d1)"
check "exec" "exec in d1" "$(docker exec d1 sh -c 'echo exec in d1')"
docker exec d1 sh -c 'exit 4'; check "exec's exit status" 4 $?
contains "top" "sleep" "$(docker top d1)"
docker pause d1 >/dev/null; check "pause" paused "$(docker inspect -f '{{.State.Status}}' d1)"
docker unpause d1 >/dev/null; check "unpause" running "$(docker inspect -f '{{.State.Status}}' d1)"
docker update --pids-limit 64 d1 >/dev/null; check "update" 0 $?
docker stop -t 5 d1 >/dev/null; check "stop" exited "$(docker inspect -f '{{.State.Status}}' d1)"
check "stopped by SIGTERM" 0 "$(docker inspect -f '{{.State.ExitCode}}' d1)"
docker start d1 >/dev/null; check "start again" running "$(docker inspect -f '{{.State.Status}}' d1)"
check "logs" yes "$(docker logs d1 >/dev/null 2>&1 && echo yes)"
docker kill d1 >/dev/null; docker wait d1 >/dev/null
check "kill" 137 "$(docker inspect -f '{{.State.ExitCode}}' d1)"
docker rm d1 >/dev/null; check "rm" 0 $?
out=$(script -qec "docker run --rm -t --network none $img sh -c 'test -t 0 && echo on a tty'" /dev/null | tr -d '\r')
contains "run -t" "on a tty" "$out"

check "nothing left" "" "$(docker ps -aq)"
report docker
