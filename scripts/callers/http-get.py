#!/usr/bin/env python3
"""HTTP GET /index.html by address (no name lookup); prints the body.   http-get.py ADDR PORT [TIMEOUT]"""
import socket, sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]) if len(sys.argv) > 3 else 2)
s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
print(data.decode().split("\r\n\r\n", 1)[1], end="")
