#!/usr/bin/env python3
"""The overlay multi-host test: a real 3-member etcd cluster and three simulated hosts
(network namespaces on an underlay bridge, each with its own state roots), all inside
namespaces this script creates and removes. The agents reach etcd over mutual TLS
(certificates made with openssl by Tests/Helpers/make-certs.sh) unless --plain.

    scripts/overlay/multihost-test.py BIN_DIR [--per-host 50] [--keep] [--plain]

Checks, in order (each prints "multihost: ok <what>"):
  mesh       2 containers per host on one overlay network (two subnets, an ipRange, aux
             addresses): every container pings every other by address and by name
  late-peer  a container asks (ARP) for addresses no host has yet, in its subnet and (routed
             by its host) in the other; when their containers are added on another host,
             both waiting entries (the container's, the host's) resolve at once — ARP
             retries set to 10 s, so a kernel retry cannot be what resolved them
  ipv6       a dual-stack network whose underlay is IPv6 only: IPv6 VTEPs, every pair pings
             over both families, full-size packets pass
  parallel   3 hosts × N containers added in parallel: no address twice, none outside the
             ranges, no aux/gateway, the second subnet used once the ipRange is full;
             a sample pings across hosts
  delete     deleting a container on host a removes its FDB and neighbour entries on b and c
  gc         GC on host a (all its containers valid) leaves every address claim as it was
  retry      host c's agent cannot write a network's DNS records for a while: it retries until
             it can, then stops; c's containers resolve the container added meanwhile
  etcd-kill  one etcd member killed mid-churn (adds and deletes on every host): nothing lost
  agent      host b's agent killed; a container added on a meanwhile; the agent restarted
             (by a CHECK) converges and b reaches the new container
  agent-kill host a's agent killed -9 during 20 parallel ADDs on a: each succeeds or leaves
             nothing; no address twice; every success claimed and registered once
  etcd-down  every etcd member stopped: existing containers still reach each other across hosts;
             a new ADD fails with code 11 within 15 s creating nothing, and works once etcd is back
  bad-input  another etcd cluster than the host's, bad VNI, subnet overlap, gateway outside
             subnet, missing underlay: each a clear error with its code, nothing created
  reclaim    host c leaves the network and dies: once its lease runs out, the other agents
             take back its address blocks
Exit status 0 when all pass.
"""
import argparse
import concurrent.futures as cf
import glob
import socket
import ipaddress
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import Lab, sh, wait  # noqa: E402

NET = "mhnet"
SUBNETS = [ipaddress.ip_network("10.10.0.0/16"), ipaddress.ip_network("10.11.0.0/16")]
IPRANGE = ipaddress.ip_network("10.10.1.0/26")
AUX = {"my-router": "10.10.1.5", "my-switch": "10.10.1.6"}
GATEWAYS = {"10.10.0.100", "10.11.0.100"}


def overlay_conf(lab, name=NET, vni=4096, ranges=None, endpoints=None, underlay="eth0", aux=AUX):
    return {"type": "overlay", "vni": vni, "underlay": underlay, "etcd": lab.etcd_conf(endpoints),
            "ipam": {"type": "host-local",
                     "ranges": ranges or [[{"subnet": "10.10.0.0/16", "gateway": "10.10.0.100", "ipRange": str(IPRANGE)},
                                           {"subnet": "10.11.0.0/16", "gateway": "10.11.0.100"}]],
                     "auxAddresses": aux},
            "capabilities": {"aliases": True}}


def conflist(lab, **kw):
    return {"cniVersion": "1.1.0", "name": kw.get("name", NET), "plugins": [
        overlay_conf(lab, **kw),
        {"type": "dns-alias", "domainName": "mh.test", "upstream": [], "capabilities": {"aliases": True}}]}


def ok(what):
    print("multihost: ok " + what, flush=True)


def fail(msg):
    raise AssertionError(msg)


def add(lab, host, ns, name):
    r = host.cnictl("add", NET, ns, "--args", "K8S_POD_NAME=" + name)
    res = json.loads(r.stdout)
    return res["ips"][0]["address"].split("/")[0]


