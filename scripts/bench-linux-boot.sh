#!/usr/bin/env bash
# Boot time of the Linux test guest (scripts/linux-guest.sh) under xover
# and under QEMU, same kernel, initramfs, command line and NIC model,
# measured back-to-back (this machine's load varies 2x, so only numbers of
# one run compare). For each boot kind (PVH vmlinux, bzImage) and VMM:
# wall seconds from starting the VMM to the guest's XOVER-USERSPACE-UP
# marker, and to XOVER-DONE (init has configured its NIC and finished).
#
#   scripts/bench-linux-boot.sh [BUILD_DIR]        (default: build)
#
# Environment: ROUNDS (1; xover and QEMU alternate within a round), KINDS
# ("pvh bzimage"), XOVER_LINUX_GUEST (guest dir), TIMEOUT (300 s per boot),
# LOG_DIR (kept logs; default a temporary dir).
# Output: one line per boot
#   linux-boot kind=pvh vmm=xover round=1 userspace_s=9.8 done_s=12.1
# then per kind the medians and the ratio xover/QEMU
#   linux-boot-summary kind=pvh xover_userspace_s=.. qemu_userspace_s=.. ratio=..
# Exit status 2 when the guest, xover or QEMU is missing (nothing measured).
# QEMU's time includes its firmware (SeaBIOS option ROMs are off), which
# xover does not have: that is part of what is being compared.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
xover=$build/xover
guest=${XOVER_LINUX_GUEST:-${XOVER_CACHE:-$HOME/.cache/xover}/linux-guest}
rounds=${ROUNDS:-1}
kinds=${KINDS:-pvh bzimage}
timeout_s=${TIMEOUT:-300}
logs=${LOG_DIR:-$(mktemp -d /tmp/xover-bench-linux.XXXXXX)}
mkdir -p "$logs"

for f in vmlinux bzImage initramfs.cpio; do
    [[ -s $guest/$f ]] || { echo "bench-linux-boot: no $guest/$f (run scripts/linux-guest.sh)" >&2; exit 2; }
done
[[ -x $xover ]] || { echo "bench-linux-boot: no $xover (build first)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench-linux-boot: no qemu-system-x86_64" >&2; exit 2; }

# The same command line for both. clearcpuid: see tests/integration/linux_common.inc;
# quiet: the console is a large part of the boot otherwise (both VMMs
# emulate the same 16550, but that measures the UART, not the boot).
cmdline="console=ttyS0 clearcpuid=smap,smep,popcnt,xsave nofsgsbase mitigations=off tsc=reliable panic=-1 quiet xover.ip=10.0.2.15/24"

pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
now() { date +%s.%N; }
# wait_for LOG PATTERN PID T0: seconds from T0 until PATTERN is in LOG,
# "none" if the process ended without it.
wait_for() {
    while ! grep -aq "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || { grep -aq "$2" "$1" 2>/dev/null && break; echo none; return; }
        sleep 0.1
    done
    awk -v a="$4" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# boot VMM KIND ROUND: prints the result line and appends "KIND VMM USERSPACE" to $logs/times.
boot() {
    local vmm=$1 kind=$2 round=$3 kernel log t0 pid up done_at
    [[ $kind == pvh ]] && kernel=$guest/vmlinux || kernel=$guest/bzImage
    log=$logs/$kind-$vmm-$round.log
    : >"$log"
    t0=$(now)
    if [[ $vmm == xover ]]; then
        timeout "$timeout_s" "$xover" run --kernel "$kernel" --initrd "$guest/initramfs.cpio" --mem 256M \
            --cpu-template baseline --nic e1000,backend=none --cmdline "$cmdline" >"$log" 2>&1 &
    else
        # The known-good line of scripts/linux-guest/qemu.sh; romfile=: no
        # option ROM (xover has no firmware either); no peer on the NIC.
        timeout "$timeout_s" qemu-system-x86_64 -enable-kvm -cpu qemu64,vendor=GenuineIntel -m 256M \
            -nographic -no-reboot -nodefaults -serial stdio -kernel "$kernel" -initrd "$guest/initramfs.cpio" \
            -append "$cmdline" -device e1000,netdev=n0,romfile= -netdev user,id=n0,restrict=on >"$log" 2>&1 &
    fi
    pid=$!
    pids+=("$pid")
    up=$(wait_for "$log" XOVER-USERSPACE-UP "$pid" "$t0")
    done_at=$(wait_for "$log" XOVER-DONE "$pid" "$t0")
    wait "$pid" || true
    echo "linux-boot kind=$kind vmm=$vmm round=$round userspace_s=$up done_s=$done_at"
    echo "$kind $vmm $up" >>"$logs/times"
}

: >"$logs/times"
for round in $(seq "$rounds"); do
    for kind in $kinds; do
        # Alternate who goes first, so a load trend favours neither.
        if ((round % 2)); then boot xover "$kind" "$round"; boot qemu "$kind" "$round"
        else boot qemu "$kind" "$round"; boot xover "$kind" "$round"; fi
    done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "none"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for kind in $kinds; do
    x=$(awk -v k="$kind" '$1 == k && $2 == "xover" && $3 != "none" { print $3 }' "$logs/times" | median)
    q=$(awk -v k="$kind" '$1 == k && $2 == "qemu" && $3 != "none" { print $3 }' "$logs/times" | median)
    ratio=$(awk -v x="$x" -v q="$q" 'BEGIN { if (x + 0 > 0 && q + 0 > 0) printf "%.2f", x / q; else print "none" }')
    echo "linux-boot-summary kind=$kind xover_userspace_s=$x qemu_userspace_s=$q ratio=$ratio (logs $logs)"
done
