#!/bin/sh
# Runs one test kernel under QEMU with its serial console on stdout.
#   tests/guests/run-qemu.sh build/guests/hello.elf "key=value ..." [extra qemu args]
# Exit status is QEMU's: (v << 1) | 1 for a guest that wrote v to the
# debug-exit port, 124 on timeout. QEMU's own warnings go to stderr.
# Environment: QEMU (binary), QEMU_TIMEOUT (seconds, default 60).
set -eu
if [ $# -lt 1 ]; then
	echo "usage: $0 NAME.elf [cmdline] [qemu args...]" >&2
	exit 2
fi
kernel=$1
cmdline=${2:-}
[ $# -ge 2 ] && shift 2 || shift 1

exec timeout "${QEMU_TIMEOUT:-60}" "${QEMU:-qemu-system-x86_64}" \
	-enable-kvm -cpu qemu64 -m 128M \
	-kernel "$kernel" -append "$cmdline" \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-display none -serial stdio -monitor none -no-reboot \
	"$@"
