#!/bin/bash
# labels: integration crossover network kvm
# The broker switch's tap uplink (xover broker --uplink tap:NAME, or
# uplink = "tap:NAME" in an `xover up` file). In a private network
# namespace with a tap xupN (host side 10.98.N.1/24):
#  1. bad input: a missing tap, a non-tap interface, an up file naming a
#     missing tap: one line, non-zero, nothing started;
#  2. configs/auto-trio.toml itself (its tap, guest path and address
#     rewritten for this test) under `xover up`: vm-a and vm-c ping vm-b
#     over auto links while the namespace pings vm-b over the uplink with
#     no loss; the broker's status counts the uplink's frames both ways;
#  3. a broker started by hand: frames to a MAC no VM has are dropped and
#     counted, the tap going down and coming back, and the tap deleted
#     under the broker: counted, never a crash; the VM ends normally.
# Skips without root, network namespaces or /dev/net/tun.
. "$(dirname "$0")/lib.sh"
need_xover
need_netns xover-uplink
inns() { ip netns exec "$ns" "$@"; }
tap=xup$n
host=10.98.$n.1 vm_ip=10.98.$n.2
inns ip tuntap add "$tap" mode tap || fail "ip tuntap add $tap"
inns ip addr add "$host/24" dev "$tap"
inns ip link set "$tap" up
pings=${PINGS:-20}
SOURCE=${XOVER_SOURCE:-$(dirname "$0")/../..}

