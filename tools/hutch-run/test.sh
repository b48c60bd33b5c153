#!/bin/sh
# Drives hutch-run as a user would and checks what comes out.
# usage: run_test.sh HUTCH_RUN BUSYBOX_ROOTFS
set -u
run=$1 root=$2
. "$(dirname "$0")/../../tests/checks.sh"
export XDG_RUNTIME_DIR=$(mktemp -d)
chmod 755 "$XDG_RUNTIME_DIR"
trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT

out=$("$run" --rootfs "$root" --rm --hostname box -e GREETING=hi -- sh -c 'echo $GREETING from $(hostname) as $(id -u), pid $$')
check "runs the command" "hi from box as 0, pid 1" "$out"
"$run" --rootfs "$root" --rm sh -c 'exit 3'; check "exit code" 3 $?
"$run" --rootfs "$root" --rm no-such-command 2>/dev/null; check "not found" 127 $?
"$run" --rootfs "$root" --rm /etc/passwd 2>/dev/null; check "not executable" 126 $?
# SIGTERM to hutch-run reaches the command (PID 1 inside, so only through its handler).
fifo=$(mktemp -u) && mkfifo "$fifo"
"$run" --rootfs "$root" --rm -- sh -c 'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done' >"$fifo" &
pid=$!
read -r ready <"$fifo"
kill -TERM $pid; wait $pid; check "SIGTERM forwarded" "ready 42" "$ready $?"
rm -f "$fifo"
"$run" --bogus x 2>/dev/null; check "bad flag" 125 $?
err=$("$run" --rootfs "$root" --rm --bogus x 2>&1 >/dev/null)
check "bad flag message" "hutch-run: unknown option --bogus|Try 'hutch-run --help' for more information." "$(echo "$err" | paste -sd'|')"
"$run" --rootfs /no/such/dir true 2>/dev/null; check "missing rootfs" 125 $?
"$run" --help | grep -q -- '--volume'; check "help lists flags" 0 $?

# Every malformed value: exit 125 and a message naming the flag (nothing wraps, nothing is
# taken silently, nothing aborts).
refused() {  # refused NAME TEXT ARGS...: exit 125 with TEXT in the message
  name=$1 text=$2
  shift 2
  err=$("$run" "$@" 2>&1 >/dev/null)
  rc=$?
  case "$err" in *"$text"*) found=yes ;; *) found="no: $err" ;; esac
  check "$name" "125 yes" "$rc $found"
}
refused "memory overflow" "--memory 99999999999999999999" --rootfs "$root" --memory 99999999999999999999 true
refused "memory wrap" "--memory 17179869185G" --rootfs "$root" --memory 17179869185G true
refused "memory too small" "at least 6M" --rootfs "$root" --memory 16k true
refused "ulimit overflow" "--ulimit nofile=99999999999999999999" --rootfs "$root" --ulimit nofile=99999999999999999999 true
refused "cpus nan" "--cpus nan" --rootfs "$root" --cpus nan true
refused "volume on /" "--volume vol:/" --rootfs "$root" -v vol:/ true
refused "relative workdir" "--workdir etc" --rootfs "$root" -w etc true
refused "flag after rootfs" "unknown option --bogus" --rootfs "$root" --bogus true
ln -s loop "$XDG_RUNTIME_DIR/loop" 2>/dev/null
refused "image symlink loop" "loop" --image "$XDG_RUNTIME_DIR/loop" --rm true
refused "image path too long" "--image" --image "$(printf '%5000s' | tr ' ' a)" --rm true

# Runs that fail without --rm leave nothing where kept writes go.
"$run" --rootfs "$root" -v /no/such/volume:/v true 2>/dev/null
"$run" --rootfs "$root" -w /no/such/dir true 2>/dev/null
"$run" --rootfs "$root" no-such-command 2>/dev/null
check "failed runs leave nothing" "" "$(ls -A "$XDG_RUNTIME_DIR/hutch-run" 2>/dev/null)"

# Kept writes never go where another user could swap the container's root.
if [ "$(id -u)" = 0 ]; then
  foreign=$(mktemp -d) && chown nobody "$foreign"
  err=$(XDG_RUNTIME_DIR=$foreign "$run" --rootfs "$root" true 2>&1 >/dev/null)
  rc=$?
  case "$err" in *"uid 65534"*) found=yes ;; *) found="no: $err" ;; esac
  check "foreign runtime dir" "125 yes" "$rc $found"
  check "nothing made in it" "" "$(ls -A "$foreign")"
  rm -rf "$foreign"
fi

# Volumes, read-only root, workdir.
data=$(mktemp -d) && echo data > "$data/file"
out=$("$run" --rootfs "$root" --rm --read-only -v "$data:/data:ro" -v "$data:/rw" -w /data -- \
      sh -c 'cat file; touch /x 2>/dev/null || echo ro-root; touch /data/y 2>/dev/null || echo ro-vol; echo w > /rw/z && pwd')
