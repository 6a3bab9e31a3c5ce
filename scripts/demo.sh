#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds xover and its tiny
# guest kernels, and boots a crossover pair, printing what crossed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=build scripts/build.sh
if [ -f configs/crossover-pair.toml ] && build/xover up --help >/dev/null 2>&1; then
  exec build/xover up configs/crossover-pair.toml
fi
exec build/xover run --kernel build/guests/hello.elf --cmdline "greeting=hello-from-the-demo" --stats
