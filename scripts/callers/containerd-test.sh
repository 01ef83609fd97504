#!/usr/bin/env bash
# containerd 1.6 (Debian's) starts a real container with `ctr run --cni` on a network of our
# bridge + host-local + portmap + dns-alias + loopback; the container is reachable, and when
# it ends (ctr calls DEL, with an empty CNI_NETNS) nothing of it is left.
#
#   scripts/callers/containerd-test.sh BIN_DIR             (BIN_DIR holds our built plugins)
#   scripts/callers/containerd-test.sh /usr/lib/cni reference
#                                    (the same with the Go reference plugins, no dns-alias: the
#                                     harness itself shown right; their bridge device stays)
#
# `ctr run --cni` uses go-cni with its fixed directories only (/etc/cni/net.d, /opt/cni/bin),
# no loopback network, no CNI_ARGS, no capabilities, and libcni's cache in /var/lib/cni; its
# shims put their sockets under /run/containerd. So containerd and ctr run in a mount
# namespace of their own, where those paths are the test's, inside a throwaway "host"
# network namespace; containerd has its own root, state and socket. Everything is removed on
# exit. Prints "containerd-test: ok" on success.
set -euo pipefail
BIN=$(readlink -f "${1:?usage: containerd-test.sh BIN_DIR [reference]}")
MODE=${2:-ours}
HERE=$(cd "$(dirname "$0")" && pwd)
NEED="bridge host-local loopback portmap"
[[ $MODE == reference ]] || NEED="$NEED dns-alias swiftcni-dns"
for p in $NEED; do [[ -x $BIN/$p ]] || { echo "containerd-test: $BIN/$p missing" >&2; exit 2; }; done
for c in containerd ctr containerd-shim-runc-v2 runc; do command -v $c >/dev/null || { echo "containerd-test: $c is not installed" >&2; exit 2; }; done

ID=ct$$
HOST=$ID-host
NET=$ID-net
BR=${ID}br
WORK=$(mktemp -d /tmp/swiftcni-containerd-XXXXXX)
CREATED=()   # mount points this test had to make on the machine (removed at the end)