check "volumes and read-only" "data|ro-root|ro-vol|/data" "$(echo "$out" | paste -sd'|')"
check "rw volume written" "w" "$(cat "$data/z")"
rm -rf "$data"

# Without --rm the writes are kept and their place is told; the rootfs is never written.
msg=$("$run" --rootfs "$root" -- sh -c 'echo kept > /kept' 2>&1)
upper=${msg#*kept in }
check "writes kept" "kept" "$(cat "$upper/kept" 2>/dev/null)"
check "rootfs untouched" "no" "$([ -e "$root/kept" ] && echo yes || echo no)"

# --init: PID 1 is hutch-init, the command its child; signals reach the command.
check "init" "2 1 hutch-init" "$("$run" --rootfs "$root" --rm --init -- sh -c 'echo $$ $PPID $(tr "\0" " " < /proc/1/cmdline | cut -d" " -f1)')"
"$run" --rootfs "$root" --rm --init -- sh -c 'kill -KILL $$'; check "init signal death" 137 $?

# --net none has only loopback; --user resolves through the rootfs's /etc/passwd.
check "net none" "lo" "$("$run" --rootfs "$root" --rm ls /sys/class/net)"
check "user" "0 0" "$("$run" --rootfs "$root" --rm --user root sh -c 'echo $(id -u) $(id -g)')"
if [ "$(id -u)" = 0 ]; then
  check "numeric user" "1000 1001" "$("$run" --rootfs "$root" --rm --user 1000:1001 sh -c 'echo $(id -u) $(id -g)')"
fi

# Security: docker's defaults, --cap-add/--cap-drop, --ulimit, the seccomp profile.
status() { "$run" --rootfs "$root" --rm "$@" -- grep -E "^$field:" /proc/self/status | cut -f2; }
field=CapBnd; check "default capabilities" "00000000a80425fb" "$(status)"
check "cap-drop ALL, cap-add" "0000000000002000" "$(status --cap-drop ALL --cap-add NET_RAW)"
field=Seccomp; check "seccomp on" "2" "$(status)"
check "seccomp=unconfined" "0" "$(status --security-opt seccomp=unconfined)"
"$run" --rootfs "$root" --rm --cap-add CAP_FLY true 2>/dev/null; check "unknown capability" 125 $?
check "ulimit" "64 128" "$("$run" --rootfs "$root" --rm --ulimit nofile=64:128 -- sh -c 'echo $(ulimit -Sn) $(ulimit -Hn)')"
check "mount denied" "denied" "$("$run" --rootfs "$root" --rm -- sh -c 'mount -t tmpfs none /mnt 2>/dev/null || echo denied')"

# Limits (cgroups need root on v1 machines).
if [ "$(id -u)" = 0 ]; then
  "$run" --rootfs "$root" --rm --memory 16M -- sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a)' 2>/dev/null
  check "memory limit OOM" 137 $?
  # Counted outside: inside, the fork that fails may be the pipeline's own, not a sleep's.
  out=$("$run" --rootfs "$root" --rm --pids 5 -- sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; true' 2>&1 | grep -c "fork\|resource")
  check "pids limit" "yes" "$([ "${out:-0}" -ge 1 ] && echo yes || echo no)"
fi

# Disk I/O limits, docker's flags: a loop device of the test's own with ext4 on it, mounted in
# a mount namespace of the test's (unshare), its directory bound in and named as the device.
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null; then
  io=$(mktemp -d) && truncate -s 64M "$io/disk.img"
  loop=$(losetup --find --show "$io/disk.img")
  mkfs.ext4 -q -F "$loop" && mkdir "$io/mnt"
  out=$(unshare -m --propagation private sh -c '
    mount "$1" "$2/mnt" || exit 9
    "$3" --rootfs "$4" --rm -v "$2/mnt:/data" --device-write-bps "$2/mnt:2mb" \
      --device-read-iops "$1:100" -- sh -c "
        time -p dd if=/dev/zero of=/data/f bs=1M count=4 oflag=direct
        time -p dd if=/data/f of=/dev/null bs=4k count=200 iflag=direct" 2>&1 |
      sed -n "s/^real //p" | paste -sd" "' sh "$loop" "$io" "$run" "$root")
  # 4 MiB at 2 MiB/s, 200 reads at 100/s: about 2 s each (±30%).
  held=$(echo "$out" | awk '{ print ($1 >= 1.4 && $1 <= 2.6 && $2 >= 1.4 && $2 <= 2.6) ? "yes" : "no: " $0 }')
  check "device-write-bps and device-read-iops held" "yes" "$held"
  refused "device rate 0" "--device-write-bps $loop:0" --rootfs "$root" --device-write-bps "$loop:0" true
  refused "device not a block device" "needs a block device" --rootfs "$root" --device-read-bps /dev/null:1mb true
  refused "device on proc" "it is on proc" --rootfs "$root" --device-read-bps /proc:1mb true
  refused "device missing" "No such file" --rootfs "$root" --device-write-iops /dev/no-such-disk:10 true
  refused "blkio weight range" "--blkio-weight 5" --rootfs "$root" --blkio-weight 5 true
  losetup -d "$loop"
  rm -rf "$io"
fi

# --image: an OCI layout written by umoci from the busybox root, run with its config.
if command -v umoci >/dev/null; then
  img="$XDG_RUNTIME_DIR/image" bundle="$XDG_RUNTIME_DIR/bundle" store="$XDG_RUNTIME_DIR/store"
  rootless=; [ "$(id -u)" = 0 ] || rootless=--rootless
  (set -e
   umoci init --layout "$img"; umoci new --image "$img:box"
   umoci unpack $rootless --image "$img:box" "$bundle"
   cp -a "$root/." "$bundle/rootfs/"
   umoci repack --image "$img:box" "$bundle"
   umoci config --image "$img:box" --config.env GREETING=from-image --config.workingdir /etc \
     --config.entrypoint /bin/sh --config.cmd -c --config.cmd 'echo $GREETING in $(pwd)') >/dev/null 2>&1
  check "image default command" "from-image in /etc" "$("$run" --image "$img:box" --store "$store" --rm)"
  check "image with a command" "own" "$("$run" --image "$img:box" --store "$store" --rm -- -c 'echo own')"
  check "image env override" "changed in /" "$("$run" --image "$img:box" --store "$store" --rm -e GREETING=changed -w / )"
  "$run" --image "$img:nope" --store "$store" --rm 2>/dev/null; check "unknown tag" 125 $?
fi

# -t: a terminal with the caller's window size, Ctrl-C reaches the command.
if command -v script >/dev/null; then
  out=$(sleep 2 | script -qec "stty rows 31 cols 97; $run --rootfs $root --rm -t -- sh -c 'test -t 0 && echo tty; stty size'" /dev/null | tr -d '\r\000')
  check "tty" "tty|31 97" "$(echo "$out" | grep -v '^$' | paste -sd'|')"
fi

# Networks: the flags' values, then a bridged container with a published port, in a network
# namespace (and a mount namespace with its own /run) that plays the host.
refused "publish without a host port" "give the host port too" --rootfs "$root" -p 80 true
refused "publish port range" "ports are numbers" --rootfs "$root" -p 70000:80 true
refused "publish protocol" "tcp or udp" --rootfs "$root" -p 8080:80/sctp true
refused "publish bad ip" "not an IP" --rootfs "$root" -p 1.2.3:8080:80 true
refused "publish on no network" "need a network" --rootfs "$root" -p 8080:80 true
refused "bandwidth zero" "--bandwidth 0" --rootfs "$root" --bandwidth 0 true
refused "bandwidth garbage" "--bandwidth fast" --rootfs "$root" --bandwidth fast true
refused "network name" "--network a b" --rootfs "$root" --network "a b" true
refused "network unknown" "no network of this name" --rootfs "$root" --network nosuchnet true
refused "add-host" "--add-host db" --rootfs "$root" --add-host db true
refused "dns" "--dns x" --rootfs "$root" --dns x true
"$run" --help | grep -q -- "--network MODE.*bridge"; check "help names the networks" 0 $?
if [ "$(id -u)" = 0 ] && [ -x /usr/lib/cni/bridge ] && command -v iptables >/dev/null; then
  out=$(unshare -mn sh -c '
    run=$1 root=$2
    mount -t tmpfs tmpfs /run && mount -t sysfs sysfs /sys && ip link set lo up
    "$run" --rootfs "$root" --rm --network bridge -p 127.0.0.1:18280:80 --hostname web \
      --add-host db:10.1.2.3 --dns 192.0.2.53 -- sh -c "mkdir -p /tmp/w && cat /etc/hosts \
      /etc/resolv.conf > /tmp/w/index.html && httpd -p 80 -h /tmp/w && sleep 3" &
    pid=$!
    for i in $(seq 50); do
      got=$("$root/bin/busybox" wget -q -O - http://127.0.0.1:18280/ 2>/dev/null) && break
      sleep 0.1
    done
    wait $pid
    echo "rc=$?"
    echo "$got"
    echo "veths=$(ip -o link | grep -c veth) rules=$(iptables-save | grep -c hutch-) state=$(ls -A /run/hutch/net | grep -c hutch-)"
  ' sh "$run" "$root" 2>&1)
  contains "bridge: exit" "rc=0" "$out"
  contains "bridge: published port" "10.77.0." "$out"
  contains "bridge: own name" "	web" "$out"
  contains "bridge: added host" "10.1.2.3	db" "$out"
  contains "bridge: dns" "nameserver 192.0.2.53" "$out"
  contains "bridge: nothing left" "veths=0 rules=0 state=0" "$out"
fi

report hutch-run
