#!/bin/sh
# containerd (its runc shim, io.containerd.runc.v2, as Kubernetes uses it) driving
# hutch-runtime through ctr, checked from outside.
# usage: containerd.sh HUTCH_RUNTIME BUSYBOX_ROOTFS   (skips with 77 when containerd is missing)
set -u
rt=$(readlink -f "$1") rootfs=$(cd "$2" && pwd)
command -v containerd >/dev/null && command -v ctr >/dev/null &&
  command -v containerd-shim-runc-v2 >/dev/null || { echo "containerd missing"; exit 77; }
if [ "${HUTCH_ENGINE_INSIDE:-}" != 1 ]; then
  HUTCH_ENGINE_INSIDE=1 exec "$(dirname "$0")/sandbox.sh" "$0" "$@"
fi
failures=0 passed=0
check() {
  if [ "$2" = "$3" ]; then passed=$((passed + 1)); else
    failures=$((failures + 1)); printf 'FAILED %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3"; fi
}
contains() {
  case "$3" in *"$2"*) passed=$((passed + 1)) ;; *)
    failures=$((failures + 1)); printf 'FAILED %s\n  %s not in: %s\n' "$1" "$2" "$3" ;; esac
}
s=$(mktemp -d)
daemon=
trap 'for c in $(c containers ls -q 2>/dev/null); do c task kill -s KILL "$c" >/dev/null 2>&1; c task delete -f "$c" >/dev/null 2>&1; c containers delete "$c" >/dev/null 2>&1; done
      [ -n "$daemon" ] && kill "$daemon" && wait "$daemon"; rm -rf "$s"' EXIT
# Its state in the scratch directory, no CRI (no CNI needed), the native snapshotter.
cat >"$s/config.toml" <<EOF
version = 2
root = "$s/root"
state = "$s/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$s/containerd.sock"
[ttrpc]
  address = "$s/containerd.sock.ttrpc"
EOF
containerd --config "$s/config.toml" >"$s/containerd.log" 2>&1 &
daemon=$!
c() { ctr --address "$s/containerd.sock" --namespace hutch "$@"; }
for _ in $(seq 100); do c version >/dev/null 2>&1 && break; sleep 0.1; done
check "containerd answers" 0 "$(c version >/dev/null 2>&1; echo $?)"

# The image: a docker-save archive of the test root filesystem, made here.
python3 - "$rootfs" "$s/image.tar" <<'EOF'
import hashlib, io, json, sys, tarfile
rootfs, out = sys.argv[1:]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    t.add(rootfs, arcname=".")
layer = layer.getvalue()
diff = "sha256:" + hashlib.sha256(layer).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                                "Cmd": ["sh"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": ["docker.io/library/hutch-test:latest"],
                        "Layers": ["layer/layer.tar"]}]).encode()
with tarfile.open(out, "w") as t:
    for name, data in ((config_name, config), ("layer/layer.tar", layer), ("manifest.json", manifest)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
EOF
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
echo "containerd: $passed passed, $failures failed"
[ "$failures" = 0 ]
