#!/usr/bin/env python3
"""The overlay under concurrency, repeated: a real 3-member etcd cluster and three simulated
hosts; each round adds 3 hosts × 6 containers at once on a two-subnet overlay network with
DNS, then checks that every container pings every other and resolves every other's name
within 1 s of the last ADD returning; then deletes them all at once and checks that no FDB or
neighbour entry, DNS record, address or etcd endpoint key is left. Some rounds kill a host's
agent (-9) mid-round and restart it; some restart an etcd member mid-round.

    scripts/overlay/stress-test.py BIN_DIR [--rounds 20] [--per-host 6] [--bound 1.0]

Prints one line per round and the convergence p50/p99/max over all rounds (per container:
from the last ADD returning, or the agent's restart in a kill round, to the moment it
reached and resolved every other); exits 1 on the first miss, naming it.
"""
import argparse
import concurrent.futures as cf
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import Lab, sh, wait  # noqa: E402

NET = "stress"
VNI = 4242
VXLAN = "ovvx%d" % VNI
SUBNET_A, SUBNET_B = "10.40.0.0/16", "10.41.0.0/16"
# A small ipRange in the first subnet: every round also fills the second.
RANGES = [[{"subnet": SUBNET_A, "gateway": "10.40.0.1", "ipRange": "10.40.1.0/29"},
           {"subnet": SUBNET_B, "gateway": "10.41.0.1"}]]
GATEWAYS = {"10.40.0.1", "10.41.0.1"}
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")


def fail(msg):
    print("stress: FAIL " + msg, flush=True)
    raise SystemExit(1)


def conflist(lab):
    return {"cniVersion": "1.1.0", "name": NET, "plugins": [
        {"type": "overlay", "vni": VNI, "underlay": "eth0", "etcd": {"endpoints": lab.endpoints},
         "ipam": {"type": "host-local", "ranges": RANGES}, "capabilities": {"aliases": True}},
        {"type": "dns-alias", "domainName": "stress.test", "upstream": [], "capabilities": {"aliases": True}}]}


def agent_pid(h):
    return h.pidfile("overlay")


def restart_agent(lab, h):
    """Starts the host's agent the way a plugin does (ensureAgent), through a CHECK."""
    ns = next(c for c in lab.containers if c.startswith("%s-r" % lab.tag) and c.split("-")[-1].startswith(h.name))
    h.cnictl("check", NET, ns, check=False)
    if not wait(lambda: agent_pid(h) is not None, 5):
        fail("host %s: the agent did not come back" % h.name)


def agent_status(h):
    """The agent's one-line status (its control socket), or why there is none."""
    sock = os.path.join(h.root, "run", "overlay", "control.sock")
    r = h.run(["python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1]);"
               "s.sendall(b'status\\n'); print(s.recv(4096).decode().strip())", sock], check=False)
    return (r.stdout or r.stderr).strip()


def diagnose(lab, job, ip):
    """What the other hosts hold for a container that reached none of them: its MAC in their
    FDB, its address in their neighbour table, its record in etcd, each agent's status."""
    h, ns, name = job
    mac = sh("ip -n %s -o link show eth0" % ns, check=False).stdout.split("link/ether ")[-1].split()[0]
    print("stress: diagnose: %s on host %s is %s at %s" % (name, h.name, ip, mac), flush=True)
    for o in lab.hosts.values():
        fdb = [l for l in o.run(["bridge", "fdb", "show", "dev", VXLAN], check=False).stdout.splitlines() if mac in l]
        neigh = o.run(["ip", "neigh", "show", ip, "dev", VXLAN], check=False).stdout.strip()
        print("stress: diagnose: host %s: fdb %s; neigh %s; agent %s" % (o.name, fdb, neigh or "none", agent_status(o)), flush=True)
    rec = [l for l in lab.etcdctl("get --prefix /swiftcni/networks/%s/endpoints/" % NET).splitlines() if name in l or ip in l]
    print("stress: diagnose: etcd: %s" % rec, flush=True)


