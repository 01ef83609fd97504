#!/usr/bin/env python3
"""Run inside a container's network namespace: pings every target and asks the container's
DNS server for every target's name, again and again, until each target answered an echo
request and its name resolved to exactly its address (or the timeout passes). Prints one
JSON line: {"done": <CLOCK_MONOTONIC seconds when the last target was satisfied, or null>,
"missing_ping": [...], "missing_dns": [...], "last": [<"ping"|"dns">, <target>]} (the answer that
came last, for a slow round's report).

    probe.py NAMESERVER TIMEOUT_S NAME=IP [NAME=IP ...]
    probe.py -        (the same, as one JSON line on stdin: {"server", "timeout", "targets": {name: ip}};
                       started early, it waits for that line, so its own start-up is not timed)

Raw ICMP and hand-built DNS queries (no resolver library, no name service switch), so the
answer comes from the server under test only. IPv4.
"""
import json
import os
import select
import socket
import struct
import sys
import time

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.setblocking(False)
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp.setblocking(False)
if sys.argv[1] == "-":
    spec = json.loads(sys.stdin.readline())
    server, timeout, targets = spec["server"], float(spec["timeout"]), dict(spec["targets"])
else:
    server, timeout = sys.argv[1], float(sys.argv[2])
    targets = dict(t.split("=", 1) for t in sys.argv[3:])
want_dns = dict(targets)
want_ping = set(targets.values())
ident = os.getpid() & 0xFFFF
start = time.monotonic()
done = start if not targets else None
last = None


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def skip_name(m, i):
    while True:
        n = m[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def answers(m):
    an = struct.unpack(">H", m[6:8])[0]
    i = skip_name(m, 12) + 4
    out = []
    for _ in range(an):
        i = skip_name(m, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", m[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(m[i:i + 4]))
        i += rdlen
    return out


names = {}
seq = 0
while (want_dns or want_ping) and time.monotonic() - start < timeout:
    for k, name in enumerate(sorted(want_dns)):
        qid = (seq * 97 + k) & 0xFFFF
        names[qid] = name
        try:
            udp.sendto(query(qid, name), (server, 53))
        except OSError:
            pass
    for ip in want_ping:
        seq = (seq + 1) & 0xFFFF
        hdr = struct.pack(">BBHHH", 8, 0, 0, ident, seq)
        pkt = struct.pack(">BBHHH", 8, 0, checksum(hdr), ident, seq)
        try:
            icmp.sendto(pkt, (ip, 0))
        except OSError:
            pass
    seq = (seq + 1) & 0xFFFF
    until = time.monotonic() + 0.05
    while time.monotonic() < until and (want_dns or want_ping):
        r, _, _ = select.select([udp, icmp], [], [], max(0, until - time.monotonic()))
        for s in r:
            try:
                data, addr = s.recvfrom(4096)
            except OSError:
                continue
            if s is udp and len(data) >= 12:
                name = names.get(struct.unpack(">H", data[:2])[0])
                if name in want_dns and data[3] & 0x0F == 0 and answers(data) == [want_dns[name]]:
                    del want_dns[name]
                    last = ["dns", name]
            elif s is icmp:
                ihl = (data[0] & 0x0F) * 4
                t, _, _, rid, _ = struct.unpack(">BBHHH", data[ihl:ihl + 8])
                if t == 0 and rid == ident and addr[0] in want_ping:
                    want_ping.discard(addr[0])
                    last = ["ping", addr[0]]
        if not want_dns and not want_ping and done is None:
            done = time.monotonic()

print(json.dumps({"done": done, "missing_ping": sorted(want_ping), "missing_dns": sorted(want_dns), "last": last}))
