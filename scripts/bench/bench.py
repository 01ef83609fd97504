#!/usr/bin/env python3
"""swiftcni vs the Go reference plugins, side by side in one run.

Run as root from the repository root:

    scripts/bench/bench.py [--containers 60] [--version-runs 200] [--no-build]

Every sample execs one plugin the way a runtime does (environment, config on stdin) through
execbench (scripts/bench/execbench.c), which times only the plugin process. Runs of ours and
the reference alternate, so drift on the machine hits both alike. Everything happens in a
throwaway "host" network namespace; it and all state are removed at the end.

Prints medians (ms) and the ratio ours/reference, with the targets of the issues.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = "/usr/lib/cni"
BUILD = os.path.join(ROOT, ".build", "release")
OURS = None  # the installed (stripped) copies, set up in Bench.setup


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tag = "scbench%d" % (os.getpid() % 100000)
        self.host = self.tag + "-host"
        self.tmp = tempfile.mkdtemp(prefix="swiftcni-bench-")
        self.namespaces = []
        self.execbench = os.path.join(self.tmp, "execbench")

    def setup(self):
        if not self.args.no_build:
            print("building release (--static-swift-stdlib)…", file=sys.stderr)
            subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run(["gcc", "-O2", "-o", self.execbench, os.path.join(ROOT, "scripts/bench/execbench.c")], check=True)
        # Installed as scripts/install.sh installs them (stripped), like the reference's.
        global OURS
        OURS = os.path.join(self.tmp, "bin")
        os.makedirs(OURS)
        for p in ["bridge", "host-local", "loopback", "portmap"]:
            subprocess.run(["install", "-s", "-m", "0755", os.path.join(BUILD, p), os.path.join(OURS, p)], check=True)
        self.netns(self.host)
        sh("ip -n %s link set lo up" % self.host)

    def netns(self, name):
        sh("ip netns add " + name)
        self.namespaces.append(name)
        return name

    def cleanup(self):
        for ns in reversed(self.namespaces):
            sh("ip netns del " + ns, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, plugin, conf, env, phases=None):
        """One plugin exec inside the host namespace; returns microseconds. With `phases`
        (a dict), the plugin's SWIFTCNI_TRACE phase times (ms) are stored there."""
        cfg = os.path.join(self.tmp, "cfg-%d.json" % abs(hash(conf)))
        if not os.path.exists(cfg):
            with open(cfg, "w") as f:
                f.write(conf)
        argv = ["nsenter", "--net=/run/netns/" + self.host, self.execbench, "-i", cfg,
                "-o", os.path.join(self.tmp, "out.json")]
        for k, v in env.items():
            argv += ["-e", "%s=%s" % (k, v)]
        if phases is not None:
            argv += ["-e", "SWIFTCNI_TRACE=1"]
        argv += ["-e", "SWIFTCNI_RUN_DIR=" + os.path.join(self.tmp, "run"), "--", plugin]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            out = open(os.path.join(self.tmp, "out.json")).read()
            raise RuntimeError("%s %s failed: %s %s" % (plugin, env.get("CNI_COMMAND"), out, r.stderr))
        if phases is not None:
            for line in r.stderr.splitlines():
                if line.startswith("[trace] ") and ": +" in line:
                    name, rest = line[8:].split(": +", 1)
                    phases[name] = float(rest.split(" ", 1)[0])
        return int(r.stdout.strip())

    def bridge_conf(self, who, n, extra=None):
        conf = {"cniVersion": "1.0.0", "name": "%s-%s%d" % (self.tag, who, n), "type": "bridge",
                "bridge": ("sb%s%d" % (who[0], n))[:15], "isGateway": True,
                "ipam": {"type": "host-local", "dataDir": os.path.join(self.tmp, "data-" + who),
                         "ranges": [[{"subnet": "10.%d.0.0/16" % (60 + n)}]]}}
        conf.update(extra or {})
        return json.dumps(conf)

    def version(self, runs):
        rows = []
        for p in ["bridge", "host-local", "loopback"]:
            ours, ref = [], []
            conf = '{"cniVersion":"1.0.0"}'
            for _ in range(runs):
                ours.append(self.run(os.path.join(OURS, p), conf, {"CNI_COMMAND": "VERSION"}))
                ref.append(self.run(os.path.join(REF, p), conf, {"CNI_COMMAND": "VERSION"}))
            rows.append(("VERSION %s" % p, ours, ref, 1.2))
        return rows

    def scale(self, small=10, large=500, samples=20, pause=0.5):
        """ADD time on a network that already has `small` vs `large` attachments (ours), in
        steady state: the network is left to settle, samples are `pause` s apart. Also the
        firewall phase alone (from SWIFTCNI_TRACE), which must not grow."""
        conf = self.bridge_conf("ours", 40, {"ipMasq": True})
        env0 = {"CNI_COMMAND": "ADD", "CNI_IFNAME": "eth0", "CNI_PATH": OURS}
        results = {}
        have = 0
        i = 0
        for target in [small, large]:
            while have < target:
                c = self.netns("%s-s-%d" % (self.tag, i))
                env = dict(env0, CNI_CONTAINERID="s%d" % i, CNI_NETNS="/run/netns/" + c)
                self.run(os.path.join(OURS, "bridge"), conf, env)
                have += 1
                i += 1
            time.sleep(5)
            t, fw = [], []
            for _ in range(samples):
                c = self.netns("%s-s-%d" % (self.tag, i))
                env = dict(env0, CNI_CONTAINERID="s%d" % i, CNI_NETNS="/run/netns/" + c)
                ph = {}
                t.append(self.run(os.path.join(OURS, "bridge"), conf, env, phases=ph))
                fw.append(ph.get("firewall", 0.0) * 1000)
                have += 1
                i += 1
                time.sleep(pause)
            results[target] = (t, fw)
        return results

    def portmap_scale(self, levels=(10, 100, 1000), samples=15):
        """portmap ADD of a container publishing 2 ports on a host where `level` containers
        already publish 2 each, ours and the reference alternating. Each side has its own host
        namespace with a bridge (the portmap plugin does not enter the container, so the
        containers are prevResults with distinct addresses on the bridge's subnet)."""
        hosts = {}
        for who in ["ours", "ref"]:
            h = self.netns("%s-pm%s" % (self.tag, who))
            sh("ip -n %s link set lo up" % h)
            sh("ip -n %s link add pmbr type bridge && ip -n %s addr add 10.80.0.1/16 dev pmbr && "
               "ip -n %s link set pmbr up" % (h, h, h))
            hosts[who] = h
        paths = {"ours": os.path.join(OURS, "portmap"), "ref": os.path.join(REF, "portmap")}

        def conf(i):
            prev = {"cniVersion": "1.0.0",
                    "interfaces": [{"name": "pmbr"}, {"name": "eth0", "sandbox": "/run/netns/pm%d" % i}],
                    "ips": [{"address": "10.80.%d.%d/16" % (1 + i // 250, 1 + i % 250), "gateway": "10.80.0.1",
                             "interface": 1}]}
            return json.dumps({"cniVersion": "1.0.0", "name": "pmbench", "type": "portmap",
                               "runtimeConfig": {"portMappings": [
                                   {"hostPort": 20000 + 2 * i, "containerPort": 80, "protocol": "tcp"},
                                   {"hostPort": 20001 + 2 * i, "containerPort": 443, "protocol": "tcp"}]},
                               "prevResult": prev})

        def add(who, i):
            env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pm%d" % i, "CNI_NETNS": "/run/netns/" + hosts[who],
                   "CNI_IFNAME": "eth0", "CNI_PATH": os.path.dirname(paths[who])}
            saved = self.host
            self.host = hosts[who]
            try:
                return self.run(paths[who], conf(i), env)
            finally:
                self.host = saved

        results = {}
        have = 0
        for level in levels:
            while have < level:
                for who in ["ours", "ref"]:
                    add(who, have)
                have += 1
            t = {"ours": [], "ref": []}
            for _ in range(samples):
                for who in ["ours", "ref"]:
                    t[who].append(add(who, have))
                have += 1
            results[level] = t
        return results

    def add_del(self, count, label, extra=None, n=0):
        """ADD then DEL of `count` containers on one network, ours and reference alternating."""
        confs = {"ours": self.bridge_conf("ours", n, extra), "ref": self.bridge_conf("ref", n + 1, extra)}
        paths = {"ours": OURS, "ref": REF}
        ctrs = [self.netns("%s-%s-%d" % (self.tag, label, i)) for i in range(count)]
        adds = {"ours": [], "ref": []}
        dels = {"ours": [], "ref": []}
        for phase, store in [("ADD", adds), ("DEL", dels)]:
            for i, c in enumerate(ctrs):
                for who in ["ours", "ref"]:
                    env = {"CNI_COMMAND": phase, "CNI_CONTAINERID": "%s-%d" % (who, i),
                           "CNI_NETNS": "/run/netns/" + c, "CNI_IFNAME": "eth0" if who == "ours" else "eth1",
                           "CNI_PATH": paths[who]}
                    store[who].append(self.run(os.path.join(paths[who], "bridge"), confs[who], env))
        return adds, dels


