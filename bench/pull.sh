#!/bin/sh
# Times pulling the same image from a local registry into a fresh store and running `true`
# in it: hutch-run (pull, streamed verification and unpack, concurrent layers, then the run)
# against skopeo copying it to an OCI layout followed by hutch-run running that layout (the
# way images came to hutch before it pulled), and against `podman pull`. A small image
# (busybox, one layer) and a large one (four layers of this machine's /usr, hundreds of MB)
# are built here and pushed to Debian's docker-registry on 127.0.0.1.
#
#   bench/pull.sh HUTCH_RUN BUSYBOX_ROOTFS [OUT_DIR]
#
# RUNS (default 10; the large image gets a third of them, at least 3) sets hyperfine's count;
# LARGE=0 leaves the large image out. Writes OUT_DIR/pull.json and pull.md. Needs root,
# hyperfine, docker-registry, skopeo, umoci and GNU tar; podman is left out (and said so)
# when it is missing. Everything runs in a private mount namespace, its state in one scratch
# directory; the registry is stopped by its pid and nothing is left.
set -eu

[ "$(id -u)" = 0 ] || { echo "pull.sh: needs root" >&2; exit 77; }
[ $# -ge 2 ] || { echo "usage: $0 HUTCH_RUN BUSYBOX_ROOTFS [OUT_DIR]" >&2; exit 2; }
for tool in hyperfine docker-registry skopeo umoci tar; do
  command -v $tool >/dev/null || { echo "pull.sh: $tool is not installed" >&2; exit 77; }
done
if [ -z "${HUTCH_PULL_PRIVATE:-}" ]; then  # once, into a private mount namespace
  HUTCH_PULL_PRIVATE=1 exec unshare --mount --propagation private "$0" "$@"
fi
hutch_run=$(realpath "$1")
busybox=$(realpath "$2")
out=$(realpath "${3:-.}")
runs=${RUNS:-10}
large_runs=$((runs / 3 > 3 ? runs / 3 : 3))

# skopeo's blob-info cache (/var/lib/containers) and podman's /run/libpod: tmpfs of this
# mount namespace take them, never the machine's.
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs -o mode=755 tmpfs /run
work=$(mktemp -d /tmp/hutch-pull.XXXXXX)
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
  sleep 0.1
done

# image NAME DIR...: an OCI layout with one layer per directory (tarred with GNU tar, each
# as the root of the image), Cmd ["/bin/true"], pushed as 127.0.0.1:PORT/bench/NAME:1.
image() {
  name=$1
  shift
  layout="$work/layouts/$name"
  umoci init --layout "$layout"
  umoci new --image "$layout:1"
  for dir in "$@"; do
    tar -C "$dir" --numeric-owner -cf "$work/layer.tar" .
    umoci raw add-layer --image "$layout:1" "$work/layer.tar"
  done
  rm -f "$work/layer.tar"
  umoci config --image "$layout:1" --config.cmd /bin/true
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$layout:1" \
    "docker://127.0.0.1:$port/bench/$name:1"
}
image small "$busybox"
sizes="small: $(du -sh "$work/layouts/small/blobs" | cut -f1)"
if [ "${LARGE:-1}" != 0 ]; then
  # Four layers: busybox, then /usr/bin, /usr/share/perl* and /usr/lib/python3* of this
  # machine as /usr/... (a Debian base with a few packages, in size).
  mkdir -p "$work/parts/bin/usr" "$work/parts/perl/usr/share" "$work/parts/python/usr/lib"
  cp -a /usr/bin "$work/parts/bin/usr/"
  cp -a /usr/share/perl* "$work/parts/perl/usr/share/" 2>/dev/null || true
  cp -a /usr/lib/python3* "$work/parts/python/usr/lib/" 2>/dev/null || true
  image large "$busybox" "$work/parts/bin" "$work/parts/perl" "$work/parts/python"
  rm -rf "$work/parts"
  sizes="$sizes, large: $(du -sh "$work/layouts/large/blobs" | cut -f1) compressed, $(du -sh --apparent-size "$work/registry" | cut -f1) in the registry"
fi
echo "pull.sh: images ($sizes)"

podman_ok=
if command -v podman >/dev/null; then
  podman_ok=1
else
  echo "pull.sh: podman is not installed: left out" >&2
fi

# A fresh store each run (hyperfine's --prepare): nothing cached anywhere.
fresh="rm -rf $work/store $work/oci $work/podman"
podman="podman --root $work/podman/root --runroot $work/podman/run --storage-driver vfs"
bench() {  # bench NAME RUNS
  name=$1 n=$2
  ref="127.0.0.1:$port/bench/$name:1"
  set -- \
    -n "hutch-run --image ($name)" \
    "$hutch_run --image $ref --store $work/store --rm true" \
    -n "skopeo copy + hutch-run ($name)" \
    "sh -c 'skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://$ref oci:$work/oci:1 && $hutch_run --image $work/oci:1 --store $work/store --rm true'"
  if [ -n "$podman_ok" ]; then
    set -- "$@" -n "podman pull ($name)" "$podman pull -q --tls-verify=false $ref"
  fi
  hyperfine -N --runs "$n" --warmup 1 --prepare "$fresh" --export-json "$work/pull-$name.json" \
    --export-markdown "$work/pull-$name.md" "$@"
}
if [ -n "${PROFILE:-}" ]; then  # where a large pull's time goes, by system call
  rm -rf "$work/store"
  strace -f -c -o "$out/pull-strace.txt" "$hutch_run" --image "127.0.0.1:$port/bench/large:1" \
    --store "$work/store" --rm true
  rm -rf "$work/store"
fi
bench small "$runs"
[ "${LARGE:-1}" != 0 ] && bench large "$large_runs"

python3 - "$work" "$out" <<'EOF'
import json, os, statistics, sys
work, out = sys.argv[1:3]
results = []
for name in ("small", "large"):
    path = os.path.join(work, f"pull-{name}.json")
    if os.path.exists(path):
        results += json.load(open(path))["results"]
json.dump({"results": results}, open(os.path.join(out, "pull.json"), "w"), indent=1)
rows = ["| pull into a fresh store, then `true` | median | vs hutch-run |", "|---|---:|---:|"]
base = {}
for r in results:
    image = r["command"].rsplit("(", 1)[1].rstrip(")")
    median = statistics.median(r["times"])
    base.setdefault(image, median)
    rows.append(f"| {r['command']} | {median * 1000:.0f} ms | {median / base[image]:.2f}x |")
open(os.path.join(out, "pull.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
