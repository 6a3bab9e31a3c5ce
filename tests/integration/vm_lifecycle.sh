#!/bin/bash
# labels: integration boot kvm
# How a VM ends, with two throw-away PVH guests assembled here: one spins
# forever (SIGINT/SIGTERM must stop it, also with parked APs: 128+signal),
# one executes ud2 without an IDT (triple fault: registers reported, exit 1).
set -u
B=${XOVER_BUILD:?}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
CC=${CC:-cc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "--- stderr"; cat "$tmp/err" 2>/dev/null; exit 1; }

cat >"$tmp/guest.S" <<'ASM'
	.section .note.Xen, "a"
	.p2align 2
	.long 4, 4, 18          /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long entry
	.text
	.code32
	.globl entry
entry:
#ifdef SPIN
1:	jmp 1b
#else
	ud2
#endif
ASM
printf 'ENTRY(entry)\nSECTIONS { . = 0x200000; .text : { *(.text) } .note.Xen : { *(.note.Xen) } /DISCARD/ : { *(.note.gnu*) } }\n' >"$tmp/guest.ld"
for kind in SPIN FAULT; do
	"$CC" -m32 -nostdlib -static -D$kind -Wl,-T,"$tmp/guest.ld" -Wl,--build-id=none \
		-o "$tmp/$kind.elf" "$tmp/guest.S" 2>"$tmp/cc.err" ||
		{ echo "SKIP: cannot assemble a 32-bit guest with $CC"; cat "$tmp/cc.err"; exit 77; }
done

for sig in INT TERM; do
	"$B/xover" run --kernel "$tmp/SPIN.elf" --cpus 2 --stats >/dev/null 2>"$tmp/err" &
	pid=$!
	# Until its vCPUs run (slow on an emulated host).
	for _ in $(seq 300); do grep -qx xover-vcpu1 /proc/$pid/task/*/comm 2>/dev/null && break; sleep 0.2; done
	# This script's background job started with SIGINT ignored (job control
	# is off): xover must take SIGINT/SIGTERM back, or one that arrives
	# before the VM runs is discarded and the VM never stops.
	ignored=$(awk '/^SigIgn:/ {print $2}' /proc/$pid/status)
	(( (0x$ignored & 0x4002) == 0 )) || fail "SIG$sig: xover leaves SIGINT/SIGTERM ignored (SigIgn=$ignored)"
	kill -$sig $pid
	# Bounded: a VM that does not stop is a failure with its threads'
	# states, not ctest's 600 s timeout.
	for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
	if kill -0 $pid 2>/dev/null; then
		for t in /proc/$pid/task/*; do echo "$(cat "$t/comm"): $(cut -d' ' -f3 "$t/stat") wchan=$(cat "$t/wchan")"; done
		kill -9 $pid
		fail "SIG$sig: xover still running 60 s later (its threads above)"
	fi
	wait $pid
	rc=$?
	expected=$((128 + $(kill -l $sig)))
	[ $rc -eq $expected ] || fail "SIG$sig: exit status $rc, expected $expected"
	grep -q "^stats: vcpu1 exits=" "$tmp/err" || fail "SIG$sig: no stats after the signal"
	# Where each vCPU stood: the boot vCPU in SPIN's loop (its only
	# instruction, at 0x200000); the other was never started.
	grep -q "vCPU 0: stopped by signal $(kill -l $sig) at rip=0x200000 " "$tmp/err" ||
		fail "SIG$sig: vCPU 0's position not reported"
	grep -q "vCPU 1: stopped by signal $(kill -l $sig) " "$tmp/err" || fail "SIG$sig: vCPU 1's position not reported"
	echo "ok: SIG$sig stops a spinning 2-vCPU guest (status $rc) and says where: $(grep -o 'vCPU 0: stopped.*' "$tmp/err")"
done

timeout 60 "$B/xover" run --kernel "$tmp/FAULT.elf" --stats >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || fail "triple fault: exit status $rc, expected 1"
grep -q "triple fault" "$tmp/err" || fail "triple fault not reported"
# On AMD, KVM re-initializes the vCPU before reporting a shutdown: xover
# must then say the registers at the fault are lost, not pass off the
# reset vector as the fault.
grep -q "rip=0x0000000000200000" "$tmp/err" || grep -q "registers at the fault are lost" "$tmp/err" ||
	fail "registers not reported"
grep -q "shutdown=1" "$tmp/err" || fail "shutdown exit not counted"
echo "ok: triple fault reported with registers (status 1)"
echo PASS
