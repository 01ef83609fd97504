#!/usr/bin/env python3
"""Sends a corpus of malformed DNS messages (fixed, and 300 seeded random ones) to
SERVER:53 over UDP, and the first 20 over TCP; prints "sent N".   dns-corpus.py SERVER"""
import random
import socket
import struct
import sys

server = sys.argv[1]
pk = [b"", b"\x12", b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6,
      b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
      b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01",
      b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x0aab", b"\xff" * 600,
      b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"]
r = random.Random(7)
pk += [bytes(r.getrandbits(8) for _ in range(r.randrange(1, 80))) for _ in range(300)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in pk:
    s.sendto(p, (server, 53))
for p in pk[:20]:
    t = socket.create_connection((server, 53), timeout=2)
    t.sendall(struct.pack(">H", len(p)) + p if len(p) % 2 else p)
    t.close()
print("sent", len(pk))
