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
if [ "${HUTCH_ENGINE_INSIDE:-}" != 1 ]; then
  HUTCH_ENGINE_INSIDE=1 HUTCH_SANDBOX_NO_UNIFIED=1 exec "$here/../tests/engines/sandbox.sh" "$0" "$@"
fi
s=$(mktemp -d)
daemon=
trap '[ -n "$daemon" ] && kill "$daemon" && wait "$daemon"; rm -rf "$s"' EXIT
crun=$(command -v crun) runc=$(command -v runc)

# podman, as tests/engines/podman.sh sets it up.
cat >"$s/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$s/tmp"
volume_path = "$s/volumes"
EOF
cat >"$s/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$s/storage"
runroot = "$s/prun"
EOF
export CONTAINERS_CONF="$s/containers.conf" CONTAINERS_STORAGE_CONF="$s/storage.conf"
export CONTAINERS_REGISTRIES_CONF=/dev/null XDG_CONFIG_HOME="$s/config"
tar -C "$rootfs" -cf "$s/rootfs.tar" .
podman import -q "$s/rootfs.tar" localhost/hutch-bench:latest >/dev/null

# containerd, as tests/engines/containerd.sh sets it up, the image a docker-save archive.
cat >"$s/config.toml" <<EOF
version = 2
root = "$s/croot"
state = "$s/cstate"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$s/containerd.sock"
[ttrpc]
  address = "$s/containerd.sock.ttrpc"
EOF
containerd --config "$s/config.toml" >"$s/containerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do ctr --address "$s/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
python3 - "$rootfs" "$s/image.tar" <<'EOF'
import hashlib, io, json, sys, tarfile
rootfs, out = sys.argv[1:]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    t.add(rootfs, arcname=".")
layer = layer.getvalue()
diff = "sha256:" + hashlib.sha256(layer).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": name, "RepoTags": ["docker.io/library/hutch-bench:latest"],
                        "Layers": ["layer.tar"]}]).encode()
with tarfile.open(out, "w") as t:
    for n, data in ((name, config), ("layer.tar", layer), ("manifest.json", manifest)):
        info = tarfile.TarInfo(n)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
EOF
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