def ping(ns, target, tries=20):
    for _ in range(tries):
        if sh("ip netns exec %s ping -c 1 -W 1 %s" % (ns, target), check=False).returncode == 0:
            return True
        time.sleep(0.1)
    return False


def fdb_macs(host):
    out = host.run(["bridge", "fdb", "show", "dev", "ovvx4096"], check=False).stdout
    return {l.split()[0] for l in out.splitlines() if " dst " in l}


def neigh_ips(host):
    out = host.run(["ip", "neigh", "show", "dev", "ovvx4096"], check=False).stdout
    return {l.split()[0] for l in out.splitlines() if "PERMANENT" in l}


def mac_of(ns):
    return sh("ip -n %s -o link show eth0" % ns).stdout.split("link/ether ")[1].split()[0]


def mesh(lab):
    members = []
    for h in lab.hosts.values():
        for i in range(2):
            ns = lab.container("m%s%d" % (h.name, i))
            members.append((h, ns, "m-%s-%d" % (h.name, i), add(lab, h, ns, "m-%s-%d" % (h.name, i))))
    for _, ns, _, _ in members:
        for _, _, name, ip in members:
            if not ping(ns, ip):
                fail("%s cannot ping %s (%s)" % (ns, name, ip))
            got = sh("ip netns exec %s dig +short +time=2 +tries=2 %s" % (ns, name), check=False).stdout.split()
            if got != [ip]:
                fail("%s resolved %s to %s, not %s" % (ns, name, got, ip))
            if not ping(ns, name + ".mh.test", tries=3):
                fail("%s cannot ping %s.mh.test" % (ns, name))
    ok("mesh: %d containers on 3 hosts ping each other by address and by name" % len(members))
    return members


def neigh_state(ns, ip, dev="eth0"):
    """(state, lladdr) of `ip` in namespace `ns`'s neighbour table on `dev`, or (None, None)."""
    out = sh("ip -n %s neigh show %s dev %s" % (ns, ip, dev), check=False).stdout.split()
    if not out:
        return None, None
    return out[-1], (out[out.index("lladdr") + 1] if "lladdr" in out else None)


LPNET, LPVNI = "lpnet", 4097
V6NET, V6VNI = "v6net", 4098


def ipv6(lab):
    """A dual-stack overlay network (an IPv4 and an IPv6 range set) whose VTEPs are IPv6: its
    underlay is each host's eth6, which has only an IPv6 address. One container per host;
    every pair reaches each other over both families, and the forwarding entries point at
    the other hosts' IPv6 VTEPs."""
    lab.write_conflist(V6NET, conflist(lab, name=V6NET, vni=V6VNI, aux={}, underlay="eth6", ranges=[
        [{"subnet": "10.30.0.0/24", "gateway": "10.30.0.1"}], [{"subnet": "fd30::/64", "gateway": "fd30::1"}]]))
    members = []
    for h in lab.hosts.values():
        ns = lab.container("v6" + h.name)
        res = json.loads(h.cnictl("add", V6NET, ns, "--args", "K8S_POD_NAME=v6-" + h.name).stdout)
        addrs = [i["address"].split("/")[0] for i in res["ips"]]
        v4 = [x for x in addrs if ":" not in x]
        v6 = [x for x in addrs if ":" in x]
        if len(v4) != 1 or len(v6) != 1:
            fail("ipv6: %s got %s, expected one IPv4 and one IPv6 address" % (ns, addrs))
        members.append((h, ns, v4[0], v6[0]))
    dev = "ovvx%d" % V6VNI
    converged = 0.0
    for h in lab.hosts.values():
        out = h.run(["ip", "-d", "link", "show", dev]).stdout
        if "local %s " % h.addr6 not in out:
            fail("ipv6: host %s's %s does not send from %s: %s" % (h.name, dev, h.addr6, out))
        want = {o.addr6 for o in lab.hosts.values() if o is not h}

        def dsts():
            return {l.split(" dst ")[1].split()[0] for l in h.run(["bridge", "fdb", "show", "dev", dev]).stdout.splitlines() if " dst " in l}
        # The peers added after this host's container reach it through its agent's watch, which
        # follows etcd asynchronously: wait for it, within a bound, and say how long it took.
        t0 = time.monotonic()
        if not wait(lambda: dsts() == want, timeout=5.0):
            fail("ipv6: host %s's forwarding entries point at %s after 5 s, expected %s (agent: %s)"
                 % (h.name, sorted(dsts()), sorted(want), agent_status(h)))
        converged = max(converged, time.monotonic() - t0)
    pairs = 0
    for h, ns, _, _ in members:
        for o, _, v4, v6 in members:
            if o is h:
                continue
            for target in (v4, v6):
                if not ping(ns, target, tries=50):
                    fail("ipv6: %s (host %s) cannot ping %s on host %s" % (ns, h.name, target, o.name))
                pairs += 1
    # Full-size packets, not fragmented: the default MTU leaves room for VXLAN over IPv6 (70 bytes).
    mtu = int(sh("ip netns exec %s cat /sys/class/net/eth0/mtu" % members[0][1]).stdout)
    if mtu != 1500 - 70:
        fail("ipv6: the containers' MTU is %d, expected %d (1500 less VXLAN over IPv6)" % (mtu, 1500 - 70))
    for target, payload in ((members[1][2], mtu - 28), (members[1][3], mtu - 48)):
        if sh("ip netns exec %s ping -c 1 -W 2 -M do -s %d %s" % (members[0][1], payload, target), check=False).returncode != 0:
            fail("ipv6: a full-size (%d bytes) packet from %s does not reach %s" % (mtu, members[0][1], target))
    for h, ns, _, _ in members:
        h.cnictl("del", V6NET, ns)
        lab.drop_container(ns)
    ok("ipv6: dual-stack network over an IPv6 underlay: %d hosts' VTEPs on IPv6, %d pings (IPv4 and IPv6) across hosts "
       "pass, full-size packets (MTU %d) too; forwarding entries complete %.3f s after the last ADD"
       % (len(members), pairs, mtu, converged))


