#!/usr/bin/env python3
"""One-shot TCP/UDP peer for the connectivity tests; addresses only, never a name lookup.

    peer.py server ADDRESS PORT READY_FILE 4|6 tcp|udp   prints the client address it saw, or "none"
    peer.py client ADDRESS PORT tcp|udp SOURCE_PORT      connects (TCP) or sends a datagram (UDP)
"""
import socket
import sys

if sys.argv[1] == "server":
    addr, port, ready, fam, proto = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
    udp = proto == "udp"
    s = socket.socket(socket.AF_INET6 if fam == "6" else socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    if not udp:
        s.listen(1)
    s.settimeout(4)
    open(ready, "w").close()
    try:
        if udp:
            d, a = s.recvfrom(100)
            s.sendto(b"ok", a)
        else:
            c, a = s.accept()
            c.close()
        print(a[0], flush=True)
    except socket.timeout:
        print("none", flush=True)
else:
    addr, port, proto, source = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        if proto == "udp":
            s = socket.socket(fam, socket.SOCK_DGRAM)
            if source:
                s.bind(("", source))
            s.settimeout(2)
            s.sendto(b"x", (addr, port))
            s.recv(10)
        else:
            socket.create_connection((addr, port), timeout=2).close()
    except OSError:
        pass
