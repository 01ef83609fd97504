#!/usr/bin/env python3
"""A recording CNI plugin for the runtime tests: saves what it was given (the CNI_*
environment and stdin) as RECORD_DIR/NNN-COMMAND, and for ADD passes the previous result
through (or answers an empty result)."""
import json
import os
import sys

data = sys.stdin.read()
records = os.environ["RECORD_DIR"]
n = len(os.listdir(records))
cmd = os.environ.get("CNI_COMMAND", "")
if cmd == "VERSION":
    print(json.dumps({"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}))
    sys.exit(0)
with open(os.path.join(records, "%03d-%s" % (n, cmd)), "w") as f:
    json.dump({"env": {k: v for k, v in os.environ.items() if k.startswith("CNI_")}, "stdin": json.loads(data), "raw": data}, f)
if cmd == "ADD":
    conf = json.loads(data)
    print(json.dumps(conf.get("prevResult") or {"cniVersion": conf["cniVersion"]}))
