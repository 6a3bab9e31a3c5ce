#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds xover and its tiny
# guest kernels, and boots a crossover pair, printing what crossed. On a
# machine without /dev/kvm the pair runs in the emulated KVM host
# (scripts/kvm-host.sh): the same result, its rates those of emulation.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=build scripts/build.sh
demo=(build/xover up configs/crossover-pair.toml)
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  exec "${demo[@]}"
fi
echo "demo: no /dev/kvm here; running it in an emulated KVM host (scripts/kvm-host.sh): rates are emulation's, not xover's"
exec scripts/kvm-host.sh run "${demo[@]}"
