#!/bin/bash
# labels: integration launcher kvm
# `xover up FILE.toml`: starts every [[vm]], prefixes console lines with the
# VM name, prints a summary, and exits non-zero when any VM failed. Bad
# files are refused before anything starts.
set -u
B=${XOVER_BUILD:?}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
G=$B/guests/nettest.elf; H=$B/guests/hello.elf
[ -f "$G" ] && [ -f "$H" ] || { echo "SKIP: guests not built"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "--- output"; cat "$tmp/out" 2>/dev/null; exit 1; }
port=$(( 20000 + $$ % 20000 ))

cat >"$tmp/pair.toml" <<TOML
[[vm]]
name = "left"
kernel = "$G"
cmdline = "role=rx count=300"
mem = "32M"
[[vm.nic]]
model = "e1000"
mac = "52:54:00:77:00:01"
backend = "stream-listen:127.0.0.1:$port"

[[vm]]
name = "right"
kernel = "$G"
cmdline = "role=tx count=300 size=100 dst=52:54:00:77:00:01"
mem = "32M"
[[vm.nic]]
model = "virtio-net"
mac = "52:54:00:77:00:02"
backend = "stream-connect:127.0.0.1:$port"
TOML
timeout 120 "$B/xover" up "$tmp/pair.toml" --stats >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "pair: exit status $rc"
grep -q "^\[left\] RESULT role=rx frames=300 .*errors=0 lost=0" "$tmp/out" || fail "no prefixed rx result"
grep -q "^\[right\] RESULT role=tx frames=300" "$tmp/out" || fail "no prefixed tx result"
grep -q "^\[left\] stats: nic0-e1000 .*rx_frames=300" "$tmp/out" || fail "no prefixed stats"
grep -q "^left: exit status 0" "$tmp/out" || fail "no summary"

# A failing VM makes `up` fail, and the others still run to the end.
cat >"$tmp/fail.toml" <<TOML
[[vm]]
name = "good"
kernel = "$H"
[[vm]]
name = "bad"
kernel = "$G"
cmdline = "role=rx count=1 timeout_ms=300"
TOML
timeout 120 "$B/xover" up "$tmp/fail.toml" >"$tmp/out" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "a failed VM did not fail up"
grep -q "^good: exit status 0" "$tmp/out" || fail "good VM not reported"
grep -q "^bad: exit status [1-9].*FAILED" "$tmp/out" || fail "bad VM not reported as failed"

# Bad files: refused with one line naming the file, before any VM starts.
printf '[[vm]]\nname = "x"\nkernel = "%s"\nmem = "12Q"\n' "$H" >"$tmp/badsize.toml"
timeout 30 "$B/xover" up "$tmp/badsize.toml" >"$tmp/out" 2>&1 && fail "bad size accepted"
grep -q 'badsize.toml.*mem.*12Q' "$tmp/out" || fail "bad size message"
grep -q "hello from xover guest" "$tmp/out" && fail "a VM started despite a bad file"
printf '[[vm]]\nname = "x"\nkernel = "%s"\n[[vm]]\nname = "x"\nkernel = "%s"\n' "$H" "$H" >"$tmp/dup.toml"
timeout 30 "$B/xover" up "$tmp/dup.toml" >"$tmp/out" 2>&1 && fail "duplicate names accepted"
grep -qi 'dup.toml.*x' "$tmp/out" || fail "duplicate name message"
printf '[[vm]]\nname = "x"\nkernel = "%s"\ncrossover = ["nobody"]\n' "$H" >"$tmp/peer.toml"
timeout 30 "$B/xover" up "$tmp/peer.toml" >"$tmp/out" 2>&1 && fail "unknown peer accepted"
grep -q 'nobody' "$tmp/out" || fail "unknown peer message"
echo PASS
