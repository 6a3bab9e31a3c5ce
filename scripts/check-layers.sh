#!/usr/bin/env bash
# The include rules between the layers (issue 10; README, Layout):
#   - the crossover engine includes no device model header;
#   - the device models include no crossover header;
#   - the nic layer between them (shared state page, port, queue views)
#     includes neither;
#   - the engine reads no model's part of a shared page (`.e1000.`,
#     `.virtio_net.`): routes, loans and ledgers are its views' business.
# They meet only in include/xover/nic. Prints each include that crosses and
# exits 1 if there is one. Run by scripts/test.sh (CI) and by ctest
# (label `layers`).
set -euo pipefail
cd "$(dirname "$0")/.."

models='xover/(e1000|virtio_net|virtio_snd)/|\.\./(e1000|virtio_net|virtio_snd)/'
engine='xover/crossover/|\.\./crossover/'
status=0

# check RULE PATTERN DIR...: #include lines under DIR... that match PATTERN.
check() {
    local rule=$1 pattern=$2 dir hits
    shift 2
    for dir in "$@"; do  # a moved folder must not pass unchecked
        [[ -d $dir ]] || { echo "check-layers: no folder $dir (update this script)"; status=1; }
    done
    hits=$(grep -rEn --include='*.hpp' --include='*.cpp' --include='*.h' \
        "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]($pattern)" "$@" || true)
    if [[ -n $hits ]]; then
        echo "check-layers: $rule:"
        sed 's/^/  /' <<<"$hits"
        status=1
    fi
}

check "the crossover engine includes a device model header" "$models" \
    src/crossover include/xover/crossover
check "a device model includes a crossover header" "$engine" \
    src/e1000 src/virtio_net src/virtio_snd include/xover/e1000 include/xover/virtio_net include/xover/virtio_snd
# The sound layer (formats, backends, the cable ABI) sits below both, as
# net does: a sound card reaches a peer only through a sound::Backend.
check "the sound layer includes a model or crossover header" "$models|$engine" \
    src/sound include/xover/sound
check "the nic layer includes a model or crossover header" "$models|$engine" \
    src/nic include/xover/nic

model_parts=$(grep -rEn --include='*.hpp' --include='*.cpp' '\.(e1000|virtio_net)\.[a-z_]' \
    src/crossover include/xover/crossover || true)
if [[ -n $model_parts ]]; then
    echo "check-layers: the crossover engine reads a model's part of a shared page:"
    sed 's/^/  /' <<<"$model_parts"
    status=1
fi

if [[ $status -eq 0 ]]; then echo "check-layers: ok"; fi
exit $status
