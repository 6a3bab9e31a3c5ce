#!/usr/bin/env bash
# Runs the Linux test guest (scripts/linux-guest.sh) under QEMU: the
# reference xover's own runs are compared with, and a check of the guest
# itself.
#
#   qemu.sh boot [pvh|bzimage] [EXTRA_CMDLINE...]
#       one guest with an e1000 on a QEMU "user" network (no peer); prints
#       the seconds from QEMU start to XOVER-USERSPACE-UP and to XOVER-DONE
#   qemu.sh pair [e1000|virtio-net-pci] [EXTRA_CMDLINE...]
#       two guests joined NIC-to-NIC by `-netdev socket` (listen/connect);
#       A=10.0.76.1 pings B=10.0.76.2 and sends it a TCP payload
#
# Environment: XOVER_LINUX_GUEST (dir with vmlinux/bzImage/initramfs, default
# ${XOVER_CACHE:-$HOME/.cache/xover}/linux-guest), LOG_DIR (default a new
# temporary dir; logs are kept), PORT (socket port, default random),
# PING_COUNT (10), TCP_BYTES (1048576), MEM (256M), TIMEOUT (900 s),
# INITRD (file name in the guest dir: initramfs.cpio, or initramfs.cpio.gz).
# NICs get romfile= (no iPXE option ROM): xover has no firmware either.
# Exit status 0 when every guest printed XOVER-DONE result=pass (and, for a
# pair, both TCP-RESULT lines agree).
set -euo pipefail

mode=${1:?usage: qemu.sh boot|pair [pvh|bzimage|e1000|virtio-net-pci] [CMDLINE...]}
shift
guest=${XOVER_LINUX_GUEST:-${XOVER_CACHE:-$HOME/.cache/xover}/linux-guest}
logs=${LOG_DIR:-$(mktemp -d /tmp/xover-linux-qemu.XXXXXX)}
mkdir -p "$logs"
timeout_s=${TIMEOUT:-900}
mem=${MEM:-256M}

# Same CPU view xover gives the guest: GenuineIntel, and the features the
# software KVM cannot emulate at CPL0 hidden (see README.md next to this).
# tsc=reliable keeps the TSC as clocksource (the watchdog would otherwise
# drop it for jiffies, whose timestamps drift when the host is loaded);
# panic=-1 turns a guest panic into a reset, which -no-reboot makes an exit.
base_cmdline="console=ttyS0 earlyprintk=serial,ttyS0 clearcpuid=smap,smep,popcnt,xsave nofsgsbase mitigations=off tsc=reliable panic=-1"
# shellcheck disable=SC2054  # commas belong to QEMU's option syntax
qemu=(qemu-system-x86_64 -enable-kvm -cpu qemu64,vendor=GenuineIntel -m "$mem"
      -nographic -no-reboot -nodefaults -serial stdio)

initrd=$guest/${INITRD:-initramfs.cpio}
for f in vmlinux bzImage "${initrd##*/}"; do
    [[ -s $guest/$f ]] || { echo "qemu.sh: no $guest/$f (run scripts/linux-guest.sh)" >&2; exit 2; }
done

now() { date +%s.%N; }
# QEMU processes still running when this script ends (error, Ctrl-C) go too.
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# wait_for LOG PATTERN PID: seconds since $t0 when PATTERN shows up in LOG,
# or "none" if the process ended first.
wait_for() {
    while ! grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || { grep -q "$2" "$1" 2>/dev/null && break; echo none; return; }
        sleep 0.2
    done
    echo "$(now) $t0" | awk '{printf "%.1f", $1 - $2}'
}

