#!/bin/sh
# TLS to a registry, through hutch-run: a registry with a certificate of the test's own CA
# is refused (not verified), trusted through --cert-dir or a certs.d directory, and reached
# without verification only with --tls-verify=false; a plain-HTTP registry that is not on
# loopback is refused unless --tls-verify=false. Loopback registries may always be reached
# insecurely (docker's rule), so the registries listen on 10.99.0.1, an address this script
# gives `lo` in a network namespace of its own: nothing reaches the machine's network.
#
#   tests/registry/tls_test.sh HUTCH_RUN BUSYBOX_ROOTFS
set -u
[ "$(id -u)" = 0 ] || { echo "tls_test.sh: needs root (a network namespace)"; exit 77; }
for tool in docker-registry skopeo umoci openssl ip tar python3; do
  command -v $tool >/dev/null || { echo "tls_test.sh: $tool is not installed"; exit 77; }
done
if [ -z "${HUTCH_TLS_PRIVATE:-}" ]; then
  HUTCH_TLS_PRIVATE=1 exec unshare --net --mount --propagation private "$0" "$@"
fi
run=$(realpath "$1")
busybox=$(realpath "$2")
. "$(dirname "$0")/../checks.sh"

work=$(mktemp -d /tmp/hutch-tls.XXXXXX)
pids=
cleanup() {
  for pid in $pids; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
# skopeo (as root) keeps a blob-info cache in /var/lib/containers: a tmpfs of this mount
# namespace takes it.
mount -t tmpfs tmpfs /var/lib
ip link set lo up
ip addr add 10.99.0.1/32 dev lo

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
  -subj /CN=hutch-test-registry -addext "subjectAltName=IP:10.99.0.1" >/dev/null 2>&1
registry() {  # registry PORT [TLS]
  cat >"$work/registry-$1.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/data-$1
http:
  addr: 10.99.0.1:$1
EOF
  if [ -n "${2:-}" ]; then
    printf '  tls:\n    certificate: %s\n    key: %s\n' "$work/cert.pem" "$work/key.pem" \
      >>"$work/registry-$1.yml"
  fi
  docker-registry serve "$work/registry-$1.yml" >"$work/registry-$1.log" 2>&1 &
  pids="$pids $!"
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('10.99.0.1', $1))" 2>/dev/null && break
    sleep 0.1
  done
}
registry 5443 tls
registry 5080

umoci init --layout "$work/layout" >/dev/null
umoci new --image "$work/layout:1"
tar -C "$busybox" -cf "$work/layer.tar" .
umoci raw add-layer --image "$work/layout:1" "$work/layer.tar"
umoci config --image "$work/layout:1" --config.cmd /bin/true
for port in 5443 5080; do
  HOME=$work skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$work/layout:1" \
    "docker://10.99.0.1:$port/test/app:1" || echo "skopeo push to $port failed"
done

pull() {  # pull ARGS...: hutch-run pull's exit status and, after a |, its output
  out=$(HOME=$work DOCKER_CONFIG=$work REGISTRY_AUTH_FILE=/nonexistent "$run" pull --store "$work/store" "$@" 2>&1)
  echo "$? | $out"
}

r=$(pull 10.99.0.1:5443/test/app:1)
contains "an unknown CA is refused" "125 |" "$r"
contains "the refusal names the certificate" "certificate" "$r"
test ! -d "$work/store/refs" || test -z "$(ls "$work/store/refs/sha256")"
check "nothing kept after the refusal" 0 $?

mkdir -p "$work/certs"
cp "$work/cert.pem" "$work/certs/ca.crt"
r=$(pull --cert-dir "$work/certs" 10.99.0.1:5443/test/app:1)
contains "trusted through --cert-dir" "0 | " "$r"
contains "and the digest printed" "sha256:" "$r"
rm -rf "$work/store"

# The default place: /etc/containers/certs.d/HOST:PORT. A private tmpfs (in this script's
# own mount namespace) over certs.d, or over /etc/containers where the host has no certs.d:
# nothing is made in the host's /etc.
certs_d=/etc/containers/certs.d
over=$certs_d
[ -d "$certs_d" ] || over=/etc/containers
if [ -d "$over" ]; then
  mount -t tmpfs tmpfs "$over"
  mkdir -p "$certs_d/10.99.0.1:5443"
  cp "$work/cert.pem" "$certs_d/10.99.0.1:5443/ca.crt"
  r=$(pull 10.99.0.1:5443/test/app:1)
  contains "trusted through certs.d" "0 | " "$r"
  umount "$over"
  rm -rf "$work/store"
else
  echo "tls_test.sh: no /etc/containers to lay a private certs.d over: that check is left out"
fi

r=$(pull --tls-verify=false 10.99.0.1:5443/test/app:1)
contains "--tls-verify=false skips the verification" "0 | " "$r"
rm -rf "$work/store"

r=$(pull 10.99.0.1:5080/test/app:1)
contains "plain HTTP off loopback is refused" "125 |" "$r"
r=$(pull --tls-verify=false 10.99.0.1:5080/test/app:1)
contains "and taken with --tls-verify=false" "0 | " "$r"

report tls_test
