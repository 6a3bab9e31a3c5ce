#!/usr/bin/env bash
# labels: integration loader network
# Parses and loads a real Debian bzImage with the bzImage loader (unit test
# "real bzImage from XOVER_TEST_VMLINUZ" over fake guest memory; no KVM).
# Skips (77) when the kernel package cannot be downloaded.
set -euo pipefail

: "${XOVER_BUILD:?}" "${XOVER_SOURCE:?}"
cache=${XOVER_CACHE:-$HOME/.cache/xover}/kernel

if ! kernel=$("$XOVER_SOURCE/scripts/fetch-test-kernel.sh" "$cache"); then
    echo "SKIP: could not fetch a Debian kernel into $cache"
    exit 77
fi
echo "kernel: $kernel"
XOVER_TEST_VMLINUZ=$kernel "$XOVER_BUILD/xover_unit_tests" "real bzImage from XOVER_TEST_VMLINUZ" --success | tail -n 5
