#!/bin/sh
# Times the engines' own start of a container with hutch-runtime, crun and runc side by side
# (hyperfine, one run): `podman run --rm IMAGE true` (conmon, create + start + delete) and
# `ctr run --rm IMAGE ID true` (containerd's runc shim). Needs root, hyperfine, podman,
# conmon, containerd, crun and runc; everything runs in tests/engines/sandbox.sh (a private
# mount namespace, a /run of its own, a cgroup namespace below ours; the hybrid host's v2
# mount covered, which crun 1.8 refuses).
#
#   bench/engines.sh HUTCH_RUNTIME BUSYBOX_ROOTFS [OUT_DIR]
#
# RUNS (default 30) and WARMUP (3) set hyperfine's counts. Writes OUT_DIR/engines.json and
# engines.md (default: the current directory).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rt=$(readlink -f "$1") rootfs=$(cd "$2" && pwd) out=$(readlink -f "${3:-.}")
engines=$here/../tests/engines
. "$engines/lib.sh"
export HUTCH_SANDBOX_NO_UNIFIED=1
enter_sandbox "$0" "$@"
s=$(mktemp -d)
daemon=
trap '[ -n "$daemon" ] && kill "$daemon" && wait "$daemon"; rm -rf "$s"' EXIT
crun=$(command -v crun) runc=$(command -v runc)

# podman and containerd, as the engine tests set them up.
podman_setup "$s"
tar -C "$rootfs" -cf "$s/rootfs.tar" .
podman import -q "$s/rootfs.tar" localhost/hutch-bench:latest >/dev/null

containerd_start "$s"
docker_save "$rootfs" "$s/image.tar" docker.io/library/hutch-bench:latest
ctr --address "$s/containerd.sock" -n bench images import --snapshotter native "$s/image.tar" >/dev/null

set --
for name in hutch crun runc; do
  case $name in hutch) bin=$rt ;; crun) bin=$crun ;; runc) bin=$runc ;; esac
  set -- "$@" -n "podman run, $name" "podman --runtime $bin run --rm localhost/hutch-bench true"
done
for name in hutch crun runc; do
  case $name in hutch) bin=$rt ;; crun) bin=$crun ;; runc) bin=$runc ;; esac
  set -- "$@" -n "ctr run, $name" \
    "ctr --address $s/containerd.sock -n bench run --rm --snapshotter native --runc-binary $bin docker.io/library/hutch-bench:latest b-$name true"
done
hyperfine -N --runs "${RUNS:-30}" --warmup "${WARMUP:-3}" --export-json "$out/engines.json" \
  --export-markdown "$out/engines.md" "$@"
