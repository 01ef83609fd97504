#!/bin/sh
# Runs a command in a mount namespace of its own where /var/lib is a fresh tmpfs and
# /var/lib/cni is CACHE_DIR: go-cni (libcni underneath) keeps its result cache in the fixed
# /var/lib/cni, and a test must not write the machine's.   in-private-varlib.sh CACHE_DIR COMMAND…
set -e
cache=$1
shift
exec unshare -m --propagation private /bin/sh -c 'mount -t tmpfs swiftcni-varlib /var/lib && mkdir /var/lib/cni && mount --bind "$1" /var/lib/cni && shift && exec "$@"' sh "$cache" "$@"
