#!/usr/bin/env bash
# Podman 4.3 with its CNI backend runs two containers on a network whose conflist uses our
# bridge + host-local + portmap + dns-alias, from our bin dir.
# Everything happens inside a throwaway "host" network namespace, with podman's root,
# runroot and configuration in a temp dir; all of it is removed on exit.
#
#   scripts/podman-test.sh BIN_DIR        (BIN_DIR holds our built plugins)
#
# Prints "podman-test: ok" and exits 0 when both containers ping each other by address and
# by name (dns-alias), a --network-alias resolves, and a published port answers.
set -euo pipefail
BIN=$(readlink -f "${1:?usage: podman-test.sh BIN_DIR}")
for p in bridge host-local loopback portmap dns-alias swiftcni-dns; do [[ -x $BIN/$p ]] || { echo "podman-test: $BIN/$p missing" >&2; exit 2; }; done
command -v podman >/dev/null || { echo "podman-test: podman is not installed" >&2; exit 2; }

ID=pt$$
HOST=$ID-host
OUT=$ID-out
WORK=$(mktemp -d /tmp/swiftcni-podman-XXXXXX)
NET=$ID-net
BR=${ID}br

# Podman's CNI backend keeps libcni's cache in /var/lib/cni (no option moves it): what this
# test made there goes with it.
[[ -e /var/lib/cni ]] && VARLIBCNI_EXISTED=1 || VARLIBCNI_EXISTED=0
cleanup() {
  set +e
  if [[ -n ${PODMAN:-} ]]; then
    $PODMAN rm -af -t 0 >/dev/null 2>&1
    $PODMAN system reset -f >/dev/null 2>&1
  fi
  # Our DNS server exits once it serves nothing; after a failure it may still run.
  p=$(cat "$WORK"/run/dns/netns-*/server.pid 2>/dev/null) && grep -qs swiftcni-dns "/proc/$p/cmdline" && kill -9 "$p"
  ip netns del "$HOST" 2>/dev/null
  ip netns del "$OUT" 2>/dev/null
  # podman's container netns are under /run/netns (cni-…) and go with the containers.
  umount -R "$WORK" 2>/dev/null
  rm -rf "$WORK"
  if ((VARLIBCNI_EXISTED == 0)); then
    rmdir /var/lib/cni/results /var/lib/cni/networks /var/lib/cni 2>/dev/null
  fi
}
trap cleanup EXIT

ip netns add "$HOST"
ip -n "$HOST" link set lo up
# The host's own address, on a link to a second namespace standing for another machine.
ip netns add "$OUT"
ip -n "$HOST" link add eth0 type veth peer name eth0 netns "$OUT"
ip -n "$HOST" addr add 10.148.0.2/24 dev eth0
ip -n "$OUT" addr add 10.148.0.3/24 dev eth0
ip -n "$HOST" link set eth0 up
ip -n "$OUT" link set eth0 up
ip -n "$OUT" link set lo up