case $mode in
boot)
    kind=${1:-pvh}; shift || true
    case $kind in
    pvh) kernel=$guest/vmlinux ;;
    bzimage) kernel=$guest/bzImage ;;
    *) echo "qemu.sh boot: pvh or bzimage, not $kind" >&2; exit 1 ;;
    esac
    log=$logs/boot-$kind.log
    : > "$log"   # an old log must not satisfy wait_for
    t0=$(now)
    timeout "$timeout_s" "${qemu[@]}" -kernel "$kernel" -initrd "$initrd" \
        -append "$base_cmdline xover.ip=10.0.2.15/24 $*" \
        -device e1000,netdev=n0,romfile= -netdev user,id=n0,restrict=on > "$log" 2>&1 &
    pid=$!
    pids+=("$pid")
    up=$(wait_for "$log" XOVER-USERSPACE-UP $pid)
    done_at=$(wait_for "$log" XOVER-DONE $pid)
    wait $pid || true
    echo "boot $kind: userspace ${up}s, done ${done_at}s (log $log)"
    grep -q "XOVER-DONE result=pass" "$log"
    ;;
pair)
    nic=${1:-e1000}; shift || true
    port=${PORT:-$((20000 + RANDOM % 20000))}
    bytes=${TCP_BYTES:-1048576}
    common="$base_cmdline xover.ping=${PING_COUNT:-10} xover.tcp_bytes=$bytes xover.tcp_port=5001 $*"
    : > "$logs/pair-$nic-A.log"; : > "$logs/pair-$nic-B.log"
    t0=$(now)
    timeout "$timeout_s" "${qemu[@]}" -kernel "$guest/vmlinux" -initrd "$initrd" \
        -append "$common xover.ip=10.0.76.1/24 xover.peer=10.0.76.2 xover.tcp=send xover.wait=20" \
        -device "$nic,netdev=n0,mac=52:54:00:00:76:01,romfile=" \
        -netdev "socket,id=n0,listen=127.0.0.1:$port" > "$logs/pair-$nic-A.log" 2>&1 &
    pa=$!
    pids+=("$pa")
    # The connecting side needs the listening socket to exist.
    for _ in $(seq 50); do
        ss -ltn 2>/dev/null | grep -q ":$port " && break
        sleep 0.1
    done
    timeout "$timeout_s" "${qemu[@]}" -kernel "$guest/vmlinux" -initrd "$initrd" \
        -append "$common xover.ip=10.0.76.2/24 xover.peer=10.0.76.1 xover.tcp=recv xover.wait=5" \
        -device "$nic,netdev=n0,mac=52:54:00:00:76:02,romfile=" \
        -netdev "socket,id=n0,connect=127.0.0.1:$port" > "$logs/pair-$nic-B.log" 2>&1 &
    pb=$!
    pids+=("$pb")
    upa=$(wait_for "$logs/pair-$nic-A.log" XOVER-USERSPACE-UP $pa)
    peer=$(wait_for "$logs/pair-$nic-A.log" XOVER-PEER-REACHABLE $pa)
    wait $pa $pb || true
    for s in A B; do
        echo "== $s"; grep -aE "XOVER-|PING-RESULT|TCP-RESULT" "$logs/pair-$nic-$s.log" || true
    done
    echo "pair $nic: A userspace ${upa}s, peer reachable ${peer}s, total $(echo "$(now) $t0" | awk '{printf "%.1f", $1-$2}')s (logs $logs)"
    # (seq ends on SIGPIPE once head has enough: not an error)
    expected=$({ seq 1 "$bytes" || true; } | head -c "$bytes" | md5sum | cut -d' ' -f1)
    tx=$(grep -a "TCP-RESULT" "$logs/pair-$nic-A.log" | sed -n 's/.*md5=\([0-9a-f]*\).*/\1/p')
    rx=$(grep -a "TCP-RESULT" "$logs/pair-$nic-B.log" | sed -n 's/.*md5=\([0-9a-f]*\).*/\1/p')
    [[ $tx == "$expected" && $rx == "$expected" ]] ||
        { echo "TCP md5 mismatch: expected $expected sent ${tx:-none} received ${rx:-none}"; exit 1; }
    grep -q "XOVER-DONE result=pass" "$logs/pair-$nic-A.log" &&
        grep -q "XOVER-DONE result=pass" "$logs/pair-$nic-B.log"
    ;;
*)
    echo "qemu.sh: mode boot or pair, not $mode" >&2; exit 1 ;;
esac
