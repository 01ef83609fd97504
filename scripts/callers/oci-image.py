#!/usr/bin/env python3
"""Writes an OCI image archive (for `ctr images import`) of a busybox-static root file system,
without a registry: /bin/busybox with its applet links, /etc/passwd, and /www/index.html.

    oci-image.py OUT.tar NAME:TAG "index.html text"
"""
import hashlib, io, json, shutil, sys, tarfile

out, ref, page = sys.argv[1], sys.argv[2], sys.argv[3]
busybox = shutil.which("busybox") or "/bin/busybox"
applets = ["sh", "ping", "ip", "cat", "sleep", "true", "httpd", "nc", "hostname", "ifconfig"]


def add_file(t, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    t.addfile(info, io.BytesIO(data))


def add_dir(t, name):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    t.addfile(info)


layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
    for d in ["bin", "etc", "www", "tmp", "proc", "sys", "dev"]:
        add_dir(t, d)
    with open(busybox, "rb") as f:
        add_file(t, "bin/busybox", f.read(), 0o755)
    for a in applets:
        info = tarfile.TarInfo("bin/" + a)
        info.type, info.linkname = tarfile.SYMTYPE, "busybox"
        t.addfile(info)
    add_file(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    add_file(t, "www/index.html", page.encode() + b"\n")
layer = layer.getvalue()


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
    "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
}).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}],
}).encode()
index = json.dumps({
    "schemaVersion": 2,
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest),
                   "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
                   "annotations": {"io.containerd.image.name": ref,
                                   "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}}],
}).encode()

with tarfile.open(out, "w") as t:
    add_file(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add_file(t, "index.json", index)
    for blob in (layer, config, manifest):
        add_file(t, "blobs/sha256/" + digest(blob)[7:], blob)
