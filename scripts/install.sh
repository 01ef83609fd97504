#!/usr/bin/env bash
# Builds swiftcni (release, --static-swift-stdlib: a host needs no Swift runtime) and
# installs every executable into $CNI_BIN_DIR (default /opt/cni/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/deps.sh build
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
swift build -c release --static-swift-stdlib
mkdir -p "$CNI_BIN_DIR"
for exe in bridge host-local loopback portmap dns-alias overlay swiftcni-dns swiftcni-overlay-agent cnictl; do
  install -s -m 0755 ".build/release/$exe" "$CNI_BIN_DIR/$exe"   # stripped, as distributions ship
done
echo "install.sh: installed bridge host-local loopback portmap dns-alias overlay swiftcni-dns swiftcni-overlay-agent cnictl into $CNI_BIN_DIR"
