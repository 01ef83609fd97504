#!/usr/bin/env python3
"""An HTTP/1.1 proxy in front of one etcd member that loses answers: the request is passed on
(the member commits it), but for the first N requests to PATH (whose body contains MATCH,
if given) the connection is closed instead of answering — a member that dies between
committing and replying. A connection whose first request is outside /v3/kv/ (a watch, a
lease) is passed through as it is, streaming.

    lossy-proxy.py LISTEN_PORT UPSTREAM_PORT PATH N [MATCH]

Both on 127.0.0.1. Prints "ready" once listening; stops with its parent's kill.
"""
import http.client
import socket
import sys
import threading

listen_port, upstream_port, lossy_path, losses = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
match = sys.argv[5].encode() if len(sys.argv) > 5 else b""
lock = threading.Lock()


def read_request(f):
    line = f.readline()
    if not line:
        return None
    method, path, _ = line.decode().split(" ", 2)
    headers = {}
    while True:
        h = f.readline().decode()
        if h in ("\r\n", "\n", ""):
            break
        k, v = h.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return method, path, headers, body


def pump(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    finally:
        for c in (src, dst):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def tunnel(conn, f, method, path, headers, body):
    """Passes this request, and everything after it on the connection, through unchanged."""
    up = socket.create_connection(("127.0.0.1", upstream_port))
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    up.sendall(head.encode() + body)
    t = threading.Thread(target=pump, args=(up, conn), daemon=True)
    t.start()
    pump(conn, up)
    t.join()
    up.close()


def serve(conn):
    global losses
    f = conn.makefile("rb")
    try:
        while True:
            req = read_request(f)
            if req is None:
                return
            method, path, headers, body = req
            if not path.startswith("/v3/kv/"):
                return tunnel(conn, f, method, path, headers, body)
            up = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
            up.request(method, path, body=body, headers={"Content-Type": headers.get("content-type", "application/json")})
            resp = up.getresponse()
            data = resp.read()
            up.close()
            with lock:
                lose = path == lossy_path and losses > 0 and match in body
                if lose:
                    losses -= 1
            if lose:
                return  # committed upstream; the answer never comes
            head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                resp.status, resp.reason, len(data))
            conn.sendall(head.encode() + data)
    except OSError:
        pass
    finally:
        conn.close()


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", listen_port))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
