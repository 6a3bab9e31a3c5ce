#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, and runs every
# test (unit + integration) in a normal build and in an ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

echo "== include rules between the layers"
scripts/check-layers.sh
echo "== build (Release)"
BUILD_DIR=build scripts/build.sh
echo "== Linux test guest (cached; built once, ~5-10 min cold)"
# Tests labelled `linux` boot it; without it they skip.
scripts/linux-guest.sh >/dev/null || echo "Linux test guest unavailable: linux tests will skip"

echo "== tests (Release)"
ctest --test-dir build --output-on-failure -j2 ${CTEST_ARGS:-}

echo "== build (ASan+UBSan)"
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DXOVER_SANITIZE=ON
echo "== tests (ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 -LE 'slow|qemu|linux' ${CTEST_ARGS:-}
echo "== ThreadSanitizer: the cross-process shared NIC state and the crossover data path"
BUILD_DIR=build-tsan BUILD_TYPE=Debug XOVER_TARGET=xover_unit_tests scripts/build.sh -DXOVER_TSAN=ON
TSAN_OPTIONS=halt_on_error=1 build-tsan/xover_unit_tests "[shared-state],crossover:*"
echo "== all tests passed"
