#!/bin/bash
# labels: integration boot kvm
# Boots the hello guest: console output, command line, exit status from the
# debug-exit port, --stats counters, --console file:, and several vCPUs.
set -u
B=${XOVER_BUILD:?}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
guest=$B/guests/hello.elf
[ -f "$guest" ] || { echo "SKIP: $guest not built"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; exit 1; }

timeout 120 "$B/xover" run --kernel "$guest" --cmdline "hello world" --stats >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc, expected 0"
grep -qx "hello from xover guest" "$tmp/out" || fail "no greeting"
grep -qx "cmdline: hello world" "$tmp/out" || fail "command line not passed"
grep -q "^stats: vm name=vm .*exits=[0-9]" "$tmp/err" || fail "no VM stats line"
grep -q "^stats: vcpu0 exits=[0-9]* io=[0-9]" "$tmp/err" || fail "no vCPU stats line"
grep -q "^stats: serial bus=pio .*writes=[1-9]" "$tmp/err" || fail "no serial stats line"
# --stats shows the counters that are not 0: the guest writes the
# debug-exit port once and never reads it.
grep -q "^stats: debug-exit bus=pio writes=1$" "$tmp/err" || fail "no debug-exit stats line"
grep -q "^stats:" "$tmp/out" && fail "stats went to stdout (the console)"
echo "hello: $(grep '^stats: vm' "$tmp/err")"

# Console to a file, nothing on stdout.
timeout 120 "$B/xover" run --kernel "$guest" --cmdline "to a file" --console "file:$tmp/console.txt" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "console file: exit status $rc"
[ -s "$tmp/out" ] && fail "console file: output leaked to stdout"
grep -qx "cmdline: to a file" "$tmp/console.txt" || fail "console file: missing output"

# Two vCPUs: the AP parks in the in-kernel LAPIC's wait-for-SIPI state and
# must not disturb the boot CPU, nor keep the VM from exiting.
timeout 120 "$B/xover" run --kernel "$guest" --cmdline "smp" --cpus 2 --stats=all >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "--cpus 2: exit status $rc"
grep -qx "cmdline: smp" "$tmp/out" || fail "--cpus 2: missing output"
grep -q "^stats: vcpu1 exits=" "$tmp/err" || fail "--cpus 2: no second vCPU"
echo "PASS"
