#!/bin/bash
# labels: integration crossover api kvm
# A VM's control API (docs/openapi.json, x-socket "vm") on a running
# crossover pair, driven with curl, xover ctl and the OpenAPI checker:
# - every documented call answers as documented (scripts/check-openapi.py);
# - pausing the sender mid-stream, then the receiver while the sender goes
#   on, loses none of 200,000 frames (100,000 where guests are emulated;
#   the link is lossless: frames wait in the rings), and GET /vm says
#   "paused" meanwhile;
# - a malformed request gets a JSON 4xx and the VM goes on;
# - PUT /vm/shutdown stops a VM cleanly: exit status 0, its --stats written,
#   its API socket gone;
# - DELETE /links/PEER takes a link down and PUT /links/PEER makes it again;
# - PUT /nics/{id}/carrier down takes a crossover NIC's link down, up brings
#   it back, and GET /vm shows it.
source "$(dirname "$0")/crossover_common.inc"
src=$(cd "$(dirname "$0")/../.." && pwd)
api() { echo "$tmp/vm.$1.api.sock"; }  # next to the test's broker socket
ctl() { "$X" ctl --broker "$BROKER" "$@"; }
wait_api() {
	local i
	for i in $(seq 300); do [ -S "$(api "$1")" ] && curl -sf --unix-socket "$(api "$1")" http://localhost/vm >/dev/null && return; sleep 0.1; done
	fail "$1's API never answered"
}
state() { curl -sf --unix-socket "$(api "$1")" http://localhost/vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }

A=52:54:00:a9:00:01; Bm=52:54:00:a9:00:02
# Where guests are emulated, half: the stream is paced, and still lasts
# ~40 s there, twice what the steps up to the first pause have taken.
N=$((200000 / (EMULATION_SCALE > 1 ? 2 : 1)))
# rx waits up to 60 s for a frame: the sender stays paused while the test's
# own steps (curl, ctl, python3) run, which an emulated host makes slow.
vm rx e1000 $A tx "role=rx count=$N timeout_ms=60000 start_timeout_ms=30000"
wait_api rx
[ "$(command stat -c %a "$(api rx)")" = 600 ] || fail "the API socket is not private"

# Every documented call, and pause/resume through the checker, while rx
# waits for its sender (so the checker's own time is not taken from the
# stream below).
python3 "$src/scripts/check-openapi.py" "$src/docs/openapi.json" "$(api rx)" vm \
	--call "PUT /vm/pause" --call "PUT /vm/pause" --call "PUT /vm/resume" --call "PUT /vm/resume" ||
	fail "the VM API does not match docs/openapi.json"
ctl rx info | grep -q '"name": "rx"' || fail "ctl rx info: $(ctl rx info)"
ctl rx counters >/dev/null || fail "ctl rx counters"
out=$(curl -s -w ' %{http_code}' --unix-socket "$(api rx)" -X PUT -d '{broken' http://localhost/vm/pause)
grep -q '"error".* 400$' <<<"$(tr -d '\n' <<<"$out")" || fail "a malformed body got: $out"

# 25 us apart: the stream lasts ~5 s natively, so the first pause lands in
# it. (Where the test itself runs emulated, EMULATION_SCALE squared: its
# own steps up to that pause (curl, xover status, python3) are that slow
# there too.) Once the sender is paused the test may take its time.
vm tx virtio $Bm rx "role=tx count=$N size=64 dst=$A gap_ns=$((25000 * EMULATION_SCALE * EMULATION_SCALE)) timeout_ms=20000"
wait_api tx

rx_frames() { ctl rx counters | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["nic0-e1000"]["rx_frames"])'; }
wait_links 1 "the paused pair"
for i in $(seq 300); do [ "$(rx_frames)" -gt 0 ] && break; sleep 0.1; done
# The sender paused mid-stream; then the receiver paused while the sender
# runs again (its frames wait: the link is lossless); then both go on.
ctl tx pause || fail "ctl tx pause"
[ "$(state tx)" = paused ] || fail "tx: state $(state tx) after pause"
got=$(rx_frames)
[ "$got" -gt 0 ] && [ "$got" -lt "$N" ] || fail "tx was paused with $got of $N frames received: not mid-stream"
sleep 1
ctl rx pause || fail "ctl rx pause"
[ "$(state rx)" = paused ] || fail "rx: state $(state rx) after pause"
ctl tx resume || fail "ctl tx resume"
[ "$(state tx)" = running ] || fail "tx: state $(state tx) after resume"
sleep 1
got=$(rx_frames)
[ "$got" -lt "$N" ] || fail "rx was paused, yet has all $N frames"
ctl rx resume || fail "ctl rx resume"
# (rx may be done already: its state is then gone with it.)
[ "$(state rx)" = running ] || result rx | grep -q "frames=$N " || fail "rx: state $(state rx) after resume"

[ "$(wait_vm tx)" = 0 ] || fail "tx exited $(cat "$tmp/tx.rc")"
[ "$(wait_vm rx)" = 0 ] || fail "rx exited $(cat "$tmp/rx.rc")"
result rx | grep -q "RESULT role=rx frames=$N .*errors=0 lost=0" || fail "frames were lost across the pauses: $(result rx)"
[ -e "$(api rx)" ] && fail "rx's API socket was left behind"
echo "ok: pause/resume of each side while $N frames flowed lost none; documented answers; JSON errors"

# Runtime links, the carrier switch and a clean shutdown, on an idle pair.
vm l1 e1000 52:54:00:a9:00:03 l2 "role=rx count=1 timeout_ms=120000 start_timeout_ms=120000"
vm l2 virtio 52:54:00:a9:00:04 l1 "role=rx count=1 timeout_ms=120000 start_timeout_ms=120000"
wait_api l1
wait_api l2
link_state() { curl -sf --unix-socket "$(api l1)" "http://localhost/links/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
# wait_link_state PEER STATE WHAT: l1's agent learns of a link just after the broker made it.
wait_link_state() {
	local i
	for i in $(seq 100); do [ "$(link_state "$1")" = "$2" ] && return; sleep 0.1; done
	fail "$3: GET /links/$1 says $(link_state "$1"), not $2"
}
wait_links 1 "the pair"
wait_link_state l2 up "the pair"
python3 "$src/scripts/check-openapi.py" "$src/docs/openapi.json" "$(api l1)" vm \
	--call "GET /links/l2" --call "GET /links/nobody" --call "PUT /links/l1" --call "PUT /links/l2?nic=5" \
	--call "PUT /links/l2?nic=x" --call "PUT /nics/1/carrier {\"state\": \"up\"}" \
	--call 'PUT /nics/0/carrier {"state": "sideways"}' --call 'PUT /nics/x/carrier {"state": "up"}' ||
	fail "the link and carrier calls do not match docs/openapi.json"

# Unlink, then link: the link goes down, then re-forms.
ctl l1 unlink l2 | grep -q '"requested": "unlink"' || fail "ctl l1 unlink l2"
wait_links 0 "after DELETE /links/l2"
wait_link_state l2 down "after the unlink"
out=$(curl -s -w ' %{http_code}' --unix-socket "$(api l1)" -X PUT http://localhost/links/l2 2>&1)
grep -q '"requested": "link".* 202$' <<<"$(tr -d '\n' <<<"$out")" || fail "PUT /links/l2: $out"
wait_links 1 "after PUT /links/l2"
wait_link_state l2 up "after the link"
echo "ok: DELETE /links/l2 took the link down, PUT /links/l2 made it again"

# The carrier: down unplugs the cable (the link goes), up plugs it back.
ctl l1 put /nics/0/carrier '{"state": "down"}' | grep -q '"carrier": "down"' || fail "ctl carrier down"
wait_links 0 "after carrier down"
curl -sf --unix-socket "$(api l1)" http://localhost/vm | grep -q '"carrier": "down"' || fail "GET /vm does not show the carrier down"
ctl l1 carrier 0 up | grep -q '"carrier": "up"' || fail "ctl l1 carrier 0 up"
ctl l1 link-state l2 >/dev/null || fail "ctl l1 link-state l2"
wait_links 1 "after carrier up"
echo "ok: carrier down took the link down, carrier up brought it back"

# Shutdown through the API (curl) and through xover ctl.
out=$(curl -s -w ' %{http_code}' --unix-socket "$(api l1)" -X PUT http://localhost/vm/shutdown)
grep -q '"stopping".* 202$' <<<"$(tr -d '\n' <<<"$out")" || fail "shutdown answered: $out"
ctl l2 shutdown >/dev/null || fail "ctl l2 shutdown"
for v in l1 l2; do
	rc=$(wait_vm $v)
	[ "$rc" = 0 ] || fail "$v, shut down through the API, exited $rc"
	grep -q "stats: vm name=$v" "$tmp/$v.out" || fail "$v: no --stats after the shutdown"
	[ -e "$(api $v)" ] && fail "$v's API socket was left behind"
done
echo "ok: PUT /vm/shutdown: exit 0, counters written, sockets gone"
