#!/bin/sh
# Builds the test snapshots (no download): OUT/busybox, a minimal rootfs from Debian's
# busybox-static plus the probe, the escape program and a setuid-root copy of the probe, and
# OUT/probe, a root holding only the static test probe.
# usage: make_rootfs.sh OUT PROBE ESCAPE
set -eu
out=$1 probe=$2 escape=$3
rm -rf "$out.tmp"
mkdir -p "$out.tmp/busybox/bin" "$out.tmp/busybox/etc" "$out.tmp/busybox/tmp" "$out.tmp/probe"
cp /bin/busybox "$out.tmp/busybox/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$out.tmp/busybox/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$out.tmp/busybox/etc/passwd"
echo "root:x:0:" > "$out.tmp/busybox/etc/group"
echo "snapshot" > "$out.tmp/busybox/etc/marker"
cp "$probe" "$out.tmp/busybox/bin/probe"
cp "$escape" "$out.tmp/busybox/bin/escape"
cp "$probe" "$out.tmp/probe/probe"
chmod -R a+rX "$out.tmp"
cp "$probe" "$out.tmp/busybox/bin/suid-probe"
chmod 4755 "$out.tmp/busybox/bin/suid-probe"
rm -rf "$out"
mv "$out.tmp" "$out"