mkdir -p "$WORK/net.d" "$WORK/root" "$WORK/runroot" "$WORK/data" "$WORK/run" "$WORK/rootfs"
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
# Podman's cleanup after a container exits runs from conmon without our environment.
env = ["SWIFTCNI_RUN_DIR=$WORK/run"]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
static_dir = "$WORK/root/libpod"
tmp_dir = "$WORK/runroot/libpod-tmp"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$BIN"]
network_config_dir = "$WORK/net.d"
CONF
cat > "$WORK/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$WORK/root"
runroot = "$WORK/runroot"
CONF
cat > "$WORK/net.d/$NET.conflist" <<CONF
{
  "cniVersion": "0.4.0",
  "name": "$NET",
  "plugins": [
    {"type": "bridge", "bridge": "$BR", "isGateway": true, "isDefaultGateway": true,
     "ipam": {"type": "host-local", "dataDir": "$WORK/data",
              "ranges": [[{"subnet": "10.147.0.0/24", "gateway": "10.147.0.1"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "dns-alias", "domainName": "dns.podman", "upstream": [], "capabilities": {"aliases": true}}
  ]
}
CONF

export CONTAINERS_CONF=$WORK/containers.conf
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf
export SWIFTCNI_RUN_DIR=$WORK/run
PODMAN="nsenter --net=/run/netns/$HOST podman --root $WORK/root --runroot $WORK/runroot --storage-driver vfs"

# A busybox image without a registry.
BB=$(command -v busybox)
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc" "$WORK/rootfs/www"
echo "hello from swiftcni" > "$WORK/rootfs/www/index.html"
cp "$BB" "$WORK/rootfs/bin/busybox"
for a in sh ping ip ifconfig cat sleep true wget httpd nslookup hostname; do ln -sf busybox "$WORK/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$WORK/rootfs/etc/passwd"
tar -C "$WORK/rootfs" -c . | $PODMAN import --change 'CMD ["/bin/sh"]' - localhost/swiftcni-bb >/dev/null

$PODMAN network ls --format '{{.Name}}' | grep -qx "$NET" || { echo "podman-test: podman does not see network $NET" >&2; exit 1; }

$PODMAN run -d --name "$ID-a" --network "$NET" --cap-add NET_RAW localhost/swiftcni-bb sleep 300 >/dev/null
$PODMAN run -d --name "$ID-b" --network "$NET" --network-alias svc --cap-add NET_RAW localhost/swiftcni-bb sleep 300 >/dev/null
IPA=$($PODMAN inspect -f '{{(index .NetworkSettings.Networks "'"$NET"'").IPAddress}}' "$ID-a")
IPB=$($PODMAN inspect -f '{{(index .NetworkSettings.Networks "'"$NET"'").IPAddress}}' "$ID-b")
echo "podman-test: $ID-a has $IPA, $ID-b has $IPB"
[[ $IPA == 10.147.0.* && $IPB == 10.147.0.* && $IPA != "$IPB" ]] || { echo "podman-test: unexpected addresses" >&2; exit 1; }
$PODMAN exec "$ID-a" ping -c 2 -W 2 "$IPB"
$PODMAN exec "$ID-b" ping -c 2 -W 2 "$IPA"
# Names through our DNS server (dns-alias): the other container's name and its --network-alias.
$PODMAN exec "$ID-a" cat /etc/resolv.conf
$PODMAN exec "$ID-a" ping -c 1 -W 2 "$ID-b"
$PODMAN exec "$ID-a" ping -c 1 -W 2 svc
$PODMAN exec "$ID-b" ping -c 1 -W 2 "$ID-a.dns.podman"
got=$($PODMAN exec "$ID-a" nslookup svc 10.147.0.1 | awk '/^Address/ && !/#53/ {print $NF}' | tail -1)
[[ $got == "$IPB" ]] || { echo "podman-test: svc resolved to '$got', not $IPB" >&2; exit 1; }
echo "podman-test: names resolve: $ID-b, svc → $IPB"

# A published port (podman run -p): busybox httpd reached from the host through our portmap,
# on the host's own address and on 127.0.0.1.
$PODMAN run -d --name "$ID-web" --network "$NET" -p 8080:80 localhost/swiftcni-bb httpd -f -p 80 -h /www >/dev/null
# HTTP GET by address only (no name resolution); busybox-static's wget crashes in a bare netns.
http_get() {  # http_get NETNS ADDRESS TIMEOUT
  nsenter --net=/run/netns/$1 python3 - "$2" "$3" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 8080), timeout=float(sys.argv[2]))
s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
print(data.decode().split("\r\n\r\n", 1)[1], end="")
PY
}
fetch() {  # fetch FROM_NETNS ADDRESS, retried while the container starts
  for _ in $(seq 1 50); do
    out=$(http_get "$1" "$2" 2 2>/dev/null) && { echo "$out"; return 0; }
    sleep 0.1
  done
  return 1
}
for from_addr in "$OUT 10.148.0.2" "$HOST 10.148.0.2" "$HOST 127.0.0.1"; do
  set -- $from_addr
  got=$(fetch "$1" "$2") || { echo "podman-test: http://$2:8080/ did not answer in $1" >&2; exit 1; }
  [[ $got == "hello from swiftcni" ]] || { echo "podman-test: http://$2:8080/ answered '$got' in $1" >&2; exit 1; }
  echo "podman-test: -p 8080:80 answers on $2 from $1"
done
$PODMAN rm -f -t 0 "$ID-web" >/dev/null
if http_get "$OUT" 10.148.0.2 1 >/dev/null 2>&1; then
  echo "podman-test: port 8080 still answers after podman rm" >&2; exit 1
fi
if nsenter --net=/run/netns/$HOST nft list table inet swiftcni 2>/dev/null | grep -q '8080'; then
  echo "podman-test: port 8080 left in the ruleset" >&2; exit 1
fi
# Our allocation files, in the reference format.
[[ -f $WORK/data/$NET/$IPA ]] || { echo "podman-test: no allocation file for $IPA" >&2; exit 1; }

$PODMAN rm -f -t 0 "$ID-a" "$ID-b" >/dev/null
left=$(ls "$WORK/data/$NET" | grep -c '^10\.' || true)
[[ $left == 0 ]] || { echo "podman-test: $left allocations left after podman rm" >&2; grep -r . "$WORK/data/$NET" >&2; $PODMAN ps -a >&2; exit 1; }
echo "podman-test: ok"
