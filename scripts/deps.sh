#!/usr/bin/env bash
# Installs the Debian packages swiftcni needs, only those missing (apt-get update first).
#
#   scripts/deps.sh build     libraries to build against
#   scripts/deps.sh test      + what the tests drive: iproute2, ping, the Go reference
#                               plugins, Podman with its CNI backend, python3 (pyflakes3 checks our Python), dig, etcd,
#                               containerd, and Go with the libcni and go-cni sources (the
#                               real-caller drivers are built from them, offline)
#   scripts/deps.sh bench     + hyperfine-free timing helpers (gcc)
set -euo pipefail
what=${1:-test}

pkgs=(libmnl-dev libnftnl-dev pkg-config iproute2 util-linux)
case $what in
  build) ;;
  test|demo) pkgs+=(iputils-ping python3 containernetworking-plugins podman runc conmon busybox-static netcat-openbsd nftables iptables bind9-dnsutils etcd-server etcd-client pyflakes3 openssl)
             if [[ $what == test ]]; then pkgs+=(containerd golang-go golang-github-appc-cni-dev golang-github-containerd-go-cni-dev); fi ;;
  bench) pkgs+=(iputils-ping python3 containernetworking-plugins gcc nftables iptables bind9-dnsutils dnsperf dnsmasq-base etcd-server etcd-client) ;;
  *) echo "deps.sh: unknown set '$what'" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps netavark/aardvark out: Podman must use its CNI backend.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Swift toolchain.
if ! command -v swift >/dev/null; then
  if [[ -x /opt/swift/usr/bin/swift ]]; then
    echo "deps.sh: swift is at /opt/swift/usr/bin (add it to PATH)"
  else
    echo "deps.sh: Swift 6.x is required (https://www.swift.org/install/linux/)" >&2
    exit 1
  fi
fi
