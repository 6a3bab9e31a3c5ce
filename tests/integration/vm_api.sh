#!/bin/bash
# labels: integration crossover api
# A VM's control API (docs/openapi.json, x-socket "vm") on a running
# crossover pair, driven with curl, xover ctl and the OpenAPI checker:
# - every documented call answers as documented (scripts/check-openapi.py);
# - pausing the receiver, then the sender, while 300,000 frames flow loses
#   none (the link is lossless: frames wait in the rings), and GET /vm says
#   "paused" meanwhile;
# - a malformed request gets a JSON 4xx and the VM goes on;
# - PUT /vm/shutdown stops a VM cleanly: exit status 0, its --stats written,
#   its API socket gone;
# - PUT /nics/{id}/carrier switches a NIC's carrier, and GET /vm shows it.
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
N=300000
vm rx e1000 $A tx "role=rx count=$N timeout_ms=20000 start_timeout_ms=30000"
vm tx virtio $Bm rx "role=tx count=$N size=64 dst=$A timeout_ms=20000"
wait_api rx
wait_api tx
[ "$(command stat -c %a "$(api rx)")" = 600 ] || fail "the API socket is not private"

# Every documented call, and pause/resume through the checker.
python3 "$src/scripts/check-openapi.py" "$src/docs/openapi.json" "$(api rx)" vm \
	--call "PUT /vm/pause" --call "PUT /vm/pause" --call "PUT /vm/resume" --call "PUT /vm/resume" ||
	fail "the VM API does not match docs/openapi.json"

for i in $(seq 300); do [ "$(links)" = 1 ] && break; sleep 0.1; done
[ "$(links)" = 1 ] || fail "no link"
sleep 0.5
# The receiver, then the sender, paused for a second each while frames flow.
for who in rx tx; do
	ctl "$who" pause || fail "ctl $who pause"
	[ "$(state "$who")" = paused ] || fail "$who: state $(state "$who") after pause"
	sleep 1
	ctl "$who" resume || fail "ctl $who resume"
	[ "$(state "$who")" = running ] || fail "$who: state $(state "$who") after resume"
done
ctl rx info | grep -q '"name": "rx"' || fail "ctl rx info: $(ctl rx info)"
ctl rx counters >/dev/null || fail "ctl rx counters"
out=$(curl -s -w ' %{http_code}' --unix-socket "$(api rx)" -X PUT -d '{broken' http://localhost/vm/pause)
grep -q '"error".* 400$' <<<"$(tr -d '\n' <<<"$out")" || fail "a malformed body got: $out"

[ "$(waitvm tx)" = 0 ] || fail "tx exited $(cat "$tmp/tx.rc")"
[ "$(waitvm rx)" = 0 ] || fail "rx exited $(cat "$tmp/rx.rc")"
result rx | grep -q "RESULT role=rx frames=$N .*errors=0 lost=0" || fail "frames were lost across the pauses: $(result rx)"
[ -e "$(api rx)" ] && fail "rx's API socket was left behind"
echo "ok: pause/resume of each side while $N frames flowed lost none; documented answers; JSON errors"

# A clean shutdown through the API, and the carrier switch before it.
vm idle e1000 52:54:00:a9:00:03 "" "role=rx count=1 timeout_ms=120000 start_timeout_ms=120000"
wait_api idle
python3 "$src/scripts/check-openapi.py" "$src/docs/openapi.json" "$(api idle)" vm \
	--call 'PUT /nics/0/carrier {"state": "down"}' --call 'PUT /nics/0/carrier {"state": "sideways"}' \
	--call 'PUT /nics/7/carrier {"state": "up"}' --call 'PUT /nics/x/carrier {"state": "up"}' ||
	fail "the carrier calls do not match docs/openapi.json"
curl -sf --unix-socket "$(api idle)" http://localhost/vm | grep -q '"carrier": "down"' || fail "GET /vm does not show the carrier down"
ctl idle put /nics/0/carrier '{"state": "up"}' | grep -q '"carrier": "up"' || fail "ctl put carrier up"
curl -sf --unix-socket "$(api idle)" http://localhost/vm | grep -q '"carrier": "up"' || fail "GET /vm does not show the carrier up again"
out=$(curl -s -w ' %{http_code}' --unix-socket "$(api idle)" -X PUT http://localhost/vm/shutdown)
grep -q '"stopping".* 202$' <<<"$(tr -d '\n' <<<"$out")" || fail "shutdown answered: $out"
rc=$(waitvm idle)
[ "$rc" = 0 ] || fail "a VM shut down through the API exited $rc"
grep -q "stats: vm name=idle" "$tmp/idle.out" || fail "no --stats after the shutdown"
[ -e "$(api idle)" ] && fail "idle's API socket was left behind"
echo "ok: PUT /vm/shutdown: exit 0, counters written, socket gone"
