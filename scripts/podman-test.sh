#!/usr/bin/env bash
# Podman 4.3 with its CNI backend runs two containers on a network whose conflist uses our
# bridge + host-local (+ portmap when published ports are asked for), from our bin dir.
# Everything happens inside a throwaway "host" network namespace, with podman's root,
# runroot and configuration in a temp dir; all of it is removed on exit.
#
#   scripts/podman-test.sh BIN_DIR        (BIN_DIR holds our built plugins)
#
# Prints "podman-test: ok" and exits 0 when both containers ping each other.
set -euo pipefail
BIN=$(readlink -f "${1:?usage: podman-test.sh BIN_DIR}")
for p in bridge host-local loopback; do [[ -x $BIN/$p ]] || { echo "podman-test: $BIN/$p missing" >&2; exit 2; }; done
command -v podman >/dev/null || { echo "podman-test: podman is not installed" >&2; exit 2; }

ID=pt$$
HOST=$ID-host
WORK=$(mktemp -d /tmp/swiftcni-podman-XXXXXX)
NET=$ID-net
BR=${ID}br

cleanup() {
  set +e
  if [[ -n ${PODMAN:-} ]]; then
    $PODMAN rm -af -t 0 >/dev/null 2>&1
    $PODMAN system reset -f >/dev/null 2>&1
  fi
  ip netns del "$HOST" 2>/dev/null
  # podman's container netns are under /run/netns (cni-…) and go with the containers.
  umount -R "$WORK" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$HOST"
ip -n "$HOST" link set lo up

mkdir -p "$WORK/net.d" "$WORK/root" "$WORK/runroot" "$WORK/data" "$WORK/run" "$WORK/rootfs"
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
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
              "ranges": [[{"subnet": "10.147.0.0/24", "gateway": "10.147.0.1"}]]}}
  ]
}
CONF

export CONTAINERS_CONF=$WORK/containers.conf
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf
export SWIFTCNI_RUN_DIR=$WORK/run
PODMAN="nsenter --net=/run/netns/$HOST podman --root $WORK/root --runroot $WORK/runroot --storage-driver vfs"

# A busybox image without a registry.
BB=$(command -v busybox)
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc"
cp "$BB" "$WORK/rootfs/bin/busybox"
for a in sh ping ip ifconfig cat sleep true wget httpd nslookup hostname; do ln -sf busybox "$WORK/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$WORK/rootfs/etc/passwd"
tar -C "$WORK/rootfs" -c . | $PODMAN import --change 'CMD ["/bin/sh"]' - localhost/swiftcni-bb >/dev/null

$PODMAN network ls --format '{{.Name}}' | grep -qx "$NET" || { echo "podman-test: podman does not see network $NET" >&2; exit 1; }

$PODMAN run -d --name "$ID-a" --network "$NET" --cap-add NET_RAW localhost/swiftcni-bb sleep 300 >/dev/null
$PODMAN run -d --name "$ID-b" --network "$NET" --cap-add NET_RAW localhost/swiftcni-bb sleep 300 >/dev/null
IPA=$($PODMAN inspect -f '{{(index .NetworkSettings.Networks "'"$NET"'").IPAddress}}' "$ID-a")
IPB=$($PODMAN inspect -f '{{(index .NetworkSettings.Networks "'"$NET"'").IPAddress}}' "$ID-b")
echo "podman-test: $ID-a has $IPA, $ID-b has $IPB"
[[ $IPA == 10.147.0.* && $IPB == 10.147.0.* && $IPA != "$IPB" ]] || { echo "podman-test: unexpected addresses" >&2; exit 1; }
$PODMAN exec "$ID-a" ping -c 2 -W 2 "$IPB"
$PODMAN exec "$ID-b" ping -c 2 -W 2 "$IPA"
# Our allocation files, in the reference format.
[[ -f $WORK/data/$NET/$IPA ]] || { echo "podman-test: no allocation file for $IPA" >&2; exit 1; }

$PODMAN rm -f -t 0 "$ID-a" "$ID-b" >/dev/null
left=$(ls "$WORK/data/$NET" | grep -c '^10\.' || true)
[[ $left == 0 ]] || { echo "podman-test: $left allocations left after podman rm" >&2; exit 1; }
echo "podman-test: ok"
