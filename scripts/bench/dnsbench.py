#!/usr/bin/env python3
"""swiftcni-dns vs dnsmasq, side by side in one run, measured with dnsperf.

Run as root from the repository root:

    scripts/bench/dnsbench.py [--names 1000] [--seconds 10] [--rounds 3] [--no-build]

Everything happens in a throwaway "host" network namespace: a bridge network of our plugins
(bridge + host-local + dns-alias) with `--names` names registered through the dns-alias
plugin, a client container attached for real (our server answers attached containers only),
and dnsmasq serving the same names from a hosts file on the same gateway address (port
5353). dnsperf runs in the client container against each, rounds alternating. Then: the
resident memory of both with 10,000 records, and a steady dnsperf load while 200 containers
are added and removed through cnictl (queries lost must be 0). Everything is removed at the
end; no query leaves the namespaces (no upstream is configured, dnsmasq has --no-resolv).
"""
import glob
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build", "release")
SUBNET = "10.90.0.0/16"
GW = "10.90.0.1"


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True, **kw)


class DNSBench:
    def __init__(self, args):
        self.args = args
        self.tag = "scdns%d" % (os.getpid() % 100000)
        self.host = self.tag + "-host"
        self.tmp = tempfile.mkdtemp(prefix="swiftcni-dnsbench-")
        self.bin = os.path.join(self.tmp, "bin")
        self.run_dir = os.path.join(self.tmp, "run")
        self.conf_dir = os.path.join(self.tmp, "net.d")
        self.namespaces = []
        self.dnsmasq = None
        self.env = dict(os.environ, SWIFTCNI_RUN_DIR=self.run_dir, NETCONFPATH=self.conf_dir, CNI_PATH=self.bin,
                        CNI_CACHE_DIR=os.path.join(self.tmp, "cache"))

    # -- setup ------------------------------------------------------------------------------
    def setup(self):
        if not self.args.no_build:
            print("building release (--static-swift-stdlib)…", file=sys.stderr)
            subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib"], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
        os.makedirs(self.bin)
        for p in ["bridge", "host-local", "loopback", "dns-alias", "swiftcni-dns", "cnictl"]:
            strip = [] if self.args.unstripped else ["-s"]
            subprocess.run(["install"] + strip + ["-m", "0755", os.path.join(BUILD, p), os.path.join(self.bin, p)], check=True)
        os.makedirs(self.conf_dir)
        with open(os.path.join(self.conf_dir, "dnsbench.conflist"), "w") as f:
            json.dump({"cniVersion": "1.1.0", "name": "dnsbench", "plugins": [
                {"type": "bridge", "bridge": "dnsbench0", "isGateway": True,
                 "ipam": {"type": "host-local", "dataDir": os.path.join(self.tmp, "ipam"),
                          "ranges": [[{"subnet": SUBNET, "rangeStart": "10.90.200.1"}]]}},
                {"type": "dns-alias", "domainName": "bench.test", "upstream": [],
                 "capabilities": {"aliases": True}}]}, f)
        self.netns(self.host)
        sh("ip -n %s link set lo up" % self.host)
        self.client = self.netns(self.tag + "-client")
        self.cnictl("add", "dnsbench", self.client, "--args", "K8S_POD_NAME=client")

    def netns(self, name):
        sh("ip netns add " + name)
        self.namespaces.append(name)
        return name

    def in_host(self, argv, **kw):
        return subprocess.run(["nsenter", "--net=/run/netns/" + self.host] + argv, capture_output=True, text=True,
                              env=self.env, **kw)

    def cnictl(self, *args):
        r = self.in_host([os.path.join(self.bin, "cnictl")] + list(args))
        if r.returncode != 0:
            raise RuntimeError("cnictl %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def server_pid(self):
        with open(glob.glob(os.path.join(self.run_dir, "dns", "netns-*", "server.pid"))[0]) as f:
            return int(f.read().strip())

    def register(self, first, count):
        """Registers names host-<i> through the dns-alias plugin (ADD with a synthetic
        prevResult: the plugin needs no interface, only the addresses)."""
        plugin = os.path.join(self.bin, "dns-alias")
        for i in range(first, first + count):
            ip = self.address(i)
            conf = {"cniVersion": "1.1.0", "name": "dnsbench", "type": "dns-alias", "domainName": "bench.test",
                    "upstream": [],
                    "prevResult": {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}],
                                   "ips": [{"address": ip + "/16", "gateway": GW, "interface": 0}]}}
            env = dict(self.env, CNI_COMMAND="ADD", CNI_CONTAINERID="bench-%d" % i, CNI_NETNS="/run/netns/" + self.host,
                       CNI_IFNAME="eth0", CNI_ARGS="K8S_POD_NAME=host-%d" % i)
            r = subprocess.run(["nsenter", "--net=/run/netns/" + self.host, plugin], input=json.dumps(conf),
                               capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise RuntimeError("dns-alias ADD host-%d: %s" % (i, r.stdout))

    @staticmethod
    def address(i):
        return "10.90.%d.%d" % (1 + i // 250, 1 + i % 250)

    def start_dnsmasq(self, count):
        hosts = os.path.join(self.tmp, "hosts")
        with open(hosts, "w") as f:
            for i in range(count):
                f.write("%s host-%d host-%d.bench.test\n" % (self.address(i), i, i))
        if self.dnsmasq:
            self.dnsmasq.kill()
            self.dnsmasq.wait()
        self.dnsmasq = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + self.host, "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv",
             "--no-hosts", "--addn-hosts=" + hosts, "--listen-address=" + GW, "--bind-interfaces", "--port=5353",
             "--user=root", "--cache-size=10000", "--pid-file=" + os.path.join(self.tmp, "dnsmasq.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def dnsmasq_pid(self):
        with open(os.path.join(self.tmp, "dnsmasq.pid")) as f:
            return int(f.read().strip())

    def cleanup(self):
        if self.dnsmasq:
            self.dnsmasq.kill()
            self.dnsmasq.wait()
        try:
            os.kill(self.server_pid(), 9)
        except Exception:
            pass
        for ns in reversed(self.namespaces):
            sh("ip netns del " + ns, check=False)
            shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- measurements ---------------------------------------------------------------------------
    def queryfile(self, count):
        path = os.path.join(self.tmp, "queries-%d.txt" % count)
        names = ["host-%d A" % i for i in range(count)]
        random.Random(1).shuffle(names)
        with open(path, "w") as f:
            f.write("\n".join(names) + "\n")
        return path

    def dnsperf(self, port, qfile, seconds, extra=()):
        argv = ["ip", "netns", "exec", self.client, "dnsperf", "-s", GW, "-p", str(port), "-d", qfile,
                "-l", str(seconds)] + list(extra)
        r = subprocess.run(argv, capture_output=True, text=True)
        out = r.stdout
        m = lambda pat: re.search(pat, out)
        return {
            "qps": float(m(r"Queries per second:\s+([\d.]+)").group(1)),
            "sent": int(m(r"Queries sent:\s+(\d+)").group(1)),
            "lost": int(m(r"Queries lost:\s+(\d+)").group(1)),
            "noerror": int(m(r"NOERROR (\d+)").group(1)) if m(r"NOERROR (\d+)") else 0,
            "lat": [float(x) for x in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M)],
        }

    @staticmethod
    def cpu_seconds(pid):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def rss_kb(pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def churn(self, containers, seconds):
        """A steady dnsperf load (fixed rate) while `containers` containers are added and
        removed through cnictl; returns the dnsperf summary and how long the churn took."""
        qfile = self.queryfile(self.args.names)
        result = {}

        def load():
            result.update(self.dnsperf(53, qfile, seconds, ["-Q", str(self.args.churn_qps), "-t", "2"]))
        t = threading.Thread(target=load)
        t.start()
        time.sleep(1)
        start = time.time()
        ns = []
        for i in range(containers):
            c = self.netns("%s-ch%d" % (self.tag, i))
            self.cnictl("add", "dnsbench", c, "--args", "K8S_POD_NAME=churn-%d" % i)
            ns.append(c)
        for c in ns:
            self.cnictl("del", "dnsbench", c)
            sh("ip netns del " + c)
            self.namespaces.remove(c)
        took = time.time() - start
        t.join()
        return result, took


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10, help="each throughput run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4, help="dnsperf -c")
    ap.add_argument("--outstanding", type=int, default=200, help="dnsperf -q")
    ap.add_argument("--latency-qps", type=int, default=10000, help="fixed rate of the latency runs")
    ap.add_argument("--churn", type=int, default=200, help="containers added and removed under load (0: skip)")
    ap.add_argument("--churn-qps", type=int, default=5000)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--unstripped", action="store_true", help="install with symbols (for perf)")
    args = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("dnsbench.py: run as root (it creates network namespaces)")
    for tool in ["dnsperf", "dnsmasq"]:
        if not shutil.which(tool):
            sys.exit("dnsbench.py: %s is missing (scripts/deps.sh bench installs it)" % tool)
    b = DNSBench(args)
    try:
        b.setup()
        print("registering %d names through dns-alias…" % args.names, file=sys.stderr)
        b.register(0, args.names)
        b.start_dnsmasq(args.names)
        qfile = b.queryfile(args.names)
        load = ["-c", str(args.clients), "-q", str(args.outstanding)]
        # Sanity: both answer every query.
        for port in (53, 5353):
            s = b.dnsperf(port, qfile, 1, ["-n", "1"])
            if s["noerror"] != args.names:
                raise RuntimeError("port %d answered %d of %d names" % (port, s["noerror"], args.names))
        qps = {"ours": [], "dnsmasq": []}
        cpu = {"ours": 0.0, "dnsmasq": 0.0}
        answered = {"ours": 0, "dnsmasq": 0}
        for r in range(args.rounds):
            for who, port in (("ours", 53), ("dnsmasq", 5353)):
                pid = b.server_pid() if who == "ours" else b.dnsmasq_pid()
                c0 = b.cpu_seconds(pid)
                s = b.dnsperf(port, qfile, args.seconds, load)
                cpu[who] += b.cpu_seconds(pid) - c0
                answered[who] += s["sent"] - s["lost"]
                if s["lost"]:
                    print("  %s lost %d of %d queries" % (who, s["lost"], s["sent"]), file=sys.stderr)
                qps[who].append(s["qps"])
                print("  round %d %s: %.0f q/s" % (r + 1, who, s["qps"]), file=sys.stderr)
        lat = {}
        for who, port in (("ours", 53), ("dnsmasq", 5353)):
            s = b.dnsperf(port, qfile, 5, ["-Q", str(args.latency_qps), "-v"])
            lat[who] = s["lat"]
        # Memory with 10,000 records.
        print("registering up to 10,000 names…", file=sys.stderr)
        b.register(args.names, 10000 - args.names)
        b.start_dnsmasq(10000)
        status = b.in_host([sys.executable, "-c", "import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
                            "s.sendall(b'status\\n');print(s.recv(4096).decode())", glob.glob(os.path.join(b.run_dir, "dns", "netns-*", "control.sock"))[0]])
        rss = {"ours": b.rss_kb(b.server_pid()), "dnsmasq": b.rss_kb(b.dnsmasq_pid())}
        churn = None
        if args.churn:
            print("adding and removing %d containers under a steady load…" % args.churn, file=sys.stderr)
            churn = b.churn(args.churn, max(20, args.churn // 10 + 15))

        mo, md = statistics.median(qps["ours"]), statistics.median(qps["dnsmasq"])
        print()
        print("swiftcni-dns vs dnsmasq %s, dnsperf from a container over its veth, %d names, kernel %s" % (
            sh("dnsmasq --version").stdout.split()[2], args.names, os.uname().release))
        print()
        print("| measurement | swiftcni-dns | dnsmasq | ratio | target |")
        print("|---|---:|---:|---:|---|")
        print("| queries/s, median of %d × %d s (dnsperf -c %d -q %d) | %.0f | %.0f | %.2f | ≥ 1.00× dnsmasq: %s |" % (
            args.rounds, args.seconds, args.clients, args.outstanding, mo, md, mo / md, "met" if mo >= md else "NOT met"))
        eo, ed = answered["ours"] / max(cpu["ours"], 0.01), answered["dnsmasq"] / max(cpu["dnsmasq"], 0.01)
        print("| answers per CPU-second of the server | %.0f | %.0f | %.2f | |" % (eo, ed, eo / ed))
        for p, name in ((0.5, "p50"), (0.99, "p99")):
            o, d = pct(lat["ours"], p) * 1000, pct(lat["dnsmasq"], p) * 1000
            print("| latency %s at %d q/s (ms) | %.3f | %.3f | %.2f | |" % (name, args.latency_qps, o, d, o / d))
        print("| resident memory with 10,000 records (MB) | %.1f | %.1f | %.2f | ≤ 30 MB: %s |" % (
            rss["ours"] / 1024, rss["dnsmasq"] / 1024, rss["ours"] / rss["dnsmasq"], "met" if rss["ours"] <= 30 * 1024 else "NOT met"))
        if churn:
            s, took = churn
            print("| queries lost while %d containers were added and removed (%.0f s, %d q/s steady) | %d of %d | | | 0: %s |" % (
                args.churn, took, args.churn_qps, s["lost"], s["sent"], "met" if s["lost"] == 0 else "NOT met"))
        print()
        print("server status: " + status.stdout.strip())
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
