#!/bin/bash
# Two nettest.elf guests under QEMU, NIC to NIC over a UDP "cable"
# (-netdev dgram on 127.0.0.1), to check the guest drivers against QEMU's
# device models and to serve as the baseline xover is compared with.
#
#   tests/guests/qemu-pair.sh [rxtx|pingecho] [e1000|virtio] [e1000|virtio]
#     rxtx:     A = role=rx count=N,   B = role=tx count=N size=S dst=A
#     pingecho: A = role=echo count=N, B = role=ping count=N size=S dst=A
# Environment: NETTEST (path to nettest.elf, default build/guests/nettest.elf),
#   COUNT (1000), SIZE (64), BATCH (32), PORT (40100; uses PORT and PORT+1),
#   GAP_NS (100000: tx pacing, because a UDP cable drops what the receiving
#   QEMU cannot take in time; 1514-byte frames need ~1000000 here),
#   EXTRA (more key=value words for both guests), QEMU_TIMEOUT (60).
# Exit status 0 when both guests exit 0.
set -u
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-rxtx}
nic_a=${2:-e1000}
nic_b=${3:-$nic_a}
kernel=${NETTEST:-$here/../../build/guests/nettest.elf}
count=${COUNT:-1000}
size=${SIZE:-64}
batch=${BATCH:-32}
gap_ns=${GAP_NS:-100000}
port=${PORT:-40100}
extra=${EXTRA:-}
mac_a=52:54:00:00:00:0a
mac_b=52:54:00:00:00:0b

case $mode in
rxtx)     cmd_a="role=rx count=$count"
          cmd_b="role=tx count=$count size=$size batch=$batch gap_ns=$gap_ns dst=$mac_a" ;;
pingecho) cmd_a="role=echo count=$count"
          cmd_b="role=ping count=$count size=$size dst=$mac_a" ;;
*) echo "usage: $0 [rxtx|pingecho] [e1000|virtio] [e1000|virtio]" >&2; exit 2 ;;
esac

device() { # model mac
	case $1 in
	e1000)  echo "e1000,netdev=n0,mac=$2" ;;
	virtio) echo "virtio-net-pci,disable-legacy=on,netdev=n0,mac=$2" ;;
	*) echo "unknown NIC model $1" >&2; exit 2 ;;
	esac
}

run() { # name model mac cmdline local_port remote_port
	"$here/run-qemu.sh" "$kernel" "nic=$2 $4 $extra" \
		-netdev "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$5,remote.type=inet,remote.host=127.0.0.1,remote.port=$6" \
		-device "$(device "$2" "$3")" 2>&1 | grep --line-buffered -v "host doesn't support requested feature" |
		sed -u "s/^/[$1] /"
	return "${PIPESTATUS[0]}"
}

run A "$nic_a" "$mac_a" "$cmd_a" "$port" $((port + 1)) &
pid_a=$!
sleep 1 # let A listen first: tx has no way to know when rx is ready
run B "$nic_b" "$mac_b" "$cmd_b" $((port + 1)) "$port"
rc_b=$?
wait "$pid_a"
rc_a=$?
# QEMU's isa-debug-exit reports guest status v as (v << 1) | 1.
echo "qemu-pair: A exit $rc_a (guest $(((rc_a - 1) / 2))), B exit $rc_b (guest $(((rc_b - 1) / 2)))"
[ "$rc_a" -eq 1 ] && [ "$rc_b" -eq 1 ]
