#!/usr/bin/env python3
"""Two builds of swiftcni's bridge ADD head to head, in one run: this checkout's release build
and another one (an older commit built in a worktree, say).

Run as root from the repository root:

    git worktree add /tmp/old <rev> && (cd /tmp/old && swift build -c release --static-swift-stdlib)
    scripts/bench/abbench.py --old /tmp/old/.build/release [--samples 50] [--config '{"ipMasq": true}']

ADDs of the two alternate (the order flips every container), each into its own network, with
SWIFTCNI_TRACE=1, inside bench.py's throwaway host namespace. Prints both medians, their ratio
and every phase's median. Separate bench.py runs compare each build with the Go reference
only; this compares the builds with each other.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="the other build's directory (…/.build/release)")
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--config", default="{}", help="extra bridge keys, as JSON")
    args = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("abbench.py: run as root (it creates network namespaces)")

    class Options:
        no_build = True

    b = bench.Bench(Options())
    try:
        b.setup()
        old = os.path.join(b.tmp, "old")
        os.makedirs(old)
        for p in ["bridge", "host-local", "loopback", "portmap"]:
            subprocess.run(["install", "-s", "-m", "0755", os.path.join(args.old, p), os.path.join(old, p)], check=True)
        paths = {"new": bench.OURS, "old": old}
        extra = json.loads(args.config)
        confs = {"new": b.bridge_conf("new", 0, extra), "old": b.bridge_conf("old", 1, extra)}
        total = {"new": [], "old": []}
        phases = {"new": {}, "old": {}}
        for i in range(args.samples):
            c = b.netns("%s-ab-%d" % (b.tag, i))
            for who in (["new", "old"] if i % 2 == 0 else ["old", "new"]):
                env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "%s-%d" % (who, i), "CNI_NETNS": "/run/netns/" + c,
                       "CNI_IFNAME": "eth0" if who == "new" else "eth1", "CNI_PATH": paths[who]}
                ph = {}
                total[who].append(b.run(os.path.join(paths[who], "bridge"), confs[who], env, phases=ph))
                for k, v in ph.items():
                    phases[who].setdefault(k, []).append(v)
        mn, mo = statistics.median(total["new"]), statistics.median(total["old"])
        print("bridge ADD, %d each, alternating: this build %.2f ms, the other %.2f ms, ratio %.3f" % (
            args.samples, mn / 1000, mo / 1000, mn / mo))
        print("| phase | this build (ms) | the other (ms) |")
        print("|---|---:|---:|")
        for k in sorted(set(phases["new"]) | set(phases["old"])):
            def med(w):
                return "%.3f" % statistics.median(phases[w][k]) if k in phases[w] else "-"
            print("| %s | %s | %s |" % (k, med("new"), med("old")))
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
