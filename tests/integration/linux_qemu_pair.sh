#!/usr/bin/env bash
# labels: slow qemu linux kvm
# The Linux test guest itself, under QEMU (the reference for xover's own
# Linux runs): two guests with e1000 NICs joined by `-netdev socket` ping
# each other and move a TCP payload whose md5 both sides report.
# Skips (77) without QEMU, /dev/kvm or a built guest: the guest build
# takes minutes, so run scripts/linux-guest.sh once beforehand (or set
# XOVER_LINUX_GUEST_BUILD=1 to let this test build it).
set -euo pipefail

: "${XOVER_SOURCE:?}"
guest=${XOVER_LINUX_GUEST:-${XOVER_CACHE:-$HOME/.cache/xover}/linux-guest}
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu-system-x86_64"; exit 77; }
[[ -w /dev/kvm ]] || { echo "SKIP: no /dev/kvm"; exit 77; }
if [[ ${XOVER_LINUX_GUEST_BUILD:-0} == 1 ]]; then
    "$XOVER_SOURCE/scripts/linux-guest.sh" "$guest" >/dev/null || { rc=$?; [[ $rc == 2 ]] && exit 77; exit $rc; }
fi
[[ -s $guest/vmlinux && -s $guest/initramfs.cpio.gz ]] ||
    { echo "SKIP: no Linux guest in $guest (run scripts/linux-guest.sh)"; exit 77; }

TIMEOUT=500 PING_COUNT=5 TCP_BYTES=262144 XOVER_LINUX_GUEST=$guest \
    "$XOVER_SOURCE/scripts/linux-guest/qemu.sh" pair e1000 quiet
