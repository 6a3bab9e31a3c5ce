#!/usr/bin/env bash
# Configures and builds xover into BUILD_DIR (default: build) with the given
# CMake build type (default: Release). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-Release}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)" ${XOVER_TARGET:+--target "$XOVER_TARGET"}
