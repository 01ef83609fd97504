#!/usr/bin/env bash
# The swiftcni demo: installs what it needs, builds, and replays Docker's networking
# walkthrough ("Work with network commands", ../shared/seeds) with cnictl, step by step,
# printing each command and its output: bridge networks with --subnet, isolated_nw,
# containers on one or two networks, --ip, names on user-defined networks only, --link (and
# the legacy --link of the default bridge),
# aliases scoped to a container and a network (declared before their target exists),
# a shared --network-alias, disconnect ending an alias, host_binding_ipv4 absent and present,
# disconnect -f of a stale endpoint, network rm refused then accepted, and an overlay network
# across simulated hosts with etcd.
#
#   scripts/demo.sh      (the "host" is a throwaway network namespace; nothing touches this
#                         machine's own network namespace)
#
# Containers are named network namespaces (container1 …), as `docker run --name` names them.
# It removes every namespace, link, process and file it created when it ends, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/deps.sh demo
if [[ -n ${SWIFTCNI_DEMO_BIN:-} ]]; then
  BIN=$(readlink -f "$SWIFTCNI_DEMO_BIN")   # an existing build (the tests use theirs)
else
  echo "demo: building swiftcni (release, --static-swift-stdlib)…"
  swift build -c release --static-swift-stdlib 2>&1 | tail -1
  BIN=$PWD/.build/release
fi

WORK=$(mktemp -d /tmp/swiftcni-demo-XXXXXX)
TAG=swd$$
HOST=$TAG-host
OUT=$TAG-out
CONTAINERS=(container1 container2 container3 container4 container5 container6 container7 nginx redis_db)
OVERLAY_CONTAINERS=(web-on-host1 db-on-host2)
for c in "${CONTAINERS[@]}" "${OVERLAY_CONTAINERS[@]}"; do
  if [[ -e /run/netns/$c ]]; then
    echo "demo: a network namespace named $c already exists; remove it first (ip netns del $c)" >&2
    exit 1
  fi
done

export PATH=$BIN:$PATH
export NETCONFPATH=$WORK/net.d CNI_PATH=$BIN CNI_CACHE_DIR=$WORK/cache
export SWIFTCNI_RUN_DIR=$WORK/run SWIFTCNI_STATE_DIR=$WORK/state

kill_daemons() {  # kill_daemons RUN_DIR   (DNS servers keep their state per network namespace)
  local f p
  for f in "$1"/dns/netns-*/server.pid "$1"/overlay/server.pid; do
    p=$(cat "$f" 2>/dev/null) && grep -qs swiftcni "/proc/$p/cmdline" && kill -9 "$p"
  done
  return 0
}

