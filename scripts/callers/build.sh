#!/usr/bin/env bash
# Builds the real-caller drivers from Debian's Go source packages, offline (no module
# downloads): golang-github-appc-cni-dev (libcni 1.1.2), golang-github-containerd-go-cni-dev
# (go-cni 1.1.7). Usage: scripts/callers/build.sh OUTDIR
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off
export GOCACHE=${GOCACHE:-$out/.gocache}
for d in libcni gocni; do
  (cd "$here/$d" && go build -o "$out/$d-driver" .)
done
echo "built: $out/libcni-driver $out/gocni-driver"
