#!/bin/sh
# Times containers with a network: `hutch-run --network bridge` (hutch's CNI list: bridge,
# host-local, portmap, firewall, bandwidth) against `--network none`, with a published port,
# and against `podman run --network bridge` with crun on the same CNI plugins; then TCP
# throughput out of a bridged container against the same over a bare veth pair. Needs root,
# hyperfine, the CNI plugins, iptables and python3; podman and crun are optional (left out,
# and said so, when missing).
#
#   bench/network.sh HUTCH_RUN BUSYBOX_ROOTFS [OUT_DIR]
#
# Everything runs in a network namespace and a mount namespace made for it, playing the host
# (its own /run, its own sysfs, loopback only): bridges, NAT rules and qdiscs stay there; and
# in a cgroup namespace below the caller's cgroup, removed after.
# RUNS (default 50) sets hyperfine's count, BYTES (512 MiB) the transfer. Writes OUT_DIR/network.json and network.md.
set -eu
[ "$(id -u)" = 0 ] || { echo "network.sh: needs root" >&2; exit 77; }
[ $# -ge 2 ] || { echo "usage: $0 HUTCH_RUN BUSYBOX_ROOTFS [OUT_DIR]" >&2; exit 2; }
for tool in hyperfine iptables python3; do
  command -v $tool >/dev/null || { echo "network.sh: needs $tool" >&2; exit 77; }
done
[ -x /usr/lib/cni/bridge ] || { echo "network.sh: needs containernetworking-plugins" >&2; exit 77; }
# tests/engines/sandbox.sh gives a mount namespace with a /run of its own and a cgroup
# namespace rooted at a new cgroup (podman's cgroupfs manager puts its /libpod_parent there,
# never in the machine's own cgroups), with crun's refused v2 mount hidden; unshare -n the
# network namespace.
if [ "${HUTCH_NET_BENCH_INSIDE:-}" != 1 ]; then
  HUTCH_NET_BENCH_INSIDE=1 HUTCH_SANDBOX_NO_UNIFIED=1 exec \
    "$(dirname "$0")/../tests/engines/sandbox.sh" unshare -n "$0" "$@"
fi
run=$(realpath "$1") root=$(realpath "$2") out=$(realpath "${3:-.}")
runs=${RUNS:-50}
s=$(mktemp -d)
trap 'rm -rf "$s"' EXIT
# A sysfs of this network namespace, with the cgroup mounts carried over (podman needs them).
mkdir "$s/cgroup"
mount --rbind /sys/fs/cgroup "$s/cgroup"
mount -t sysfs sysfs /sys
mount --move "$s/cgroup" /sys/fs/cgroup
# podman's blob-info cache (/var/lib/containers) and the CNI leases (/var/lib/cni): a /var/lib
# of this mount namespace takes them, never the machine's.
mount -t tmpfs -o mode=755 tmpfs /var/lib
ip link set lo up

set -- hyperfine -N --runs "$runs" --warmup 5 --export-json "$out/network.json" \
  --export-markdown "$out/network.md" \
  -n "none" "$run --rootfs $root --rm --network none /bin/true" \
  -n "bridge" "$run --rootfs $root --rm --network bridge /bin/true" \
  -n "bridge -p" "$run --rootfs $root --rm --network bridge -p 127.0.0.1:18500:80 /bin/true"
if command -v podman >/dev/null && command -v crun >/dev/null; then
  # podman's state in the scratch directory, its CNI networks in their own directory.
  cat >"$s/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"
[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "$s/cni"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
tmp_dir = "$s/tmp"
EOF
  cat >"$s/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$s/storage"
runroot = "$s/run"
EOF
  export CONTAINERS_CONF="$s/containers.conf" CONTAINERS_STORAGE_CONF="$s/storage.conf"
  export CONTAINERS_REGISTRIES_CONF=/dev/null XDG_CONFIG_HOME="$s/config"
  tar -C "$root" -cf "$s/rootfs.tar" .
  podman import -q "$s/rootfs.tar" localhost/hutch-bench:latest >/dev/null
  set -- "$@" -n "podman+crun bridge" \
    "podman run --rm --network bridge localhost/hutch-bench /bin/true"
else
  echo "network.sh: podman or crun missing: left out" >&2
fi
"$@" || { echo "network.sh: a run failed; podman says:" >&2; podman run --rm --network bridge localhost/hutch-bench /bin/true; exit 1; }

# Throughput: 512 MiB (BYTES) out of a bridged container to the host, then out of a namespace on a
# bare veth pair (no bridge, no NAT, no plugins).
receive() {  # receive IP: MB/s of what the server at IP:9000 sends
  python3 - "$1" <<'EOF'
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection((sys.argv[1], 9000)); break
    except OSError:
        time.sleep(0.05)
got, start = 0, time.time()
while True:
    b = s.recv(1 << 20)
    if not b: break
    got += len(b)
print("%.0f" % (got / (time.time() - start) / 1e6))
EOF
}
bytes=${BYTES:-536870912}
"$run" --rootfs "$root" --rm --network bridge -- sh -c \
  "ip -o -4 addr show eth0 >&2; head -c $bytes /dev/zero | nc -l -p 9000" 2>"$s/addr" &
sleep 0.5
ip=$(grep -o '10\.77\.0\.[0-9]*' "$s/addr" | head -1)
bridge=$(receive "$ip")
wait
ip link add hb0 type veth peer name hb1
unshare -n sh -c "sleep 0.3; ip link set lo up; ip addr add 10.99.0.2/24 dev hb1; ip link set hb1 up;
  head -c $bytes /dev/zero | '$root/bin/busybox' nc -l -p 9000" &
sleep 0.1
ip link set hb1 netns $(pgrep -n -f "sleep 0.3" | head -1) 2>/dev/null || ip link set hb1 netns $!
ip addr add 10.99.0.1/24 dev hb0 && ip link set hb0 up
sleep 0.3
veth=$(receive 10.99.0.2)
wait
ip link del hb0 2>/dev/null || true
echo
echo "TCP out of the container, $((bytes >> 20)) MiB: bridge $bridge MB/s, bare veth $veth MB/s" \
  "($(python3 -c "print(round(100*$bridge/$veth))")%)" | tee -a "$out/network.md"
