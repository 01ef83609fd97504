#!/usr/bin/env bash
# The swiftcni demo: installs what it needs, builds, and shows a bridge network with two
# "containers" (network namespaces) talking to each other and a third publishing a port
# (docker run -p), step by step, with the commands a user would type.
#
#   scripts/demo.sh            everything inside a throwaway "host" network namespace
#   scripts/demo.sh --on-host  on this machine's own network namespace (creates a bridge here)
#
# It removes every namespace, link and file it created when it ends, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ON_HOST=0
[[ ${1:-} == --on-host ]] && ON_HOST=1

scripts/deps.sh demo
if [[ -n ${SWIFTCNI_DEMO_BIN:-} ]]; then
  BIN=$(readlink -f "$SWIFTCNI_DEMO_BIN")   # an existing build (the tests use theirs)
else
  echo "demo: building swiftcni (release, --static-swift-stdlib)…"
  swift build -c release --static-swift-stdlib 2>&1 | tail -1
  BIN=$PWD/.build/release
fi
WORK=$(mktemp -d /tmp/swiftcni-demo-XXXXXX)
HOST=swiftcni-demo-$$
C1=demo-c1-$$
C2=demo-c2-$$
C3=demo-c3-$$
export PATH=$BIN:$PATH
export NETCONFPATH=$WORK/net.d
export CNI_PATH=$BIN
export SWIFTCNI_RUN_DIR=$WORK/run
export CNI_CACHE_DIR=$WORK/cache

cleanup() {
  set +e
  for c in "$C1" "$C2" "$C3"; do
    [[ -e /run/netns/$c ]] && ip netns pids "$c" | xargs -r kill 2>/dev/null
    [[ -e /run/netns/$c ]] && in_host cnictl del demo-net "$c" >/dev/null 2>&1
    ip netns del "$c" 2>/dev/null
    rm -rf "/etc/netns/$c"
  done
  p=$(cat "$WORK/run/dns/server.pid" 2>/dev/null) && grep -qs swiftcni-dns "/proc/$p/cmdline" && kill -9 "$p"
  [[ $ON_HOST == 0 ]] && ip netns del "$HOST" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

in_host() {
  if [[ $ON_HOST == 1 ]]; then "$@"; else nsenter --net=/run/netns/$HOST "$@"; fi
}

# Prints a command the way a user types it, then runs it (in the demo host).
step() {
  printf '\n\033[1m$ %s\033[0m\n' "$*"
  in_host bash -c "$*"
}

say() { printf '\n\033[36m# %s\033[0m\n' "$*"; }

if [[ $ON_HOST == 0 ]]; then
  ip netns add "$HOST"
  ip -n "$HOST" link set lo up
  say "Everything below runs inside the network namespace $HOST, standing in for a host"
  say "(scripts/demo.sh --on-host runs it on this machine's own network namespace)."
fi

mkdir -p "$NETCONFPATH"
cat > "$NETCONFPATH/10-demo-net.conflist" <<EOF
{
  "cniVersion": "1.1.0",
  "name": "demo-net",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "demo0",
      "isGateway": true,
      "isDefaultGateway": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$WORK/ipam",
        "ranges": [[{"subnet": "10.88.0.0/24"}], [{"subnet": "fd88::/64"}]]
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    },
    {
      "type": "dns-alias",
      "domainName": "demo.test",
      "upstream": [],
      "capabilities": {"aliases": true, "links": true}
    }
  ]
}
EOF

say "swiftcni's plugins are plain CNI plugins; cnictl runs them like a container runtime does."
say "The network: a bridge (demo0) with IPv4 and IPv6 addresses from host-local, portmap for"
say "published ports and dns-alias for names (no upstream: nothing is forwarded off the host)."
step "export NETCONFPATH=$NETCONFPATH CNI_PATH=$CNI_PATH CNI_CACHE_DIR=$CNI_CACHE_DIR"
step "cat \$NETCONFPATH/10-demo-net.conflist"

say "Two containers: network namespaces with nothing but a loopback."
step "cnictl netns add $C1"
step "cnictl netns add $C2"
step "ip netns exec $C1 ip -br link"

say "Attach both to demo-net as \"web\" and \"db\" (CNI ADD; the result is cached like libcni does)."
step "cnictl add demo-net $C1 --args K8S_POD_NAME=web --cap '{\"aliases\":[\"www\"]}'"
step "cnictl add demo-net $C2 --args K8S_POD_NAME=db > /dev/null"
step "ip netns exec $C1 ip -br addr show eth0"
step "ip netns exec $C1 ip route"
step "ip -br link show master demo0"

say "They reach each other by IP, over IPv4 and IPv6, and reach their gateway."
step "ip netns exec $C1 ping -c 2 10.88.0.3"
step "ip netns exec $C2 ping -c 2 fd88::2"
step "ip netns exec $C1 ping -c 1 10.88.0.1"

say "Names: the result's DNS went into /etc/netns/<name>/resolv.conf, which ip netns exec uses;"
say "the server (swiftcni-dns, started by dns-alias) answers on the gateway."
step "cat /etc/netns/$C2/resolv.conf"
step "ip netns exec $C2 ping -c 2 web"
step "ip netns exec $C2 dig +short www.demo.test"
step "ip netns exec $C1 dig +short -x 10.88.0.3"

say "CNI CHECK verifies interface, addresses and routes against the cached result."
step "cnictl check demo-net $C1 && echo 'check: ok'"
step "ip netns exec $C1 ip addr del 10.88.0.2/24 dev eth0"
step "cnictl check demo-net $C1 || echo '(check failed, as it should)'"

say "A third container publishes its port 80 on the host's port 8080 (docker run -p 8080:80)."
mkdir -p "$WORK/www" && echo "hello from $C3" > "$WORK/www/index.html"
step "cnictl netns add $C3"
step "cnictl add demo-net $C3 --cap '{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"}]}' > /dev/null"
step "ip netns exec $C3 python3 -m http.server 80 --bind 10.88.0.4 --directory $WORK/www >/dev/null 2>&1 &"
# Wait until the server listens (by address; nothing here resolves names).
for _ in $(seq 1 50); do ip netns exec "$C3" ss -tln | grep -q ':80 ' && break; sleep 0.1; done
say "The host reaches it on its own addresses, 127.0.0.1 included; so does another container."
step "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -n -N -w 3 127.0.0.1 8080 | tail -1"
step "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -n -N -w 3 10.88.0.1 8080 | tail -1"
step "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | ip netns exec $C2 nc -n -N -w 3 10.88.0.1 8080 | tail -1"
say "The mapping is one element of an nftables map keyed by (protocol, port):"
step "nft list map inet swiftcni pm4any"
step "ip netns pids $C3 | xargs kill; cnictl del demo-net $C3 && cnictl netns del $C3"
step "nft list map inet swiftcni pm4any 2>&1 | head -1"

say "The allocations live in host-local's reference format (one file per address)."
step "ls $WORK/ipam/demo-net"

say "Detach (CNI DEL, plugins in reverse order) and remove the containers."
step "cnictl del demo-net $C1"
step "cnictl del demo-net $C2"
step "cnictl netns del $C1 && cnictl netns del $C2"
step "ls $WORK/ipam/demo-net; ip -br link"
say "No address is allocated any more, and the bridge went with its last port."
