#!/usr/bin/env bash
# ctest-skipped.sh LOG: succeeds, naming them, if ctest's output LOG shows
# tests that skipped (exit 77: a missing prerequisite). A skipped test
# proves nothing, so scripts/test.sh and kvm-host.sh ctest fail on it.
set -euo pipefail
log=${1:?usage: ctest-skipped.sh CTEST-LOG}
grep -q '(Skipped)\|\*\*\*Skipped' "$log" || exit 1
echo "FAIL: tests skipped for a missing prerequisite:"
grep 'Skipped' "$log"
