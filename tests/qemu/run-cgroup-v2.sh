#!/bin/sh
# Runs hutch's test binary inside a cgroup v2 (unified) kernel booted under qemu, for the
# machines whose own cgroups are v1. Debian's generic 6.1 kernel is downloaded with apt and
# unpacked into the work directory (never installed on the host); the guest mounts the
# host's / read-only over 9p, switches its root to it and runs the tests with the host's
# libraries.
#
# usage: run-cgroup-v2.sh WORKDIR TEST_BINARY PROBE TEST_ROOTFS INIT [GTEST_FILTER]
# Exits 77 (skipped) when qemu or the kernel package cannot be had.
set -eu
work=$1 binary=$2 probe=$3 test_rootfs=$4 init=$5
filter=${6:-'CGroup*:Namespaces*:Child*:Create*:Exec*:Init*:IoLimits*'}
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || { echo "skipped: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"; exit 77; }
[ "$(uname -m)" = x86_64 ] || { echo "skipped: the v2 harness boots an amd64 kernel"; exit 77; }
mkdir -p "$work"
work=$(readlink -f "$work")
start=$(date +%s)

# 1. The kernel: the newest generic (not -cloud-: it lacks 9p) 6.1 image Debian has.
kernel_dir=$work/kernel
if [ ! -d "$kernel_dir/lib/modules" ]; then
  package=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' |
            awk '{print $1}' | sort -V | tail -n 1)
  [ -n "$package" ] || { echo "skipped: no linux-image-6.1.0-*-amd64-unsigned package (apt-get update?)"; exit 77; }
  rm -rf "$work/download" && mkdir -p "$work/download"
  (cd "$work/download" && apt-get download "$package" >/dev/null 2>&1) ||
    { echo "skipped: could not download $package"; exit 77; }
  rm -rf "$kernel_dir.tmp" && dpkg-deb -x "$work"/download/*.deb "$kernel_dir.tmp"
  rm -rf "$kernel_dir" && mv "$kernel_dir.tmp" "$kernel_dir" && rm -rf "$work/download"
fi
kver=$(ls "$kernel_dir/lib/modules" | head -n 1)
vmlinuz=$kernel_dir/boot/vmlinuz-$kver

# 2. The initramfs: busybox, the modules for 9p over virtio, and /init.
initramfs=$work/initramfs
rm -rf "$initramfs"
mkdir -p "$initramfs/bin" "$initramfs/lib/modules/$kver" "$initramfs/proc" "$initramfs/sys" \
         "$initramfs/dev" "$initramfs/host"
cp /bin/busybox "$initramfs/bin/busybox"
for applet in sh mount mkdir modprobe switch_root; do
  ln -s busybox "$initramfs/bin/$applet"
done
moddir=$kernel_dir/lib/modules/$kver
copy_module() {  # copies a module and what it depends on
  file=$(find "$moddir/kernel" -name "$1.ko*" | head -n 1)
  [ -n "$file" ] || return 0
  target=$initramfs/lib/modules/$kver/${file#"$moddir/"}
  [ -e "$target" ] && return 0
  mkdir -p "$(dirname "$target")" && cp "$file" "$target"
  deps=$(tr '\0' '\n' < "$file" | sed -n 's/^depends=//p' | tr ',' ' ')
  for dep in $deps; do copy_module "$dep"; done
}
# ext4 asks the crypto API for crc32c at mount time, which no module dependency says.
for m in virtio_pci virtio_blk 9pnet_virtio 9p overlay ext4 crc32c_generic; do
  copy_module "$m"
done
busybox depmod -b "$initramfs" "$kver"

cat > "$initramfs/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts /dev/pts
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
modprobe virtio_pci; modprobe virtio_blk; modprobe 9pnet_virtio; modprobe 9p; modprobe overlay
modprobe crc32c_generic 2>/dev/null; modprobe ext4 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# The root cgroup may enable controllers for its children while holding processes.
for c in cpu cpuset io memory pids; do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host
mount --rbind /proc /host/proc
mount --rbind /sys /host/sys
mount --rbind /dev /host/dev
mount -t tmpfs tmpfs /host/tmp
mount -t tmpfs tmpfs /host/run
mkdir /host/run/results
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /host/run/results
# switch_root, not chroot: a chrooted process may not create user namespaces.
exec switch_root /host /bin/sh -c '
  cd /tmp && /bin/sh /run/results/command > /run/results/log 2>&1
  echo $? > /run/results/rc
  sync
  echo o > /proc/sysrq-trigger
  sleep 10'
INIT
chmod +x "$initramfs/init"
(cd "$initramfs" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.cpio.gz"

# 3. Two disks for the I/O limit tests (tests/io_test.cpp): vda blank, vdb with an MBR of
# one partition (type 0x83, sectors 2048 to the end), so vdb1 is a partition of vdb.
rm -f "$work/disk.img" "$work/parted.img"
truncate -s 256M "$work/disk.img"
truncate -s 64M "$work/parted.img"
poke() { printf "$2" | dd of="$work/parted.img" bs=1 seek="$1" conv=notrunc 2>/dev/null; }
poke 450 '\203'                # 0x1be + 4: the type
poke 454 '\000\010\000\000'    # 0x1be + 8: the first sector, 2048 (little-endian)
poke 458 '\000\370\001\000'    # 0x1be + 12: 129024 sectors
poke 510 '\125\252'            # the signature 0x55aa

# 4. Boot and run.
results=$work/results
rm -rf "$results" && mkdir -p "$results"
# The binaries and the test snapshots travel on the results share: the build tree may sit
# below /tmp, which the guest covers with its own tmpfs.
mkdir -p "$results/bin"
cp "$binary" "$results/bin/tests" && cp "$probe" "$results/bin/probe"
cp "$init" "$results/bin/hutch-init"
cp -a "$test_rootfs" "$results/rootfs"
chmod -R a+rX "$results"
# As root, then the rootless cases as nobody (the root cgroup is not delegated to it).
# A watchdog: a run that takes more than 10 minutes (the whole suite takes 1-2) is stuck;
# the log then gets every task's state and kernel stack, and the run fails.
cat > "$results/command" <<COMMAND
export HUTCH_PROBE=/run/results/bin/probe HUTCH_TEST_ROOTFS=/run/results/rootfs
export HUTCH_INIT=/run/results/bin/hutch-init
export HUTCH_TEST_BLOCK_DEVICE=/dev/vda HUTCH_TEST_PARTITION=/dev/vdb1
watch() {
  "\$@" & pid=\$!
  n=0
  while kill -0 \$pid 2>/dev/null && [ \$n -lt 600 ]; do sleep 1; n=\$((n + 1)); done
  if kill -0 \$pid 2>/dev/null; then
    echo "STUCK after \$n s: every task's state and kernel stack follow"
    for t in /proc/[0-9]*/task/[0-9]*; do
      echo "== \$t \$(cat \$t/comm) \$(grep -E '^(State|PPid)' \$t/status | tr '\n' ' ')"
      cat \$t/stack 2>/dev/null
    done
    kill -9 \$pid
    return 124
  fi
  wait \$pid
}
watch /run/results/bin/tests --gtest_filter='$filter' --gtest_color=no; root=\$?
watch setpriv --reuid=nobody --regid=nogroup --clear-groups \
  /run/results/bin/tests --gtest_filter='CGroupRootless*:Namespaces.Rootless*' --gtest_color=no
rootless=\$?
[ \$root = 0 ] && [ \$rootless = 0 ]
COMMAND
timeout 1500 "$qemu" -machine q35 -cpu max -smp 2 -m 2048 -nographic -no-reboot \
  -kernel "$vmlinuz" -initrd "$work/initramfs.cpio.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable systemd.unified_cgroup_hierarchy=1" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$results,mount_tag=results,security_model=none,multidevs=remap" \
  -drive "file=$work/disk.img,if=virtio,format=raw" \
  -drive "file=$work/parted.img,if=virtio,format=raw" \
  > "$work/console.log" 2>&1 || true
rm -f "$work/disk.img" "$work/parted.img"
cat "$results/log" 2>/dev/null || { echo "the guest produced no log; console:"; tail -n 40 "$work/console.log"; }
rc=$(cat "$results/rc" 2>/dev/null || echo 1)
echo "cgroup v2 run under qemu ($kver): exit $rc in $(( $(date +%s) - start )) s"
exit "$rc"