cleanup() {
  set +e
  for c in "${CONTAINERS[@]}" "${OVERLAY_CONTAINERS[@]}"; do
    [[ -e /run/netns/$c ]] && ip netns pids "$c" | xargs -r kill 2>/dev/null
    ip netns del "$c" 2>/dev/null
    rm -rf "/etc/netns/$c"
  done
  kill_daemons "$WORK/run"
  for h in host1 host2; do kill_daemons "$WORK/$h/run"; done
  [[ -n ${ETCD_PID:-} ]] && kill -9 "$ETCD_PID" 2>/dev/null
  for ns in "$OUT" "$TAG-ul" "$TAG-kv" "$TAG-host1" "$TAG-host2"; do ip netns del "$ns" 2>/dev/null; done
  ip netns del "$HOST" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

in_host() { nsenter --net=/run/netns/$HOST "$@"; }

# Prints a command the way a user types it, then runs it (in the demo host).
step() {
  printf '\n\033[1m$ %s\033[0m\n' "$*"
  in_host bash -c "$*" 2>&1
}

# The same on a simulated host of the overlay part (its own namespace and state roots).
on() {
  local h=$1
  shift
  printf '\n\033[1m[%s] $ %s\033[0m\n' "$h" "$*"
  nsenter --net=/run/netns/$TAG-$h env NETCONFPATH="$WORK/$h/net.d" CNI_CACHE_DIR="$WORK/$h/cache" \
    SWIFTCNI_RUN_DIR="$WORK/$h/run" SWIFTCNI_STATE_DIR="$WORK/$h/state" bash -c "$*" 2>&1
}

say() { printf '\n\033[36m# %s\033[0m\n' "$*"; }

ip netns add "$HOST"
ip -n "$HOST" link set lo up
say "Everything below runs inside the network namespace $HOST, standing in for a host."
# The host's address 192.168.56.205 (the walkthrough's), on a link to another machine.
ip netns add "$OUT"
ip link add "${TAG}o" netns "$OUT" type veth peer name eth0 netns "$HOST"
ip -n "$HOST" addr add 192.168.56.205/24 dev eth0
ip -n "$HOST" link set eth0 up
ip -n "$OUT" addr add 192.168.56.1/24 dev "${TAG}o"
ip -n "$OUT" link set "${TAG}o" up
ip -n "$OUT" link set lo up
GET="printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -n -N -w 2"

say "swiftcni's plugins are plain CNI plugins; cnictl drives them like a runtime, and its"
say "'network' commands give the docker network experience on top. Containers are named"
say "network namespaces."
step "cnictl network ls"

say "== Create networks. Without --driver a network is a bridge network."
step "cnictl network create simple-network"
step "cnictl network inspect simple-network"
step "cat \$NETCONFPATH/simple-network.conflist"

say "== Basic container networking: container1 and container2 on the default bridge network,"
say "   which (as Docker's) is created on first use and has no name resolution."
step "cnictl run --name container1"
step "cnictl run --name container2"
step "cnictl network create -d bridge --subnet 172.25.0.0/16 isolated_nw"
step "cnictl network connect isolated_nw container2"
say "container3 on isolated_nw only, with a chosen address (--ip)."
step "cnictl run --network isolated_nw --ip 172.25.3.3 --name container3"
step "cnictl ps"
step "cnictl network inspect isolated_nw"
say "On a user-defined network the embedded DNS resolves container names:"
step "cnictl exec container2 -- ping -c 1 container3"
say "…but not on the default bridge, and networks are isolated, even by address:"
step "cnictl exec container2 -- ping -c 1 -W 1 container1 || echo '(no name resolution on the default bridge)'"
step "cnictl exec container3 -- ping -c 1 -W 1 172.17.0.2 || echo '(container3 and container1 share no network)'"
step "cnictl exec container2 -- ping -c 1 172.17.0.2"

say "== Links on a user-defined network: the alias is container4's own, and may name a"
say "   container that does not exist yet."
step "cnictl run --network isolated_nw --name container4 --link container5:c5"
step "cnictl run --network isolated_nw --name container5 --link container4:c4"
step "cnictl exec container4 -- ping -c 1 c5"
step "cnictl exec container5 -- ping -c 1 c4"
step "cnictl exec container2 -- ping -c 1 -W 1 c5 || echo '(c5 is an alias of container4 only)'"

say "== Legacy links on the default bridge (the walkthrough's --link without a user-defined"
say "   network): the target must exist; its name and alias resolve inside the linking"
say "   container only (its own hosts file), whose environment gets Docker's link variables."
step "cnictl run --name legacy_db -e DB_PASSWORD=example --expose 5432"
step "cnictl run --name legacy_web --link legacy_db:db"
step "cnictl run --name legacy_other --link no_such_container:db || true"
step "cnictl exec legacy_web -- getent hosts db"
step "cnictl exec legacy_web -- ping -c 1 db"
step "cnictl exec legacy_web -- sh -c 'env | grep ^DB_ | sort'"
step "cnictl inspect -f '{{.HostConfig.Links}}' legacy_web"
step "cnictl rm legacy_web legacy_db"

say "== Aliases are scoped to a network: a second network with links of its own."
step "cnictl network create -d bridge --subnet 172.26.0.0/24 local_alias"
step "cnictl network connect --link container5:foo local_alias container4"
step "cnictl network connect --link container4:bar local_alias container5"
step "cnictl exec container4 -- ping -c 1 foo"
step "cnictl exec container5 -- ping -c 1 bar"
say "Disconnecting container5 from isolated_nw ends c5 there; foo (on local_alias) stays."
step "cnictl network disconnect isolated_nw container5"
step "cnictl exec container4 -- ping -c 1 -W 1 c5 || echo '(c5 is gone with the disconnect)'"
step "cnictl exec container4 -- ping -c 1 foo"

say "== A network alias shared by several containers resolves to all of them."
step "cnictl run --network isolated_nw --name container6 --network-alias app"
step "cnictl run --network isolated_nw --name container7 --network-alias app"
step "cnictl exec container4 -- dig +short app"
step "cnictl network connect --alias scoped-app local_alias container6"
step "cnictl exec container4 -- dig +short scoped-app"
step "cnictl exec container7 -- dig +short scoped-app; echo '(container7 is not on local_alias: no answer)'"

say "== host_binding_ipv4: creating the network succeeds even if no interface has the address…"
step "cnictl network create -o com.docker.network.bridge.host_binding_ipv4=172.233.0.1 simple-network2"
step "cnictl run --network simple-network2 --name nginx -p 8081:80 || echo '(refused, as Docker refuses to start the container)'"
say "…and with the host's own address, the published port answers there only."
step "cnictl network create -o com.docker.network.bridge.host_binding_ipv4=192.168.56.205 simple-network3"
step "cnictl run --network simple-network3 --name nginx -p 8081:80"
mkdir -p "$WORK/www" && echo "hello from nginx (a container on simple-network3)" > "$WORK/www/index.html"
step "cnictl exec nginx -- python3 -m http.server 80 --bind 0.0.0.0 --directory $WORK/www >/dev/null 2>&1 &"
for _ in $(seq 1 50); do in_host cnictl exec nginx -- ss -tln 2>/dev/null | grep -q ':80 ' && break; sleep 0.1; done
say "From another machine (192.168.56.1) to 192.168.56.205:8081:"
printf '\n\033[1m[outside] $ %s\033[0m\n' "$GET 192.168.56.205 8081 | tail -1"
ip netns exec "$OUT" bash -c "$GET 192.168.56.205 8081 | tail -1"
step "$GET 127.0.0.1 8081 | tail -1 || true; echo '(not on 127.0.0.1: the port is bound to 192.168.56.205 only)'"

say "== Disconnect containers."
step "cnictl network disconnect isolated_nw container2"
step "cnictl network inspect isolated_nw | grep '\"Name\"'"

say "== Stale endpoints: an ungraceful end loses the container but leaves its endpoint behind"
say "   (here: its namespace and cnictl's record vanish). A new container of that name and"
say "   address is refused until disconnect -f clears the stale endpoint."
step "cnictl run --network isolated_nw --name redis_db --ip 172.25.9.9"
step "ip netns del redis_db; rm \$SWIFTCNI_STATE_DIR/cnictl/containers/redis_db.json"
step "cnictl run --network isolated_nw --name redis_db --ip 172.25.9.9 || echo '(refused: the stale endpoint holds 172.25.9.9)'"
step "cnictl network disconnect -f isolated_nw redis_db"
step "cnictl run --network isolated_nw --name redis_db --ip 172.25.9.9"

say "== Remove a network: refused while containers are attached."
step "cnictl network rm isolated_nw || true"
step "ip netns pids nginx | xargs -r kill   # the web server started above"
step "cnictl rm container1 container2 container3 container4 container5 container6 container7 nginx redis_db"
step "cnictl network rm isolated_nw"
step "cnictl network prune -f"
step "cnictl network ls"

say "== An overlay network across hosts. Two simulated hosts (network namespaces on an"
say "   underlay bridge, each with its own state) and an etcd server on the underlay."
UL=$TAG-ul KV=$TAG-kv
ip netns add "$UL"
ip -n "$UL" link add ulbr type bridge
ip -n "$UL" link set ulbr up
wire() {  # wire NS ADDRESS PORT
  ip netns add "$1"
  ip link add "$3" netns "$UL" type veth peer name eth0 netns "$1"
  ip -n "$UL" link set "$3" master ulbr up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
wire "$TAG-host1" 10.99.0.1 "${TAG}p1"
wire "$TAG-host2" 10.99.0.2 "${TAG}p2"
wire "$KV" 10.99.0.201 "${TAG}pk"
mkdir -p "$WORK/etcd" "$WORK/host1" "$WORK/host2"
nsenter --net=/run/netns/$KV etcd --name kv --data-dir "$WORK/etcd" --listen-client-urls http://10.99.0.201:2379 \
  --advertise-client-urls http://10.99.0.201:2379 --listen-peer-urls http://10.99.0.201:2380 \
  --initial-advertise-peer-urls http://10.99.0.201:2380 --initial-cluster kv=http://10.99.0.201:2380 \
  >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 1 100); do
  ip netns exec "$KV" etcdctl --endpoints=http://10.99.0.201:2379 endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
CREATE="cnictl network create -d overlay --kv etcd://10.99.0.201:2379 \
--subnet=192.168.0.0/16 --subnet=192.170.0.0/16 --gateway=192.168.0.100 --gateway=192.170.0.100 \
--ip-range=192.168.1.0/24 --aux-address=my-router=192.168.1.5 --aux-address=my-switch=192.168.1.6 \
--aux-address=my-printer=192.170.1.5 --aux-address=my-nas=192.170.1.6 -o swiftcni.overlay.underlay=eth0 \
my-multihost-network"
on host1 "$CREATE"
say "On the second host the same command takes the definition host1 put in etcd (same ID, VNI, subnets)."
on host2 "$CREATE"
on host1 "cnictl run --network my-multihost-network --name web-on-host1"
on host2 "cnictl run --network my-multihost-network --name db-on-host2"
on host2 "cnictl exec db-on-host2 -- ping -c 2 web-on-host1"
on host1 "cnictl exec web-on-host1 -- ping -c 2 db-on-host2"
on host1 "cnictl network inspect my-multihost-network | grep -E '\"(Name|IPv4Address|VNI)\"'"
say "host1 reaches db-on-host2 through a forwarding entry (its MAC via host2's VTEP) and a neighbour entry,"
say "programmed by host1's overlay agent from etcd (iproute2's bridge: /sbin/bridge, as our plugin is also named bridge)."
on host1 "/sbin/bridge fdb show dev ovvx4096 | grep dst; ip neigh show dev ovvx4096"
say "An overlay network is global: its removal is refused while any host has a container on it."
on host1 "cnictl rm web-on-host1 && { cnictl network rm my-multihost-network || true; }"
on host2 "cnictl rm db-on-host2 && cnictl network rm my-multihost-network"
on host1 "cnictl network rm my-multihost-network"

say "Done: every container, network, namespace and process of the demo is removed on exit."