cleanup() {
  set +e
  # The container's processes, containerd and its shims (their command lines name $WORK).
  pid=$(cat "$WORK/task.pid" 2>/dev/null) && kill -9 "$pid" 2>/dev/null
  for p in $(pgrep -f "$WORK"); do kill -9 "$p" 2>/dev/null; done
  p=$(cat "$WORK"/run/dns/netns-*/server.pid 2>/dev/null) && grep -qs swiftcni-dns "/proc/$p/cmdline" && kill -9 "$p"
  ip netns del "$HOST" 2>/dev/null
  for ((i = ${#CREATED[@]} - 1; i >= 0; i--)); do rmdir "${CREATED[i]}" 2>/dev/null; done
  for m in $(awk -v w="$WORK" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for d in /opt/cni /opt/cni/bin /etc/cni /etc/cni/net.d; do
  [[ -d $d ]] || { mkdir "$d"; CREATED+=("$d"); }
done

ip netns add "$HOST"
ip -n "$HOST" link set lo up
mkdir -p "$WORK/net.d" "$WORK/data" "$WORK/run" "$WORK/state" "$WORK/opt"
cat > "$WORK/net.d/10-$NET.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "$NET",
  "plugins": [
    {"type": "bridge", "bridge": "$BR", "isGateway": true, "isDefaultGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "dataDir": "$WORK/data", "ranges": [[{"subnet": "10.149.0.0/24"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    $([[ $MODE == reference ]] || echo '{"type": "dns-alias", "upstream": [], "capabilities": {"aliases": true}},')
    {"type": "loopback"}
  ]
}
CONF
cat > "$WORK/config.toml" <<CONF
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$WORK/containerd.sock"
[ttrpc]
  address = "$WORK/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/opt"
CONF
python3 "$HERE/oci-image.py" "$WORK/bb.tar" localhost/swiftcni-bb:latest "hello from containerd"

cat > "$WORK/inner.sh" <<'INNER'
set -euo pipefail
mount -t tmpfs swiftcni-run /run
mount -t tmpfs swiftcni-varlib /var/lib
mkdir -p /var/lib/cni
mount --bind "$WORK/net.d" /etc/cni/net.d
mount --bind "$BIN" /opt/cni/bin
export SWIFTCNI_RUN_DIR=$WORK/run SWIFTCNI_STATE_DIR=$WORK/state
CTR="ctr --address $WORK/containerd.sock --namespace swiftcni"
containerd --config "$WORK/config.toml" > "$WORK/containerd.log" 2>&1 &
for _ in $(seq 1 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.1; done
$CTR version >/dev/null || { echo "containerd-test: containerd did not start" >&2; cat "$WORK/containerd.log" >&2; exit 1; }
$CTR images import "$WORK/bb.tar" >/dev/null
echo "containerd-test: $(containerd --version | awk '{print $1, $3}'), image imported"

# Non-detached, as the notes say ctr calls DEL only then: ADD before the task starts.
$CTR run --cni --rm localhost/swiftcni-bb:latest web /bin/httpd -f -p 80 -h /www > "$WORK/ctr-run.log" 2>&1 &
RUN=$!
ip=""
for _ in $(seq 1 100); do
  ip=$(ls "$WORK/data/$NET" 2>/dev/null | grep '^10\.' || true)
  pid=$($CTR task ls 2>/dev/null | awk '$1 == "web" && $3 == "RUNNING" {print $2}')
  [[ -n $ip && -n $pid ]] && break
  sleep 0.1
done
[[ -n $ip && -n $pid ]] || { echo "containerd-test: the container did not start (ip '$ip')" >&2; cat "$WORK/ctr-run.log" >&2; exit 1; }
echo "$pid" > "$WORK/task.pid"
echo "containerd-test: task web (pid $pid) has $ip"
inside=$(nsenter -t "$pid" -n ip -o -4 addr show eth0 | awk '{print $4}')
[[ $inside == "$ip/24" ]] || { echo "containerd-test: eth0 in the container has '$inside', not $ip/24" >&2; exit 1; }
nsenter -t "$pid" -n ip -o link show lo | grep -q 'state UNKNOWN' || { echo "containerd-test: lo is not up in the container" >&2; exit 1; }
ping -c 1 -W 2 "$ip" >/dev/null
got=""
for _ in $(seq 1 50); do
  got=$(python3 "$HERE/http-get.py" "$ip" 80 2>/dev/null) && break
  sleep 0.1
done
[[ $got == "hello from containerd" ]] || { echo "containerd-test: http://$ip/ answered '$got'" >&2; exit 1; }
echo "containerd-test: http://$ip/ answers from the host"

$CTR task kill -s SIGKILL web
wait $RUN || true
if grep -qi 'cni\|plugin' "$WORK/ctr-run.log"; then
  echo "containerd-test: ctr run reported:" >&2; cat "$WORK/ctr-run.log" >&2; exit 1
fi
if [[ -n $($CTR containers ls -q) ]]; then echo "containerd-test: the container is left" >&2; exit 1; fi
pkill -f "containerd --config $WORK/config.toml"
INNER

export WORK BIN NET HERE
nsenter --net=/run/netns/"$HOST" unshare -m --propagation private bash "$WORK/inner.sh"

# What ctr's DEL (empty CNI_NETNS) left on the host: nothing.
left=$(ls "$WORK/data/$NET" | grep -c '^10\.' || true)
[[ $left == 0 ]] || { echo "containerd-test: $left allocations left" >&2; exit 1; }
# (The reference bridge plugin never removes its bridge device.)
links=$(ip -n "$HOST" -o link show | awk -F': ' '{print $2}' | grep -v '^lo$' || true)
[[ $MODE == reference ]] && links=$(echo "$links" | grep -vx "$BR" || true)
[[ -z $links ]] || { echo "containerd-test: links left on the host: $links" >&2; exit 1; }
# (The reference bridge skips its masquerade teardown when CNI_NETNS is empty, as ctr sends it.)
if [[ $MODE != reference ]] && ip netns exec "$HOST" nft list ruleset 2>/dev/null | grep -q '10\.149\.0\.'; then
  echo "containerd-test: the container's address is left in the ruleset" >&2; exit 1
fi
recs=$(ls "$WORK"/run/dns/netns-*/networks/"$NET" 2>/dev/null | grep -v '^_network$' || true)
[[ -z $recs ]] || { echo "containerd-test: DNS records left: $recs" >&2; exit 1; }
[[ $MODE == reference ]] && echo "containerd-test: removal left no allocation or veth" || echo "containerd-test: removal left no allocation, link, rule or record"
echo "containerd-test: ok"
