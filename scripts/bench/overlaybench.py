#!/usr/bin/env python3
"""Overlay figures, measured on a multi-host lab (scripts/overlay/lab.py: six simulated
hosts in network namespaces on an underlay bridge, a real 3-member etcd cluster):

  1. ADD latency of the overlay plugin vs the bridge plugin on the same host (each exec
     timed alone by execbench, alternating, in one run; medians; target ratio ≤ 1.2);
  2. convergence: from the moment ADD returns on one host to the first successful ping from
     a container on another (which starts pinging, every 2 ms, when ADD returns); the ADDs
     go round the hosts, each pinged from the next; p50 and p99 (target p99 ≤ 50 ms);
  3. etcd writes per ADD: the cluster's revision before and after sequential ADDs, divided
     by their number (target ≤ 1.1);
  4. containers across the hosts added in parallel, and the time it took.

Run as root from the repository root:  scripts/bench/overlaybench.py [--samples 30] [--no-build]
"""
import argparse
import concurrent.futures as cf
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "overlay"))
from lab import Lab  # noqa: E402

BUILD = os.path.join(ROOT, ".build", "release")


def overlay_plugin_conf(lab):
    return {"cniVersion": "1.1.0", "name": "ovb", "type": "overlay", "vni": 4242, "underlay": "eth0",
            "etcd": {"endpoints": lab.endpoints},
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.40.0.0/16", "gateway": "10.40.0.1"}]]}}


def bridge_plugin_conf(lab, host):
    return {"cniVersion": "1.1.0", "name": "brb", "type": "bridge", "bridge": "brb0", "isGateway": True,
            "ipam": {"type": "host-local", "dataDir": os.path.join(host.root, "ipam"),
                     "ranges": [[{"subnet": "10.41.0.0/16"}]]}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--hosts", type=int, default=6)
    ap.add_argument("--convergence", type=int, default=120, help="convergence samples")
    ap.add_argument("--writes", type=int, default=100, help="sequential ADDs for the writes per ADD")
    ap.add_argument("--per-host", type=int, default=25)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--trace", type=int, default=0, help="also print where N traced ADDs of each plugin spend their time")
    args = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("overlaybench.py: run as root")
    if not args.no_build:
        subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    names = tuple("abcdefghij"[:args.hosts])
    lab = Lab(BUILD, members=3, hosts=names, tag="ob%d" % (os.getpid() % 100000))
    try:
        execbench = os.path.join(lab.tmp, "execbench")
        subprocess.run(["gcc", "-O2", "-o", execbench, os.path.join(ROOT, "scripts/bench/execbench.c")], check=True)
        a = lab.hosts["a"]

        def timed(host, plugin, conf, cid, ns, trace=None):
            path = os.path.join(lab.tmp, "cfg-%s.json" % cid)
            with open(path, "w") as f:
                json.dump(conf, f)
            argv = ["nsenter", "--net=/run/netns/" + host.ns, execbench, "-i", path, "-o", path + ".out"]
            for k, v in {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": cid, "CNI_NETNS": "/run/netns/" + ns, "CNI_IFNAME": "eth0",
                         "CNI_PATH": BUILD, "SWIFTCNI_RUN_DIR": host.env["SWIFTCNI_RUN_DIR"],
                         "SWIFTCNI_STATE_DIR": host.env["SWIFTCNI_STATE_DIR"], "SWIFTCNI_TRACE": "1" if trace is not None else "0"}.items():
                argv += ["-e", "%s=%s" % (k, v)]
            r = subprocess.run(argv + ["--", os.path.join(BUILD, plugin)], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("%s ADD failed: %s" % (plugin, open(path + ".out").read()))
            if trace is not None:
                for m in re.finditer(r"^\[trace\] (.*): \+([0-9.]+) ms", r.stderr, re.M):
                    trace.setdefault(m.group(1), []).append(float(m.group(2)))
            return int(r.stdout.strip()) / 1000.0

        # 1. ADD latency, alternating; one warm-up each (the agent and DNS-free first ADD).
        ov, br = [], []
        for i in range(args.samples + 1):
            o = timed(a, "overlay", overlay_plugin_conf(lab), "ov%d" % i, lab.container("lo%d" % i))
            r = timed(a, "bridge", bridge_plugin_conf(lab, a), "br%d" % i, lab.container("lb%d" % i))
            if i > 0:
                ov.append(o)
                br.append(r)

        # Where an ADD's time goes (--trace N): each phase's median over N traced ADDs.
        if args.trace:
            for plugin, conf, tag in (("overlay", lambda: overlay_plugin_conf(lab), "to"), ("bridge", lambda: bridge_plugin_conf(lab, a), "tb")):
                phases = {}
                for i in range(args.trace):
                    timed(a, plugin, conf(), "%s%d" % (tag, i), lab.container("%s%d" % (tag, i)), trace=phases)
                print("%s ADD phases (median ms over %d):" % (plugin, args.trace))
                for k, v in phases.items():
                    print("  %-24s %7.3f" % (k, statistics.median(v)))

        # 2. Convergence: as soon as ADD returns on one host, a container on the next host
        #    pings the new one every 2 ms. (A pinger started before the ADD would measure the
        #    container's own ARP retry timer, 1 s, not the overlay.)
        lab.write_conflist("ovb", {"cniVersion": "1.1.0", "name": "ovb", "plugins": [overlay_plugin_conf(lab)]})
        hosts = list(lab.hosts.values())
        watchers = []
        for h in hosts:
            w = lab.container("watch" + h.name)
            h.cnictl("add", "ovb", w)
            watchers.append(w)
        conv = []
        for i in range(args.convergence):
            h = hosts[i % len(hosts)]
            watcher = watchers[(i + 1) % len(hosts)]
            ip = "10.40.%d.%d" % (10 + i // 200, 10 + i % 200)
            ns = lab.container("cv%d" % i)
            h.cnictl("add", "ovb", ns, "--args", "IP=" + ip)
            returned = time.time()
            pinger = subprocess.Popen(["nsenter", "--net=/run/netns/" + watcher, "ping", "-D", "-n", "-i", "0.002", "-W", "1",
                                       "-w", "4", "-c", "1", ip], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            out, _ = pinger.communicate()
            replies = [float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
            if not replies:
                raise RuntimeError("no reply from %s within 4 s" % ip)
            conv.append(max(0.0, (replies[0] - returned) * 1000))

        # 3. etcd writes per ADD: the store's revision moves once per committed write.
        def revision():
            st = json.loads(lab.etcdctl("endpoint status -w json"))
            return max(int(m["Status"]["header"]["revision"]) for m in st)
        lab.write_conflist("ovw", {"cniVersion": "1.1.0", "name": "ovw", "plugins": [dict(
            overlay_plugin_conf(lab), name="ovw", vni=4244,
            ipam={"type": "host-local", "ranges": [[{"subnet": "10.43.0.0/16"}]]})]})
        a.cnictl("add", "ovw", lab.container("wwarm"))  # the network's definition, once
        before = revision()
        for i in range(args.writes):
            a.cnictl("add", "ovw", lab.container("ww%d" % i))
        writes = (revision() - before) / args.writes

        # 4. Containers across the hosts, in parallel.
        lab.write_conflist("ovp", {"cniVersion": "1.1.0", "name": "ovp", "plugins": [dict(
            overlay_plugin_conf(lab), name="ovp", vni=4243,
            ipam={"type": "host-local", "ranges": [[{"subnet": "10.42.0.0/16"}]]})]})
        jobs = [(h, lab.container("pp%s%d" % (h.name, i))) for h in lab.hosts.values() for i in range(args.per_host)]
        start = time.time()
        with cf.ThreadPoolExecutor(max_workers=3 * len(hosts)) as pool:
            results = list(pool.map(lambda j: json.loads(j[0].cnictl("add", "ovp", j[1]).stdout)["ips"][0]["address"], jobs))
        took = time.time() - start
        if len(set(results)) != len(results):
            raise RuntimeError("duplicate addresses in the parallel run")

        print()
        print("overlay on a %d-host lab (3-member etcd), %d ADD samples, %d convergence samples, kernel %s" % (
            len(hosts), args.samples, len(conv), os.uname().release))
        print()
        print("| measurement | median | p90 | target |")
        print("|---|---:|---:|---|")
        print("| ADD, overlay plugin (ms) | %.2f | %.2f | |" % (statistics.median(ov), sorted(ov)[int(len(ov) * 0.9)]))
        print("| ADD, bridge plugin, same host (ms) | %.2f | %.2f | |" % (statistics.median(br), sorted(br)[int(len(br) * 0.9)]))
        ratio = statistics.median(ov) / statistics.median(br)
        print("| ratio overlay / bridge | %.2f | | ≤ 1.2: %s |" % (ratio, "met" if ratio <= 1.2 else "NOT met"))
        cs = sorted(conv)
        p99 = cs[min(len(cs) - 1, int(len(cs) * 0.99))]
        print("| convergence: ADD returns on one host → first ping reply from another (ms), p50 / p99 | %.1f | %.1f (p99) | p99 ≤ 50 ms: %s |" % (
            statistics.median(conv), p99, "met" if p99 <= 50 else "NOT met"))
        print("| etcd writes per ADD (revision over %d sequential ADDs) | %.2f | | ≤ 1.1: %s |" % (
            args.writes, writes, "met" if writes <= 1.1 else "NOT met"))
        print("| %d containers on %d hosts added in parallel (s) | %.1f | | all addresses distinct |" % (len(jobs), len(hosts), took))
    finally:
        lab.cleanup()


if __name__ == "__main__":
    main()
