#!/usr/bin/env python3
"""Overlay figures, measured on a multi-host lab (scripts/overlay/lab.py: three simulated
hosts in network namespaces on an underlay bridge, a real 3-member etcd cluster):

  1. ADD latency of the overlay plugin vs the bridge plugin on the same host (each exec
     timed alone by execbench, alternating; medians);
  2. convergence: from the moment ADD returns on host a to the first successful ping from
     a container on host b (which starts pinging, every 2 ms, when ADD returns; median,
     target ≤ 100 ms);
  3. 150 containers across 3 hosts added in parallel, and the time it took.

Run as root from the repository root:  scripts/bench/overlaybench.py [--samples 20] [--no-build]
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
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--per-host", type=int, default=50)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("overlaybench.py: run as root")
    if not args.no_build:
        subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    lab = Lab(BUILD, members=3, tag="ob%d" % (os.getpid() % 100000))
    try:
        execbench = os.path.join(lab.tmp, "execbench")
        subprocess.run(["gcc", "-O2", "-o", execbench, os.path.join(ROOT, "scripts/bench/execbench.c")], check=True)
        a, b = lab.hosts["a"], lab.hosts["b"]

        def timed(host, plugin, conf, cid, ns):
            path = os.path.join(lab.tmp, "cfg-%s.json" % cid)
            with open(path, "w") as f:
                json.dump(conf, f)
            argv = ["nsenter", "--net=/run/netns/" + host.ns, execbench, "-i", path, "-o", path + ".out"]
            for k, v in {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": cid, "CNI_NETNS": "/run/netns/" + ns, "CNI_IFNAME": "eth0",
                         "CNI_PATH": BUILD, "SWIFTCNI_RUN_DIR": host.env["SWIFTCNI_RUN_DIR"],
                         "SWIFTCNI_STATE_DIR": host.env["SWIFTCNI_STATE_DIR"]}.items():
                argv += ["-e", "%s=%s" % (k, v)]
            r = subprocess.run(argv + ["--", os.path.join(BUILD, plugin)], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("%s ADD failed: %s" % (plugin, open(path + ".out").read()))
            return int(r.stdout.strip()) / 1000.0

        # 1. ADD latency, alternating; one warm-up each (the agent and DNS-free first ADD).
        ov, br = [], []
        for i in range(args.samples + 1):
            o = timed(a, "overlay", overlay_plugin_conf(lab), "ov%d" % i, lab.container("lo%d" % i))
            r = timed(a, "bridge", bridge_plugin_conf(lab, a), "br%d" % i, lab.container("lb%d" % i))
            if i > 0:
                ov.append(o)
                br.append(r)

        # 2. Convergence: as soon as ADD returns on a, a container on b pings the new one every
        #    2 ms. (A pinger started before the ADD would measure the container's own ARP
        #    retry timer, 1 s, not the overlay.)
        lab.write_conflist("ovb", {"cniVersion": "1.1.0", "name": "ovb", "plugins": [overlay_plugin_conf(lab)]})
        watcher = lab.container("watch")
        b.cnictl("add", "ovb", watcher)
        conv = []
        for i in range(args.samples):
            ip = "10.40.9.%d" % (i + 10)
            ns = lab.container("cv%d" % i)
            a.cnictl("add", "ovb", ns, "--args", "IP=" + ip)
            returned = time.time()
            pinger = subprocess.Popen(["nsenter", "--net=/run/netns/" + watcher, "ping", "-D", "-n", "-i", "0.002", "-W", "1",
                                       "-w", "4", "-c", "1", ip], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            out, _ = pinger.communicate()
            replies = [float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
            if not replies:
                raise RuntimeError("no reply from %s within 4 s" % ip)
            conv.append(max(0.0, (replies[0] - returned) * 1000))

        # 3. 150 containers across 3 hosts, in parallel.
        lab.write_conflist("ovp", {"cniVersion": "1.1.0", "name": "ovp", "plugins": [dict(
            overlay_plugin_conf(lab), name="ovp", vni=4243,
            ipam={"type": "host-local", "ranges": [[{"subnet": "10.42.0.0/16"}]]})]})
        jobs = [(h, lab.container("pp%s%d" % (h.name, i))) for h in lab.hosts.values() for i in range(args.per_host)]
        start = time.time()
        with cf.ThreadPoolExecutor(max_workers=18) as pool:
            results = list(pool.map(lambda j: json.loads(j[0].cnictl("add", "ovp", j[1]).stdout)["ips"][0]["address"], jobs))
        took = time.time() - start
        if len(set(results)) != len(results):
            raise RuntimeError("duplicate addresses in the parallel run")

        print()
        print("overlay on a 3-host lab (3-member etcd), %d samples, kernel %s" % (args.samples, os.uname().release))
        print()
        print("| measurement | median | p90 | target |")
        print("|---|---:|---:|---|")
        print("| ADD, overlay plugin (ms) | %.2f | %.2f | |" % (statistics.median(ov), sorted(ov)[int(len(ov) * 0.9)]))
        print("| ADD, bridge plugin, same host (ms) | %.2f | %.2f | |" % (statistics.median(br), sorted(br)[int(len(br) * 0.9)]))
        print("| ratio overlay / bridge | %.2f | | |" % (statistics.median(ov) / statistics.median(br)))
        cm = statistics.median(conv)
        print("| convergence: ADD returns on a → first ping reply on b (ms) | %.1f | %.1f | ≤ 100 ms: %s |" % (
            cm, sorted(conv)[int(len(conv) * 0.9)], "met" if cm <= 100 else "NOT met"))
        print("| %d containers on 3 hosts added in parallel (s) | %.1f | | all addresses distinct |" % (len(jobs), took))
    finally:
        lab.cleanup()


if __name__ == "__main__":
    main()
