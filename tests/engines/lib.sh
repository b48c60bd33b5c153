# Sourced by the engine tests (tests/engines/*.sh) and bench/engines.sh, after setting
# `engines` to this directory: checks, the sandbox, the test image and the engines' set-up.

# need COMMAND...: skip (77) unless each is installed.
need() {
  for command; do
    command -v "$command" >/dev/null || { echo "$command missing"; exit 77; }
  done
}

# enter_sandbox "$0" "$@": re-runs the caller inside sandbox.sh, once.
enter_sandbox() {
  [ "${HUTCH_ENGINE_INSIDE:-}" = 1 ] || HUTCH_ENGINE_INSIDE=1 exec "$engines/sandbox.sh" "$@"
}

. "$engines/../checks.sh"

# docker_save ROOTFS OUT REPO_TAG: a docker-save archive of ROOTFS, one layer.
docker_save() {
  python3 - "$@" <<'EOF'
import hashlib, io, json, sys, tarfile
rootfs, out, tag = sys.argv[1:]
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
manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                        "Layers": ["layer/layer.tar"]}]).encode()
with tarfile.open(out, "w") as t:
    for name, data in ((config_name, config), ("layer/layer.tar", layer), ("manifest.json", manifest)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
EOF
}

# podman_setup DIR [RUNTIME]: podman's state in DIR, cgroupfs (no systemd here), the limits it
# may set (its default nofile and nproc of 1048576 need CAP_SYS_RESOURCE, which this machine
# lacks), RUNTIME (a path) as its default; exported for every podman that follows.
podman_setup() {
  cat >"$1/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$1/tmp"
volume_path = "$1/volumes"
${2:+runtime = \"$2\"}
EOF
  cat >"$1/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$1/storage"
runroot = "$1/run"
EOF
  export CONTAINERS_CONF="$1/containers.conf" CONTAINERS_STORAGE_CONF="$1/storage.conf"
  export CONTAINERS_REGISTRIES_CONF=/dev/null XDG_CONFIG_HOME="$1/config"
}

# containerd_start DIR: containerd with its root, state and socket in DIR, no CRI (no CNI
# needed); sets `daemon` to its pid and waits until it answers.
containerd_start() {
  cat >"$1/config.toml" <<EOF
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$1/containerd.sock"
[ttrpc]
  address = "$1/containerd.sock.ttrpc"
EOF
  containerd --config "$1/config.toml" >"$1/containerd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 100); do ctr --address "$1/containerd.sock" version >/dev/null 2>&1 && return; sleep 0.1; done
}