def ms(us):
    return "%.2f" % (us / 1000.0)


def table(rows):
    print("| measurement | swiftcni median (ms) | reference median (ms) | ratio | target | met |")
    print("|---|---:|---:|---:|---:|:---:|")
    for name, ours, ref, target in rows:
        mo, mr = statistics.median(ours), statistics.median(ref)
        ratio = mo / mr
        print("| %s | %s | %s | %.2f | ≤ %.2f× | %s |" % (name, ms(mo), ms(mr), ratio, target, "yes" if ratio <= target else "NO"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--containers", type=int, default=60)
    ap.add_argument("--version-runs", type=int, default=200)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--scale", type=int, default=500, help="attachments for the flatness measurement (0: skip)")
    ap.add_argument("--portmap", default="10,100,1000",
                    help="published containers already present for the portmap measurement ('': skip)")
    ap.add_argument("--only-portmap", action="store_true", help="run only the portmap measurement")
    args = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("bench.py: run as root (it creates network namespaces)")
    b = Bench(args)
    try:
        b.setup()
        rows, flat, pm = [], None, None
        if not args.only_portmap:
            rows = b.version(args.version_runs)
            adds, dels = b.add_del(args.containers, "plain")
            rows.append(("ADD bridge+host-local (%d containers)" % args.containers, adds["ours"], adds["ref"], 0.6))
            rows.append(("DEL bridge+host-local (%d containers)" % args.containers, dels["ours"], dels["ref"], 1.0))
            adds, dels = b.add_del(args.containers, "masq", {"ipMasq": True}, n=2)
            rows.append(("ADD bridge+host-local ipMasq (%d containers)" % args.containers, adds["ours"], adds["ref"], 0.3))
            rows.append(("DEL bridge+host-local ipMasq (%d containers)" % args.containers, dels["ours"], dels["ref"], 1.0))
            if args.scale:
                flat = b.scale(10, args.scale)
        levels = [int(x) for x in args.portmap.split(",") if x]
        if levels:
            pm = b.portmap_scale(levels)
        print()
        print("swiftcni vs Go reference plugins (%s), one run, medians; kernel %s" % (REF, os.uname().release))
        if rows:
            print()
            table(rows)
        if flat:
            s, l = sorted(flat)
            print()
            print("| swiftcni ADD (ipMasq) on a network already holding … | whole ADD median (ms) | firewall phase median (ms) |")
            print("|---|---:|---:|")
            for k in (s, l):
                print("| %d attachments | %s | %s |" % (k, ms(statistics.median(flat[k][0])), ms(statistics.median(flat[k][1]))))
            ra = statistics.median(flat[l][0]) / statistics.median(flat[s][0])
            rf = statistics.median(flat[l][1]) / statistics.median(flat[s][1])
            print("| ratio %d/%d (target ≤ 1.20) | %.2f %s | %.2f %s |" % (l, s, ra, "met" if ra <= 1.2 else "NOT met",
                                                                       rf, "met" if rf <= 1.2 else "NOT met"))
        if pm:
            lv = sorted(pm)
            print()
            print("| portmap ADD, 2 ports, with … containers already publishing 2 | swiftcni median (ms) | reference median (ms) | ratio |")
            print("|---|---:|---:|---:|")
            for k in lv:
                mo, mr = statistics.median(pm[k]["ours"]), statistics.median(pm[k]["ref"])
                print("| %d | %s | %s | %.2f |" % (k, ms(mo), ms(mr), mo / mr))
            flat_r = statistics.median(pm[lv[-1]]["ours"]) / statistics.median(pm[lv[0]]["ours"])
            big = statistics.median(pm[lv[-1]]["ours"]) / statistics.median(pm[lv[-1]]["ref"])
            print("| swiftcni %d vs %d (target ≤ 1.20) | %.2f %s | ours/ref at %d (target ≤ 0.25) | %.2f %s |" % (
                lv[-1], lv[0], flat_r, "met" if flat_r <= 1.2 else "NOT met", lv[-1], big, "met" if big <= 0.25 else "NOT met"))
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