def late_peer(lab):
    """Its own network (two subnets, one range set), so its requested addresses leave mhnet's
    allocation order alone. On host a a container asks for two addresses no host has yet: one
    in its subnet (its own ARP entry waits) and one in the other (host a routes it: the host's
    entry on the bridge waits). Both ARP retries are set to 10 s. Then both peers are added
    on host b; each waiting entry must hold the peer's MAC within 2 s."""
    a, b = lab.hosts["a"], lab.hosts["b"]
    lab.write_conflist(LPNET, conflist(lab, name=LPNET, vni=LPVNI, aux={}, ranges=[[
        {"subnet": "10.20.0.0/24", "gateway": "10.20.0.1"}, {"subnet": "10.21.0.0/24", "gateway": "10.21.0.1"}]]))
    bridge = "ovbr%d" % LPVNI

    def join(h, ns, name, ip):
        r = h.cnictl("add", LPNET, ns, "--args", "IgnoreUnknown=1;K8S_POD_NAME=%s;IP=%s" % (name, ip))
        got = json.loads(r.stdout)["ips"][0]["address"].split("/")[0]
        if got != ip:
            fail("late-peer: asked for %s, got %s" % (ip, got))

    asker, near, far = lab.container("lpa"), lab.container("lpb1"), lab.container("lpb2")
    join(a, asker, "lp-asker", "10.20.0.10")
    sh("ip netns exec %s sysctl -q -w net.ipv4.neigh.eth0.retrans_time_ms=10000" % asker)
    a.run(["sysctl", "-q", "-w", "net.ipv4.neigh.%s.retrans_time_ms=10000" % bridge])
    waiting = {"10.20.0.11": (asker, "eth0", near), "10.21.0.11": (a.ns, bridge, far)}
    pingers = [subprocess.Popen(["ip", "netns", "exec", asker, "ping", "-n", "-i", "0.2", "-w", "8", ip],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for ip in waiting]
    try:
        for ip, (ns, dev, _) in waiting.items():
            if not wait(lambda: neigh_state(ns, ip, dev)[0] == "INCOMPLETE", 5):
                fail("late-peer: nobody asked for %s on %s: %s" % (ip, dev, neigh_state(ns, ip, dev)))
        join(b, near, "lp-near", "10.20.0.11")
        join(b, far, "lp-far", "10.21.0.11")
        added = time.monotonic()
        took = {}
        for ip, (ns, dev, peer) in waiting.items():
            mac = mac_of(peer)
            if not wait(lambda: neigh_state(ns, ip, dev)[1] == mac, 2):
                fail("late-peer: the entry for %s on %s is still %s 2 s after the ADDs on b (want lladdr %s)" % (
                    ip, dev, neigh_state(ns, ip, dev), mac))
            took[ip] = time.monotonic() - added
            if not ping(asker, ip, tries=3):
                fail("late-peer: %s cannot ping %s" % (asker, ip))
    finally:
        for p in pingers:
            p.kill()
            p.wait()
    for h, ns in ((a, asker), (b, near), (b, far)):
        h.cnictl("del", LPNET, ns)
        lab.drop_container(ns)
    os.remove(os.path.join(lab.conf_dir, LPNET + ".conflist"))
    ok("late-peer: waiting ARP entries resolved %.3f s (the container's, same subnet) and %.3f s (the host's, "
       "routed) after the peers' ADDs on another host" % (took["10.20.0.11"], took["10.21.0.11"]))


def agent_status(h):
    """The agent's status line, as key=value pairs."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(3)
    # The socket is a file: reachable from this (root) namespace.
    s.connect(os.path.join(h.root, "run", "overlay", "control.sock"))
    s.sendall(b"status\n")
    line = s.recv(4096).decode().strip()
    s.close()
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def diagnose(lab, h):
    """What host h's agent knows, for a failure message: its status, its VXLAN forwarding
    entries of NET, the tail of its log."""
    try:
        st = agent_status(h)
    except OSError as e:
        st = "no answer (%s)" % e
    fdb = h.run(["bridge", "fdb", "show", "dev", "ovvx4096"], check=False).stdout.split("\n")
    try:
        lines = open(os.path.join(h.root, "run", "overlay", "server.log")).read().splitlines()
        # A crash's report (Swift's backtracer) starts with its reason and the crashing thread.
        crash = [i for i, l in enumerate(lines) if "crashed" in l or "Fatal error" in l]
        log = lines[crash[0]:crash[0] + 25] if crash else lines[-5:]
    except OSError:
        log = []
    return "agent of %s: %s; its %s entries: %s; its log ends: %s" % (h.name, st, len(fdb), fdb[:8], " | ".join(log))


def retry(lab, members):
    """Host c's agent cannot write the network's DNS records (their directory replaced by a
    file) while a container is added on host a: it keeps trying; once the directory is back,
    the record appears and c's containers resolve the new name — with no further change in
    etcd to prompt it."""
    a, c = lab.hosts["a"], lab.hosts["c"]
    dirs = glob.glob(os.path.join(c.root, "run", "dns", "netns-*", "networks", NET))
    if len(dirs) != 1:
        fail("retry: host c has %d DNS record directories for %s" % (len(dirs), NET))
    d = dirs[0]
    before = int(agent_status(c)["retries"])
    os.rename(d, d + ".away")
    with open(d, "w") as f:
        f.write("not a directory\n")
    ns = lab.container("rt")
    try:
        ip = add(lab, a, ns, "rt-late")
        if not wait(lambda: int(agent_status(c)["retries"]) >= before + 2, 5):
            fail("retry: host c's agent did not try again (%s)" % agent_status(c))
    finally:
        os.remove(d)
        os.rename(d + ".away", d)
    _, cns, _, _ = next(m for m in members if m[0] is c and m[1] in lab.containers)
    if not wait(lambda: sh("ip netns exec %s dig +short +time=1 +tries=1 rt-late" % cns, check=False).stdout.split() == [ip], 5):
        fail("retry: %s on host c does not resolve rt-late to %s after the directory came back" % (cns, ip))
    if not ping(cns, ip):
        fail("retry: %s cannot ping %s" % (cns, ip))
    settled = int(agent_status(c)["retries"])
    time.sleep(1.5)  # long enough for two more tries, had the agent not stopped
    if int(agent_status(c)["retries"]) != settled:
        fail("retry: host c's agent goes on retrying after success")
    a.cnictl("del", NET, ns)
    lab.drop_container(ns)
    ok("retry: host c's agent retried %d times while it could not write, then programmed rt-late" % (settled - before))


def parallel(lab, per_host):
    jobs = []
    for h in lab.hosts.values():
        for i in range(per_host):
            jobs.append((h, lab.container("p%s%d" % (h.name, i)), "p-%s-%d" % (h.name, i)))
    start = time.time()
    with cf.ThreadPoolExecutor(max_workers=6 * len(lab.hosts)) as pool:
        ips = list(pool.map(lambda j: add(lab, j[0], j[1], j[2]), jobs))
    took = time.time() - start
    if len(set(ips)) != len(ips):
        dup = [ip for ip in set(ips) if ips.count(ip) > 1]
        fail("duplicate addresses: %s" % dup)
    for ip in ips:
        a = ipaddress.ip_address(ip)
        if not any(a in s for s in SUBNETS):
            fail("%s is outside the subnets" % ip)
        if ip in AUX.values() or ip in GATEWAYS:
            fail("%s is an aux address or a gateway" % ip)
        if a in SUBNETS[0] and a not in IPRANGE:
            fail("%s is in the first subnet but outside its ipRange" % ip)
    in_range = sum(1 for ip in ips if ipaddress.ip_address(ip) in IPRANGE)
    second = sum(1 for ip in ips if ipaddress.ip_address(ip) in SUBNETS[1])
    # Blocks in etcd: one claim per container (and the mesh's 6), each by the container's
    # host; every block affine to a host that has added here.
    claims = lab.claims(NET)
    if len(claims) != len(ips) + 6:
        fail("etcd holds %d claims, expected %d" % (len(claims), len(ips) + 6))
    by_host = {}
    for (h, _, _), ip in zip(jobs, ips):
        if ip not in claims:
            fail("%s (host %s) is claimed in no block" % (ip, h.name))
        by_host.setdefault(h.name, set()).add(claims[ip][2])
    ids = [next(iter(v)) for v in by_host.values()]
    if any(len(v) != 1 for v in by_host.values()) or len(set(ids)) != len(ids):
        fail("the claims do not name each container's own host: %s" % by_host)
    blocks = lab.blocks(NET)
    if set(blocks.values()) - set(ids):
        fail("blocks of unknown hosts: %s" % blocks)
    sample = random.Random(3).sample(list(zip(jobs, ips)), 12)
    for (h, ns, _), _ in sample:
        other = random.Random(ns).choice([(j, ip) for j, ip in zip(jobs, ips) if j[0] is not h])
        if not ping(ns, other[1]):
            fail("%s (host %s) cannot ping %s on host %s" % (ns, h.name, other[1], other[0][0].name))
    ok("parallel: %d containers added on %d hosts in parallel in %.1f s, %d addresses all distinct "
       "(%d in the ipRange, %d in the second subnet) from %d blocks, each claimed by its host; cross-host pings pass" % (
           len(ips), len(lab.hosts), took, len(ips), in_range, second, len(blocks)))
    return jobs, ips, took


def delete(lab, members):
    a, b, c = lab.hosts["a"], lab.hosts["b"], lab.hosts["c"]
    h, ns, name, ip = next(m for m in members if m[0] is a)
    mac = mac_of(ns)
    for other in (b, c):
        if mac not in fdb_macs(other) or ip not in neigh_ips(other):
            fail("host %s has no entry for %s before the delete" % (other.name, name))
    a.cnictl("del", NET, ns)
    lab.drop_container(ns)
    for other in (b, c):
        if not wait(lambda: mac not in fdb_macs(other) and ip not in neigh_ips(other), 5):
            fail("host %s still has the FDB/neighbour entries of deleted %s" % (other.name, name))
    ok("delete: %s deleted on a; its FDB and neighbour entries are gone on b and c" % name)


def gc(lab):
    a = lab.hosts["a"]
    before = lab.claims(NET)
    a.cnictl("gc", NET)
    after = lab.claims(NET)
    if after != before:
        lost = sorted(set(before) - set(after))
        fail("GC on host a changed the claims: %d released (%s), %d new" % (len(lost), lost[:5], len(set(after) - set(before))))
    hosts = {c[2] for c in before.values()}
    ok("gc: GC on host a, whose containers are all valid, left all %d claims of %d hosts as they were" % (len(before), len(hosts)))


def etcd_kill(lab):
    # Churn on every host while member 0 dies.
    ops = []
    with cf.ThreadPoolExecutor(max_workers=9) as pool:
        def churn(h, i):
            ns = lab.container("k%s%d" % (h.name, i))
            ip = add(lab, h, ns, "k-%s-%d" % (h.name, i))
            if i % 2 == 0:
                h.cnictl("del", NET, ns)
                lab.drop_container(ns)
                return None
            return (h, ns, ip)
        futs = [pool.submit(churn, h, i) for i in range(10) for h in lab.hosts.values()]
        # Mid-churn: once a third of it is done.
        wait(lambda: sum(f.done() for f in futs) >= len(futs) // 3, 60)
        lab.kill_member(0)
        for f in futs:
            r = f.result()
            if r:
                ops.append(r)
    try:
        addrs = list(lab.claims(NET))
    except AssertionError as e:
        fail("duplicate allocations after the member was killed: %s" % e)
    for h, ns, ip in ops:
        if ip not in addrs:
            fail("allocation of %s lost" % ns)
        other = next(o for o in lab.hosts.values() if o is not h)
        if not wait(lambda: mac_of(ns) in fdb_macs(other), 5):
            fail("host %s never learned %s" % (other.name, ns))
    lab.start_member(0)
    ok("etcd-kill: one of three members killed during %d adds/deletes; nothing lost, every survivor reachable" % (10 * len(lab.hosts)))


def reclaim(lab):
    """Host c leaves mhnet (every container of it there removed) and then dies (its agent
    killed, its lease runs out): the other agents take back its address blocks."""
    c = lab.hosts["c"]
    hid = agent_status(c)["host"]
    if hid not in lab.blocks(NET).values():
        fail("reclaim: host c (%s) has no block of %s" % (hid, NET))
    c.cnictl("gc", NET, "--valid", "none/eth0")
    mine = [ip for ip, cl in lab.claims(NET).items() if cl[2] == hid]
    if mine:
        fail("reclaim: GC on c left c's claims %s" % mine[:5])
    os.kill(c.pidfile("overlay"), 9)
    start = time.time()
    if not wait(lambda: hid not in lab.blocks(NET).values(), 40):
        fail("reclaim: the blocks of dead host c are still there: %s" % lab.blocks(NET))
    others = set(lab.blocks(NET).values())
    ok("reclaim: host c left %s and died; %.1f s later (its lease: 10 s) its blocks were reclaimed, "
       "the blocks of %d other hosts kept" % (NET, time.time() - start, len(others)))


def agent_kill(lab):
    """Host a's agent killed -9 in the middle of 20 parallel ADDs on a: every ADD either
    succeeds or fails, each failure leaves no address claim and no endpoint, no address is held
    twice, and once the agent is back (the next ADD starts it) the successes are all in etcd."""
    a = lab.hosts["a"]
    hid = agent_status(a)["host"]

    def mine():
        claims = {ip: c for ip, c in lab.claims(NET).items() if c[2] == hid}
        eps = [k for k in lab.etcdctl("get --prefix /swiftcni/networks/%s/endpoints/%s/ --keys-only" % (NET, hid)).split()]
        return claims, eps
    claims0, eps0 = mine()
    nss = [lab.container("ak%d" % i) for i in range(20)]
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        futs = [pool.submit(lambda ns: a.cnictl("add", NET, ns, "--args", "K8S_POD_NAME=" + ns, check=False), ns) for ns in nss]
        wait(lambda: sum(f.done() for f in futs) >= 3, 60)
        os.kill(a.pidfile("overlay"), 9)
        results = [f.result() for f in futs]
    ok_ips = [json.loads(r.stdout)["ips"][0]["address"].split("/")[0] for r in results if r.returncode == 0]
    failed = [ns for ns, r in zip(nss, results) if r.returncode != 0]
    probe = lab.container("akprobe")
    add(lab, a, probe, "ak-probe")  # brings the agent back if no ADD did
    try:
        claims1, eps1 = mine()
    except AssertionError as e:
        fail("agent-kill: %s" % e)
    new = set(claims1) - set(claims0)
    if len(new) != len(ok_ips) + 1 or not set(ok_ips) <= new:
        fail("agent-kill: %d ADDs succeeded (+1 probe) but host a holds %d new claims" % (len(ok_ips), len(new)))
    if len(eps1) - len(eps0) != len(ok_ips) + 1:
        fail("agent-kill: %d ADDs succeeded (+1 probe) but host a has %d new endpoints" % (len(ok_ips), len(eps1) - len(eps0)))
    for ns in failed:
        if sh("ip netns exec %s ip -o link show" % ns).stdout.count(": ") != 1:
            fail("agent-kill: the failed ADD of %s left an interface in it" % ns)
    for ns in nss:
        a.cnictl("del", NET, ns, check=False)
        lab.drop_container(ns)
    claims2, eps2 = mine()
    if set(claims2) - set(claims0) != set(claims1) - set(claims0) - set(ok_ips):
        fail("agent-kill: DELs left claims %s" % sorted(set(claims2) - set(claims0)))
    ok("agent-kill: a's agent killed -9 during 20 parallel ADDs on a: %d succeeded, %d failed leaving nothing; "
       "no address twice, every success claimed and registered once, DELs released them" % (len(ok_ips), len(failed)))


def agent(lab):
    a, b = lab.hosts["a"], lab.hosts["b"]
    pid = b.pidfile("overlay")
    if not pid:
        fail("host b has no agent")
    os.kill(pid, 9)
    ns = lab.container("agentnew")
    ip = add(lab, a, ns, "agent-new")
    mac = mac_of(ns)
    # Host c (its agent alive) learns it; b, without an agent, must not have.
    if not wait(lambda: mac in fdb_macs(lab.hosts["c"]), 5):
        fail("c never learned the new container")
    if mac in fdb_macs(b):
        fail("b learned the new container without an agent")
    # Any CHECK on b brings its agent back; it re-syncs everything.
    bns = next(c for c in lab.containers if c.startswith(lab.tag + "-mb"))
    b.cnictl("check", NET, bns)
    if not wait(lambda: mac in fdb_macs(b), 5):
        fail("b's restarted agent did not learn the new container")
    if not ping(bns, ip):
        fail("b cannot reach the container added while its agent was down")
    ok("agent: b's agent killed, a container added on a meanwhile; restarted, b converged and reaches it")


def etcd_down(lab, members):
    # The whole cluster stops: containers already running keep talking across hosts.
    pairs = [(m, n) for m in members for n in members if m[0] is not n[0]][:6]
    for p in list(lab.etcd):
        lab.kill_member(p)
    if not wait(lambda: sh(lab.ctl("--dial-timeout=300ms endpoint health"), check=False).returncode != 0, 10):
        fail("etcd still answers after every member was stopped")
    for (h, ns, _, _), (h2, _, name, ip) in pairs:
        if not ping(ns, ip, tries=5):
            fail("with etcd down, %s (host %s) cannot reach %s (host %s)" % (ns, h.name, name, h2.name))
    # A new ADD meanwhile fails with code 11 within the bound, and creates nothing.
    a = lab.hosts["a"]
    before = a.links()
    ns = lab.container("downadd")
    start = time.time()
    r = a.cnictl("add", NET, ns, "--args", "K8S_POD_NAME=down-add", check=False)
    took = time.time() - start
    if r.returncode == 0 or "[code 11]" not in r.stdout + r.stderr:
        fail("etcd-down: a new ADD did not fail with code 11: %s%s" % (r.stdout, r.stderr))
    if took > 15 or a.links() != before:
        fail("etcd-down: the refused ADD took %.1f s or left links: %s" % (took, sorted(set(a.links()) ^ set(before))))
    cluster = ",".join("m%d=http://10.99.0.%d:2380" % (m, 201 + m) for m in range(lab.members))
    for m in range(lab.members):
        lab.start_member(m, cluster, "existing")
    if not wait(lambda: sh(lab.ctl("endpoint health"), check=False).returncode == 0, 30):
        fail("etcd did not come back")
    # Once it is back, ADDs work again.
    ip = add(lab, a, ns, "down-add")
    other = next(m for m in members if m[0] is not a)
    if not ping(other[1], ip):
        fail("etcd-down: the container added after etcd came back (%s) is not reachable from host %s; %s"
             % (ip, other[0].name, diagnose(lab, other[0])))
    ok("etcd-down: with every etcd member stopped, containers on different hosts still reach each other; a new ADD "
       "failed with code 11 in %.1f s creating nothing, and worked once etcd was back" % took)


def bad_input(lab):
    a = lab.hosts["a"]
    before_links = a.links()
    before_keys = lab.etcdctl("get --prefix /swiftcni --keys-only").split()
    cases = [
        # (An unreachable cluster on a host without an agent is code 11: OverlayTests.)
        ("another etcd cluster on this host", overlay_conf(lab, name="bad1", vni=5001, endpoints=["http://10.99.0.250:2379"],
                                                           ranges=[[{"subnet": "10.50.0.0/16"}]], aux={}),
         7, "all overlay networks of a host must share one etcd cluster"),
        ("bad VNI", overlay_conf(lab, name="bad2", vni=16777216, ranges=[[{"subnet": "10.51.0.0/16"}]], aux={}),
         7, "\"vni\" 16777216: must be between 1 and 16777215"),
        ("subnet overlap", overlay_conf(lab, name="bad3", vni=5003, ranges=[[{"subnet": "10.10.128.0/20"}]], aux={}),
         7, "subnet 10.10.128.0/20 overlaps subnet 10.10.0.0/16 of overlay network mhnet"),
        ("gateway outside subnet", overlay_conf(lab, name="bad4", vni=5004,
                                                ranges=[[{"subnet": "10.52.0.0/16", "gateway": "10.53.0.1"}]], aux={}),
         7, "gateway"),
        ("underlay missing", overlay_conf(lab, name="bad5", vni=5005, underlay="eth9", ranges=[[{"subnet": "10.54.0.0/16"}]], aux={}),
         7, "\"underlay\" \"eth9\": no such interface"),
    ]
    for what, conf, code, msg in cases:
        ns = lab.container("bad")
        conf = dict(conf, cniVersion="1.1.0", name=conf.get("name", "bad"))
        rc, out = a.plugin("overlay", "ADD", dict(conf, name=conf["name"] if "name" in conf else "bad"),
                           cid="bad-" + what.replace(" ", "-"), netns="/run/netns/" + ns)
        if rc == 0 or not out or out.get("code") != code or msg not in out.get("msg", ""):
            fail("%s: expected code %d with \"%s\", got %s" % (what, code, msg, out))
        if a.links() != before_links:
            fail("%s left links behind: %s" % (what, sorted(set(a.links()) - set(before_links))))
        if len(sh("ip -n %s -o link show" % ns).stdout.splitlines()) != 1:
            fail("%s left an interface in the container" % what)
        lab.drop_container(ns)
        print("multihost:   %s → code %d: %s" % (what, code, out["msg"]), flush=True)
    after_keys = lab.etcdctl("get --prefix /swiftcni --keys-only").split()
    if sorted(after_keys) != sorted(before_keys):
        fail("bad input changed etcd: %s" % sorted(set(after_keys) ^ set(before_keys)))
    ok("bad-input: 5 cases, each a clear error, nothing created")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("--per-host", type=int, default=50)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--plain", action="store_true", help="plain HTTP to etcd instead of mutual TLS")
    args = ap.parse_args()
    lab = Lab(args.bin, members=3, tls=not args.plain)
    print("multihost: etcd over %s" % ("plain HTTP" if args.plain else "mutual TLS (client certificates)"), flush=True)
    try:
        lab.write_conflist(NET, conflist(lab))
        members = mesh(lab)
        late_peer(lab)
        ipv6(lab)
        parallel(lab, args.per_host)
        delete(lab, members)
        gc(lab)
        retry(lab, members)
        etcd_kill(lab)
        agent(lab)
        agent_kill(lab)
        etcd_down(lab, [m for m in members if m[1] in lab.containers])
        bad_input(lab)
        reclaim(lab)
        print("multihost: all checks passed", flush=True)
    finally:
        if not args.keep:
            lab.cleanup()
        else:
            print("kept: " + lab.tmp)


if __name__ == "__main__":
    main()
