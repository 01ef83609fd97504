#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test. As root, the integration tests
# run too: each creates its own network namespaces (never touching this machine's own) and
# removes them, also when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/deps.sh test
# Leftovers of an earlier, killed run (test namespaces are named sct<pid>x<n>-…).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sct[0-9]+x[0-9]+-' || true); do
  ip netns del "$ns" 2>/dev/null || true
done
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(mh|pt)[0-9]+-' || true); do
  ip netns del "$ns" 2>/dev/null || true
done
rm -rf /etc/netns/sct[0-9]*x[0-9]*-* /etc/netns/mh[0-9]*-* 2>/dev/null || true
pkill -KILL -f 'initial-cluster-token mh[0-9]' 2>/dev/null || true
pkill -KILL -f '/tmp/swiftcni-multihost-' 2>/dev/null || true
pkill -KILL -f 'swiftcni-dns --run-dir /tmp/swiftcni-sct' 2>/dev/null || true
# The helper and test programs in Python: a static check (unused names, undefined names).
git ls-files -z '*.py' | xargs -0 pyflakes3
swift build
swift test "$@"
