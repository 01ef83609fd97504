#!/usr/bin/env python3
"""What cnictl itself adds to `cnictl run` on top of the plugin execs it makes.

Run as root from the repository root:  scripts/bench/cnictlbench.py [--runs 30] [--no-build]

In a throwaway host network namespace: a user-defined bridge network (bridge + host-local +
portmap + dns-alias, as `cnictl network create` writes it); then `--runs` times
`cnictl run --name wN --network web -p PORT:80 --timing`, each exec timed alone by execbench.
cnictl's share = wall time − the plugin execs it reports; split into start-up (wall − the
command's own time) and the command's own work. Medians; target ≤ 10 ms per attachment.
"""
import glob
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build", "release")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("cnictlbench.py: run as root")
    if not args.no_build:
        subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="swiftcni-cnictlbench-")
    host = "cb%d-host" % (os.getpid() % 100000)
    names = []
    env = dict(os.environ, NETCONFPATH=tmp + "/net.d", CNI_PATH=tmp + "/bin", SWIFTCNI_RUN_DIR=tmp + "/run",
               SWIFTCNI_STATE_DIR=tmp + "/state", CNI_CACHE_DIR=tmp + "/cache")
    try:
        os.makedirs(tmp + "/bin")
        for p in ["bridge", "host-local", "loopback", "portmap", "dns-alias", "swiftcni-dns", "cnictl"]:
            subprocess.run(["install", "-s", "-m", "0755", os.path.join(BUILD, p), os.path.join(tmp, "bin", p)], check=True)
        execbench = tmp + "/execbench"
        subprocess.run(["gcc", "-O2", "-o", execbench, os.path.join(ROOT, "scripts/bench/execbench.c")], check=True)
        subprocess.run(["ip", "netns", "add", host], check=True)
        subprocess.run(["ip", "-n", host, "link", "set", "lo", "up"], check=True)
        cnictl = [tmp + "/bin/cnictl"]
        inhost = ["nsenter", "--net=/run/netns/" + host]
        subprocess.run(inhost + cnictl + ["network", "create", "--subnet", "172.29.0.0/16", "web"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        with open(tmp + "/empty", "w"):
            pass
        walls, plugins, own = [], [], []
        for i in range(args.runs + 1):
            name = "w%d" % i
            argv = inhost + [execbench, "-i", tmp + "/empty", "-o", tmp + "/out"]
            for k in ["NETCONFPATH", "CNI_PATH", "SWIFTCNI_RUN_DIR", "SWIFTCNI_STATE_DIR", "CNI_CACHE_DIR"]:
                argv += ["-e", "%s=%s" % (k, env[k])]
            argv += ["--"] + cnictl + ["run", "--name", name, "--network", "web", "-p", "%d:80" % (9000 + i), "--timing"]
            r = subprocess.run(argv, capture_output=True, text=True)
            names.append(name)
            m = re.search(r"command ([\d.]+) ms = plugin execs ([\d.]+) ms \+ cnictl ([\d.]+) ms", r.stderr)
            if r.returncode != 0 or not m:
                raise RuntimeError("cnictl run failed: %s %s" % (open(tmp + "/out").read(), r.stderr))
            if i == 0:
                continue  # warm-up: the DNS server starts here
            wall = int(r.stdout.strip()) / 1000.0
            walls.append(wall)
            plugins.append(float(m.group(2)))
            own.append(float(m.group(3)))
        over = [w - p for w, p in zip(walls, plugins)]
        startup = [w - float(c) for w, c in zip(walls, [p + o for p, o in zip(plugins, own)])]
        med = statistics.median
        print()
        print("cnictl run on a bridge network with one published port and DNS (bridge, portmap, dns-alias), %d runs, medians:" % args.runs)
        print()
        print("| | ms |")
        print("|---|---:|")
        print("| whole `cnictl run` (wall) | %.2f |" % med(walls))
        print("| plugin execs (3 plugins, each exec'd and waited for) | %.2f |" % med(plugins))
        print("| **cnictl itself** (wall − plugin execs) | **%.2f** |" % med(over))
        print("| … of which process start-up (runtime, argument parsing) | %.2f |" % med(startup))
        print("| … of which the command's own work (netns, lo, records, cache, resolv.conf) | %.2f |" % med(own))
        print("| target | ≤ 10 per attachment: %s |" % ("met" if med(over) <= 10 else "NOT met"))
    finally:
        for n in names:
            subprocess.run(inhost + cnictl + ["rm", "-f", n], env=env, capture_output=True)
        subprocess.run(inhost + cnictl + ["network", "rm", "web"], env=env, capture_output=True)
        pid = None
        try:
            pid = int(open(glob.glob(tmp + "/run/dns/netns-*/server.pid")[0]).read())
            if "swiftcni-dns" in open("/proc/%d/cmdline" % pid).read():
                os.kill(pid, 9)
        except Exception:
            pass
        subprocess.run(["ip", "netns", "del", host], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