def leftovers(lab):
    out = []
    for h in lab.hosts.values():
        fdb = [l for l in h.run(["bridge", "fdb", "show", "dev", VXLAN], check=False).stdout.splitlines() if " dst " in l]
        neigh = [l for l in h.run(["ip", "neigh", "show", "dev", VXLAN], check=False).stdout.splitlines() if "PERMANENT" in l]
        dns_dir = os.path.join(h.root, "run", "dns")
        recs = []
        for d, _, files in os.walk(dns_dir):
            if os.path.basename(d) == NET:
                recs += [f for f in files if f != "_network" and ".tmp." not in f]
        if fdb or neigh or recs:
            out.append("host %s: %d FDB, %d neighbour entries, DNS records %s" % (h.name, len(fdb), len(neigh), recs))
    claims = lab.claims(NET)
    if claims:
        out.append("etcd address claims: %s" % sorted(claims))
    keys = lab.etcdctl("get --prefix /swiftcni/networks/%s/endpoints/ --keys-only" % NET).split()
    if keys:
        out.append("etcd endpoint keys: %s" % keys)
    return out


def one_round(lab, r, per_host, bound, fault):
    hosts = list(lab.hosts.values())
    jobs = []
    for h in hosts:
        for i in range(per_host):
            name = "r%d-%s%d" % (r, h.name, i)
            jobs.append((h, lab.container(name), name))
    returned = []
    restarted = [0.0]
    killed = []
    note = []

    # Each host's first container asks for an address in the first subnet (Docker's --ip);
    # the others get one from the ranges, in the second subnet once the ipRange is used up:
    # every round has containers in both.
    def add(job):
        h, ns, name = job
        args = "IgnoreUnknown=1;K8S_POD_NAME=" + name
        if name.endswith("0"):
            args += ";IP=10.40.2.%d" % (10 + hosts.index(h))
        res = h.cnictl("add", NET, ns, "--args", args, check=False)
        t = time.monotonic()
        if res.returncode != 0:
            return job, None, t, res.stderr.strip()
        out = json.loads(res.stdout)
        ip = out["ips"][0]["address"].split("/")[0]
        gw = out["ips"][0].get("gateway")
        return job, (ip, gw, out["dns"]["nameservers"][0]), t, ""

    # The probes start now and wait for their targets, so their start-up is not timed.
    probes = {ns: subprocess.Popen(["ip", "netns", "exec", ns, "python3", PROBE, "-"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True) for _, ns, _ in jobs}
    results = []
    with cf.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futs = [pool.submit(add, j) for j in jobs]
        if fault == "agent":
            # Mid-round: once a third of the ADDs returned, a host's agent dies.
            wait(lambda: sum(f.done() for f in futs) >= len(futs) // 3, 30)
            victim = hosts[r % len(hosts)]
            pid = agent_pid(victim)
            if not pid:
                fail("round %d: host %s has no agent to kill" % (r, victim.name))
            os.kill(pid, 9)
            killed.append(victim)
            note.append("host %s's agent killed -9 after %d of %d ADDs" % (victim.name, sum(f.done() for f in futs), len(futs)))
        elif fault == "etcd":
            wait(lambda: sum(f.done() for f in futs) >= len(futs) // 3, 30)
            m = r % lab.members
            lab.kill_member(m)
            lab.start_member(m)
            note.append("etcd member m%d killed and restarted after %d of %d ADDs" % (m, sum(f.done() for f in futs), len(futs)))
        for f in futs:
            results.append(f.result())
    for job, got, t, err in results:
        if got is None:
            for p in probes.values():
                p.kill()
            fail("round %d: ADD of %s on host %s failed: %s" % (r, job[2], job[0].name, err))
        returned.append(t)
    for v in killed:
        # A later ADD on that host may have restarted it already; if not, the runtime's next
        # call does (here a CHECK, as the multi-host test does).
        if agent_pid(v) is None:
            restart_agent(lab, v)
            note.append("restarted by a CHECK")
            restarted[0] = time.monotonic()
        else:
            note.append("restarted by a later ADD")
    last = max(returned + restarted)
    members = [(job, got) for job, got, _, _ in results]
    ips = [g[0] for _, g in members]
    if len(set(ips)) != len(ips):
        fail("round %d: duplicate addresses %s" % (r, sorted(ip for ip in set(ips) if ips.count(ip) > 1)))
    in_b = sum(1 for ip in ips if ipaddress.ip_address(ip) in ipaddress.ip_network(SUBNET_B))
    if in_b == 0 or in_b == len(ips):
        fail("round %d: the containers did not use both subnets (%d of %d in %s)" % (r, in_b, len(ips), SUBNET_B))
    for (job, (ip, gw, ns)) in members:
        if ns != gw:
            fail("round %d: %s was handed nameserver %s, not its gateway %s" % (r, job[2], ns, gw))

    # Every container reaches and resolves every other (names as bare names).
    for (h, ns, name), (ip, gw, server) in members:
        spec = {"server": server, "timeout": bound + 4, "targets": {j[2]: g[0] for j, g in members if j[1] != ns}}
        probes[ns].stdin.write(json.dumps(spec) + "\n")
        probes[ns].stdin.flush()

    def probe(m):
        out, _ = probes[m[0][1]].communicate()
        return m, json.loads(out)

    samples = []
    with cf.ThreadPoolExecutor(max_workers=len(members)) as pool:
        for (job, got), res in pool.map(probe, members):
            if res["done"] is None:
                diagnose(lab, job, got[0])
                fail("round %d: %s (host %s, %s) did not reach %s / resolve %s" % (
                    r, job[2], job[0].name, got[0], res["missing_ping"], res["missing_dns"]))
            samples.append((max(0.0, res["done"] - last), job, got[0], res.get("last")))
    worst, job, ip, what = max(samples, key=lambda s: s[0])
    if worst > bound:
        fail("round %d: convergence %.3f s > %.1f s after the last ADD (slowest: %s on host %s, %s; its last answer: %s)" % (
            r, worst, bound, job[2], job[0].name, ip, what))
    samples = [s[0] for s in samples]

    # Everything goes at once.
    def delete(job):
        h, ns, name = job
        res = h.cnictl("del", NET, ns, check=False)
        return job, res
    with cf.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for job, res in pool.map(delete, jobs):
            if res.returncode != 0:
                fail("round %d: DEL of %s failed: %s" % (r, job[2], res.stderr.strip()))
    if not wait(lambda: not leftovers(lab), 5):
        fail("round %d: left after every DEL: %s" % (r, "; ".join(leftovers(lab))))
    for _, ns, _ in jobs:
        lab.drop_container(ns)
    return samples, "; ".join(note)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-host", type=int, default=6)
    ap.add_argument("--bound", type=float, default=1.0)
    ap.add_argument("--keep", action="store_true", help="keep the lab's files (logs) after a failure")
    args = ap.parse_args()
    lab = Lab(args.bin, members=3, tag="st%d" % (os.getpid() % 100000))
    all_samples = []
    try:
        lab.write_conflist(NET, conflist(lab))
        for r in range(args.rounds):
            fault = "agent" if r % 5 == 2 else "etcd" if r % 5 == 4 else None
            t0 = time.monotonic()
            samples, note = one_round(lab, r, args.per_host, args.bound, fault)
            all_samples += samples
            print("stress: round %2d ok%s: %d containers, convergence max %.3f s, round %.1f s" % (
                r, " (%s)" % note if note else "", len(samples), max(samples), time.monotonic() - t0), flush=True)
        s = sorted(all_samples)
        p99 = s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]
        print("stress: convergence over %d rounds (%d samples): p50 %.3f s, p99 %.3f s, max %.3f s" % (
            args.rounds, len(s), statistics.median(s), p99, s[-1]), flush=True)
        print("stress: all rounds passed", flush=True)
    finally:
        if args.keep:
            keep = lab.tmp + ".kept"
            sh("cp -a %s %s" % (lab.tmp, keep), check=False)
            print("stress: files kept in " + keep)
        lab.cleanup()


if __name__ == "__main__":
    main()
