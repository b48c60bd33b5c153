#!/bin/sh
# sandbox.sh CMD [ARG...]: runs CMD in a private mount namespace (with a /run of its own) and in a cgroup namespace
# rooted at a new cgroup below this process's own in every hierarchy, with cgroupfs mounted
# afresh there. An engine that puts its cgroups "at the root" (podman's /libpod_parent,
# containerd's /default, dockerd's /docker) puts them inside that cgroup: the machine's own
# cgroups are never written. Everything left in the cgroup is killed and it is removed after.
set -eu
if [ "${1:-}" = "--inside" ]; then
  shift
  layout=$1
  shift
  # The hierarchies again, each showing the new cgroup as its root; links as they were.
  mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
  while IFS='|' read -r kind point type options; do
    case $kind in
      mount) mkdir -p "$point" && mount -t "$type" -o "$options" "$type" "$point" ;;
      link) ln -s "$type" "$point" ;;
    esac
  done <"$layout"
  # A /run of its own: engines and runtimes keep their state there (/run/containerd,
  # /run/hutch-runtime, ...), never in the machine's.
  mount -t tmpfs -o mode=755 tmpfs /run
  # HUTCH_SANDBOX_NO_UNIFIED=1: an empty tmpfs over a hybrid host's v2 mount, which crun 1.8
  # refuses (bench/engines.sh times it beside the others).
  if [ "${HUTCH_SANDBOX_NO_UNIFIED:-}" = 1 ] && [ -d /sys/fs/cgroup/unified ]; then
    mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup/unified
  fi
  # A subreaper that reaps whatever is orphaned below it at once (as an init would): engines
  # check their daemonized helpers (conmon, shims) by pid, and a zombie looks alive.
  exec python3 "$(dirname "$0")/../reaper.py" "$@"
fi

here=$(mktemp -d)
name=hutch-engines-$$
trap 'status=$?; python3 - "$here/dirs" <<"EOF"
import os, signal, sys, time
dirs = [d for d in open(sys.argv[1]).read().split() if d]
def procs():
    found = set()
    for d in dirs:
        for root, _, _ in os.walk(d):
            try:
                found |= {int(p) for p in open(root + "/cgroup.procs").read().split()}
            except OSError:
                pass
    return found
for _ in range(100):
    left = procs()
    if not left:
        break
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.05)
for d in dirs:
    for root, subdirs, _ in os.walk(d, topdown=False):
        for _ in range(100):
            try:
                os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
EOF
rm -rf "$here"; exit $status' EXIT

# Each hierarchy: where it is mounted, its type and options, and this process's cgroup in it.
python3 - "$name" "$here/dirs" "$here/layout" <<'EOF'
import os, sys
name, dirs_file, layout_file = sys.argv[1:]
own = {}
for line in open("/proc/self/cgroup"):
    _, controllers, path = line.rstrip("\n").split(":", 2)
    own[controllers] = path
dirs, layout = [], []
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    sep = fields.index("-")
    point, fstype, options = fields[4], fields[sep + 1], fields[sep + 3]
    if fstype not in ("cgroup", "cgroup2") or not point.startswith("/sys/fs/cgroup/"):
        continue
    if fstype == "cgroup2":
        key, mount_options = "", "rw"
    else:
        names = [o for o in options.split(",") if o not in ("rw", "ro") and "=" not in o or o.startswith("name=")]
        key = ",".join(names)
        mount_options = ",".join(["none"] + names if any(n.startswith("name=") for n in names) else names)
    if key not in own:
        continue
    d = point + own[key].rstrip("/") + "/" + name
    os.mkdir(d)
    dirs.append(d)
    if "cpuset" in key.split(","):  # a v1 cpuset takes no process until it has cpus and mems
        for f in ("cpuset.cpus", "cpuset.mems"):
            open(d + "/" + f, "w").write(open(os.path.dirname(d) + "/" + f).read())
    layout.append(f"mount|{point}|{fstype}|{mount_options}")
for entry in os.listdir("/sys/fs/cgroup"):
    path = "/sys/fs/cgroup/" + entry
    if os.path.islink(path):
        layout.append(f"link|{path}|{os.readlink(path)}|")
open(dirs_file, "w").write("\n".join(dirs) + "\n")
open(layout_file, "w").write("\n".join(layout) + "\n")
EOF

# Into the new cgroup, then the namespaces (a cgroup namespace is rooted where it is made).
sh -ec 'for d in $(cat "$1"); do echo $$ >"$d/cgroup.procs"; done; shift; exec "$@"' sh \
  "$here/dirs" unshare -m -C --propagation private "$0" --inside "$here/layout" "$@"
