#!/bin/bash
# labels: integration crossover chaos kvm
# A short chaos soak (scripts/chaos.sh): senders SIGKILLed and restarted,
# VMs and the broker SIGSTOPped and continued, the broker SIGKILLed and
# started again, for CHAOS_MINUTES (default 1). Every receiver must end by
# itself with every frame intact and none lost but a killed sender's in
# flight, and every restarted sender must be linked again. A fixed seed
# per run of CI would test one schedule; the seed is printed, and
# CHAOS_SEED=N repeats a failing one.
set -u
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
XOVER_BUILD=${XOVER_BUILD:?} exec bash "${XOVER_SOURCE:-$(dirname "$0")/../..}/scripts/chaos.sh" "${CHAOS_MINUTES:-1}"
