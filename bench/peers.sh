#!/bin/sh
# Times starting the same static `true` from the same root filesystem with hutch-run and its
# peers (crun run, runc run, bwrap, unshare), and running it directly, side by side with
# hyperfine. Needs root and Debian's hyperfine, crun, runc, bubblewrap and util-linux; a
# missing peer is left out (and said so).
#
#   bench/peers.sh HUTCH_RUN TRUE [OUT_DIR]
#
# HUTCH_RUN is the built hutch-run, TRUE the static payload (build/bench/true). RUNS (default
# 200) and WARMUP (20) set hyperfine's counts. NS_FLOOR (default: ns_floor next to TRUE, as
# the build puts it) is bench/ns_floor.c, timed as the floor row. Writes OUT_DIR/peers.json
# and peers.md (default: the current directory).
#
# What each one does (none of the peers gets a cgroup namespace, a user namespace, an overlay
# or a seccomp filter here; hutch-run gets all of them):
#   hutch-run  --rm, and its defaults: user, pid, mount, uts, ipc, net and cgroup namespaces,
#              an overlay root, /proc /dev /sys, masked paths, capabilities dropped, seccomp
#   crun, runc the OCI spec their `spec` command writes: pid, net, ipc, uts and mount
#              namespaces, read-only root, /proc /dev /sys, masked paths. runc gets a
#              relative cgroupsPath, so its cgroups nest under the caller's; crun runs with
#              --cgroup-manager=disabled (on a v1 host its cgroupfs manager would create
#              cgroups at the roots of the hierarchies, outside the caller's)
#   bwrap      --unshare-all (user, pid, net, ipc, uts, cgroup), the root bound in place,
#              /proc and /dev
#   unshare    -Urpfmiun --root: namespaces and a chroot, no /proc, /dev or pivot_root
#   floor      bench/ns_floor.c: hutch-run's seven namespaces and exec, nothing else (no id
#              maps, root, /proc or cgroup) — the least any container command line costs
#
# Everything runs inside one private mount namespace with an empty tmpfs over
# /sys/fs/cgroup/unified: on hybrid hosts whose v2 mount lists a controller, crun refuses to
# start otherwise. The host's own mounts are never touched. On exit nothing is left: no
# state directory, no cgroup, no mount (checked; the script fails if something is).
set -eu

# 77: skipped (CTest's SKIP_RETURN_CODE), with the reason.
[ "$(id -u)" = 0 ] || { echo "peers.sh: needs root" >&2; exit 77; }
[ $# -ge 2 ] || { echo "usage: $0 HUTCH_RUN TRUE [OUT_DIR]" >&2; exit 2; }
hutch_run=$(realpath "$1")
payload=$(realpath "$2")
out=$(realpath "${3:-.}")
ns_floor=${NS_FLOOR:-$(dirname "$payload")/ns_floor}
runs=${RUNS:-200}
warmup=${WARMUP:-20}
command -v hyperfine >/dev/null || { echo "peers.sh: hyperfine is not installed" >&2; exit 77; }

work=$(mktemp -d /tmp/hutch-peers.XXXXXX)
id=hutch-peers-$$
cleanup() {
  for runtime in crun runc; do
    if command -v $runtime >/dev/null && [ -d "$work/$runtime" ]; then
      $runtime --root "$work/$runtime" delete -f "$id" >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The root filesystem: the payload and the directories every runtime mounts on.
root=$work/rootfs
mkdir -p "$root/proc" "$root/dev" "$root/sys" "$root/tmp"
cp "$payload" "$root/true"
chmod 755 "$root" "$root/true"

# The OCI bundle crun and runc share: their default spec, running /true without a terminal.
bundle=$work/bundle
mkdir -p "$bundle"
if command -v crun >/dev/null || command -v runc >/dev/null; then
  spec=$(command -v crun || command -v runc)
  (cd "$bundle" && $spec spec)
  sed -i -e 's|"terminal": true|"terminal": false|' \
    -e 's|"sh"|"/true"|' \
    -e "s|\"path\": \"rootfs\"|\"path\": \"$root\"|" \
    -e "s|\"linux\": {|\"linux\": {\n\t\t\"cgroupsPath\": \"$id\",|" "$bundle/config.json"
fi

cgroup_dirs() { find /sys/fs/cgroup -maxdepth 4 -type d -name "$id*" 2>/dev/null | wc -l; }
mounts_before=$(wc -l </proc/self/mountinfo)
shm_before=$(ls /dev/shm | grep -c '^hutch-' || true)

cmds="$work/commands"
: >"$cmds"
echo "direct|$root/true" >>"$cmds"
echo "hutch-run|$hutch_run --rm --rootfs $root /true" >>"$cmds"
if command -v crun >/dev/null; then
  mkdir -p "$work/crun"
  echo "crun run|crun --root $work/crun --cgroup-manager=disabled run --bundle $bundle $id" >>"$cmds"
else
  echo "peers.sh: crun is not installed, left out" >&2
fi
if command -v runc >/dev/null; then
  mkdir -p "$work/runc"
  echo "runc run|runc --root $work/runc run --bundle $bundle $id" >>"$cmds"
else
  echo "peers.sh: runc is not installed, left out" >&2
fi
if command -v bwrap >/dev/null; then
  echo "bwrap|bwrap --unshare-all --die-with-parent --bind $root / --proc /proc --dev /dev /true" \
    >>"$cmds"
else
  echo "peers.sh: bwrap is not installed, left out" >&2
fi
echo "unshare|unshare -Urpfmiun --root=$root /true" >>"$cmds"
if [ -x "$ns_floor" ]; then
  echo "floor|$ns_floor $root/true" >>"$cmds"
else
  echo "peers.sh: no $ns_floor (bench/ns_floor.c), the floor row is left out" >&2
fi

# One hyperfine run, in a private mount namespace of its own.
cat >"$work/run.sh" <<EOF
#!/bin/sh
set -eu
mount -t tmpfs -o size=4k,mode=755 hutch-peers /sys/fs/cgroup/unified 2>/dev/null || true
set --
while IFS='|' read -r name command; do
  set -- "\$@" --command-name "\$name" "\$command"
done <"$cmds"
exec hyperfine -N --warmup $warmup --runs $runs --style basic \
  --export-json "$out/peers.json" --export-markdown "$out/peers.md" "\$@"
EOF
chmod +x "$work/run.sh"
unshare --mount --propagation private "$work/run.sh"

# Nothing may be left behind.
left=""
[ "$(cgroup_dirs)" = 0 ] || left="$left cgroups:$(cgroup_dirs)"
[ "$(wc -l </proc/self/mountinfo)" = "$mounts_before" ] || left="$left mounts"
[ "$(ls /dev/shm | grep -c '^hutch-' || true)" = "$shm_before" ] || left="$left scratch-dirs"
for runtime in crun runc; do
  if [ -d "$work/$runtime" ] && [ -n "$(ls -A "$work/$runtime")" ]; then
    left="$left $runtime-state"
  fi
done
if [ -n "$left" ]; then
  echo "peers.sh: left behind:$left" >&2
  exit 1
fi
echo "peers.sh: results in $out/peers.json and $out/peers.md; nothing left behind"