# json_num JSON PATH...: the number after "k1":{..."k2":N (first match, in order).
json_num() {
	local json=$1 k
	shift
	for k in "$@"; do json=${json#*\"$k\":}; done
	echo "$json" | grep -o '^[0-9]*'
}

# --- 1. bad input ------------------------------------------------------------
# one_line_error WHAT PATTERN command...: fails unless the command exits
# non-zero with exactly one line matching PATTERN.
one_line_error() {
	local what=$1 pattern=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	[ $rc -ne 0 ] || fail "$what: exit status 0"
	[ "$(echo "$out" | wc -l)" = 1 ] || fail "$what: not one line: $out"
	echo "$out" | grep -q "$pattern" || fail "$what: unexpected message: $out"
	echo "ok $what: $out"
}
one_line_error "missing tap" "tap:nosuch$n: no such interface (create it first: ip tuntap add" \
	inns timeout 20 "$X" broker --broker "$tmp/bad.sock" --uplink "tap:nosuch$n"
one_line_error "not a tap" "tap:lo: lo is not a tap interface" \
	inns timeout 20 "$X" broker --broker "$tmp/bad.sock" --uplink tap:lo
[ -e "$tmp/bad.sock" ] && fail "a broker whose uplink failed left a socket behind"

up_file() {  # FILE UPLINK BACKEND
	cat >"$1" <<TOML
broker = "$tmp/up-bad.sock"
uplink = "$2"
[[vm]]
name = "lonely"
kernel = "$NETTEST"
cmdline = "role=rx count=1"
[[vm.nic]]
mac = "52:54:00:5c:$(printf %02x $n):01"
backend = "$3"
TOML
}
up_file "$tmp/missing.toml" "tap:nosuch$n" broker
one_line_error "up: missing tap" "missing.toml: uplink: tap:nosuch$n: no such interface" \
	inns timeout 30 "$X" up "$tmp/missing.toml"
[ -e "$tmp/up-bad.sock" ] && fail "up started a broker for a missing tap"
up_file "$tmp/unused.toml" "tap:$tap" none
one_line_error "up: uplink without broker NICs" 'unused.toml:2.* key "uplink": no NIC has backend = "broker"' \
	inns timeout 30 "$X" up "$tmp/unused.toml"
up_file "$tmp/badspec.toml" "eth0" broker
one_line_error "up: not a tap" 'badspec.toml:2.* key "uplink": "eth0" is not a valid uplink' \
	inns timeout 30 "$X" up "$tmp/badspec.toml"

# --- 2. configs/auto-trio.toml with its uplink --------------------------------
trio=$tmp/trio.toml
{
	echo "broker = \"$tmp/trio.sock\""
	sed -e "s|tap:xtrio0|tap:$tap|" -e "s|\"\.\./build/guests/nettest.elf\"|\"$NETTEST\"|" \
		-e "s|ip=10\.12\.0\.2|ip=$vm_ip|" "$SOURCE/configs/auto-trio.toml" | scale_timeouts
} >"$trio"
grep -q "^uplink = \"tap:$tap\"" "$trio" || fail "configs/auto-trio.toml has no uplink = \"tap:xtrio0\" line"
grep -q "ip=$vm_ip" "$trio" || fail "configs/auto-trio.toml: vm-b has no ip=10.12.0.2"
t0=$(now)
start trio 180 ip netns exec "$ns" "$X" up "$trio"
wait_output trio '^\[vm-b\] .*link=up' 60 || fail "trio: vm-b never came up"
out=$(inns ping -c "$pings" -i 0.2 -W 2 "$vm_ip" 2>&1)
echo "$out" | tail -2
echo "$out" | grep -q " 0% packet loss" || fail "trio: ping over the uplink lost packets: $(echo "$out" | tail -2)"
json=$("$X" status --broker "$tmp/trio.sock" --json 2>&1) || fail "trio: status: $json"
echo "$json" | grep -q "\"uplink\":{\"port\":\"tap:$tap\",\"link\":\"up\",\"receiving\":true" ||
	fail "trio: no uplink in status: $json"
from=$(json_num "$json" uplink from_tap frames) to=$(json_num "$json" uplink to_tap frames)
[ "$from" -ge "$pings" ] && [ "$to" -ge "$pings" ] || fail "trio: uplink counted from_tap=$from to_tap=$to"
text=$("$X" status --broker "$tmp/trio.sock")
echo "$text" | grep -q "^Uplink: tap:$tap (link up)" || fail "trio: no uplink in text status: $text"
[ "$(wait_vm trio 150)" = 0 ] || fail "trio: xover up failed"
o=$tmp/trio.out
grep -q "^\[vm-b\] RESULT role=responder arp=[1-9][0-9]* icmp=$pings echoed=[1-9]" "$o" || fail "trio: vm-b's result"
for v in vm-a vm-c; do
	grep -q "^\[$v\] RESULT role=ping frames=200 " "$o" || fail "trio: $v did not make its 200 round trips"
	line=$(grep "^\[$v\] stats: nic0-.*xover_links_made=" "$o")
	made=$(echo "$line" | grep -o ' xover_links_made=[0-9]*' | cut -d= -f2)
	fast=$(echo "$line" | grep -o ' xover_tx_frames=[0-9]*' | cut -d= -f2)
	[ "${made:-0}" -ge 1 ] && [ "${fast:-0}" -gt 0 ] || fail "trio: $v made no auto link (links=$made fast=$fast)"
done
echo "ok auto-trio.toml: $pings pings over the uplink, no loss (uplink from_tap=$from to_tap=$to);" \
	"vm-a and vm-c linked to vm-b automatically, $(elapsed "$t0") s"

# --- 3. counters, link down/up, the tap deleted under the broker ---------------
BROKER=$tmp/b.sock
inns "$X" broker --broker "$BROKER" --uplink "tap:$tap" >"$tmp/broker.out" 2>&1 &
broker_pid=$!
lib_pids+=("$broker_pid")
for _ in $(seq 100); do "$X" status --broker "$BROKER" >/dev/null 2>&1 && break; sleep 0.1; done
status() { "$X" status --broker "$BROKER" --json 2>&1; }
status | grep -q '"uplink"' || fail "broker --uplink: no uplink in status: $(status)"
# The responder ends after 15 s without a frame: longer where emulated,
# where the steps below (status, pings to nobody) outlasted it.
xover_vm resp "role=responder ip=$vm_ip timeout_ms=$((15000 * EMULATION_SCALE))" "e1000,mac=52:54:00:5c:$(printf %02x $n):02,backend=broker" \
	--broker "$BROKER"
wait_output resp "link=up" 60 || fail "resp: guest NIC never came up"
inns ping -c 3 -i 0.2 -W 2 "$vm_ip" | grep -q " 0% packet loss" || fail "resp: first pings lost"

# A unicast MAC no VM has: dropped at the uplink, counted.
inns ip neigh replace 10.98.$n.9 lladdr 52:54:00:de:ad:99 dev "$tap"
inns ping -c 3 -i 0.2 -W 1 10.98.$n.9 >/dev/null 2>&1
unknown=$(json_num "$(status)" uplink dropped unknown_dst)
[ "${unknown:-0}" -ge 3 ] || fail "unknown destination: unknown_dst=$unknown: $(status)"
echo "ok: frames from the tap to a MAC no VM has are dropped (unknown_dst=$unknown)"

# The tap goes down: status says so, nothing crashes; back up, pings work.
inns ip link set "$tap" down
status | grep -q '"link":"down"' || fail "link down not reported: $(status)"
inns ip link set "$tap" up
out=$(inns ping -c 5 -i 0.2 -W 2 "$vm_ip" 2>&1)
echo "$out" | grep -q " 0% packet loss" || fail "after link down/up: $(echo "$out" | tail -2)"
echo "ok: link down reported, pings work again after link up"

# The tap deleted under the broker: it stops reading it, keeps serving.
inns ip link delete "$tap"
for _ in $(seq 50); do status | grep -q '"link":"gone","receiving":false' && break; sleep 0.1; done
json=$(status)
echo "$json" | grep -q '"link":"gone","receiving":false' || fail "deleted tap not reported: $json"
kill -0 "$broker_pid" 2>/dev/null || fail "the broker died with its tap"
expect resp icmp=8
kill -0 "$broker_pid" 2>/dev/null || fail "the broker died"
grep -q "uplink tap:$tap: read: " "$tmp/broker.out" || fail "no log line about the lost tap"
echo "ok: tap deleted: broker alive, read_errors=$(json_num "$json" uplink read_errors), VM exited normally"
kill "$broker_pid"
echo PASS
