#!/bin/bash
# labels: integration api
# The broker's control API (docs/openapi.json, x-socket "broker"), served
# under the broker's seccomp filter (kill): every documented GET answers as
# documented, unknown paths and malformed requests get JSON 4xx errors and
# leave the broker running, `xover ctl broker ...` prints and fails as it
# should, and the API socket is private (0600) and goes when the broker does.
source "$(dirname "$0")/lib.sh"
[ -n "$B" ] && [ -x "$X" ] || skip "XOVER_BUILD not set or xover not built"
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$tmp/run && mkdir -m 700 "$dir"
"$X" broker --broker "$dir/broker.sock" --seccomp kill >"$tmp/broker.out" 2>&1 &
broker=$!
lib_pids+=($broker)
for i in $(seq 50); do [ -S "$dir/broker.api.sock" ] && break; sleep 0.1; done
[ -S "$dir/broker.api.sock" ] || fail "no broker.api.sock next to the broker socket"
[ "$(command stat -c %a "$dir/broker.api.sock")" = 600 ] || fail "broker.api.sock has mode $(command stat -c %a "$dir/broker.api.sock")"

python3 "$src/scripts/check-openapi.py" "$src/docs/openapi.json" "$dir/broker.api.sock" broker \
	--call "GET /status?format=text" --call "GET /status?format=xml" || fail "the broker API does not match docs/openapi.json"
curl -sf --unix-socket "$dir/broker.api.sock" http://localhost/status | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["vms"] == [] and d["links"] == []' ||
	fail "curl GET /status"

# `xover status` goes through the API (its text and JSON), and says the same.
"$X" status --broker "$dir/broker.sock" | grep -q "^VMs: 0" || fail "xover status: $("$X" status --broker "$dir/broker.sock")"
"$X" status --broker "$dir/broker.sock" --json | python3 -c 'import json,sys; assert json.load(sys.stdin)["vms"] == []' ||
	fail "xover status --json"
[ "$(curl -s --unix-socket "$dir/broker.api.sock" 'http://localhost/status?format=text')" = "$("$X" status --broker "$dir/broker.sock")" ] ||
	fail "GET /status?format=text differs from xover status"
curl -s --unix-socket "$dir/broker.api.sock" 'http://localhost/status?format=xml' | grep -q '"error": "format=xml is not json or text"' ||
	fail "a bad format was not refused"

ctl() { "$X" ctl --broker "$dir/broker.sock" broker "$@"; }
[ "$(ctl vms)" = "[]" ] || fail "xover ctl broker vms: $(ctl vms)"
ctl status | grep -q '"registrations": 0' || fail "xover ctl broker status: $(ctl status)"
out=$(ctl vm nobody 2>&1) && fail "ctl vm nobody succeeded: $out"
grep -q 'no VM named "nobody" is registered (404)' <<<"$out" || fail "ctl vm nobody: $out"
out=$(ctl frobnicate 2>&1) && fail "an unknown verb succeeded: $out"
grep -q "unknown verb 'frobnicate'" <<<"$out" || fail "unknown verb: $out"
out=$("$X" ctl --broker "$dir/broker.sock" no-such-vm info 2>&1) && fail "ctl of a VM that does not run succeeded"
grep -q "no API answers on $dir/vm.no-such-vm.api.sock" <<<"$out" || fail "ctl no-such-vm: $out"

# A flood of bad requests leaves it serving, and alive.
for i in $(seq 20); do
	curl -s -o /dev/null --unix-socket "$dir/broker.api.sock" -X DELETE http://localhost/vms
	curl -s -o /dev/null --unix-socket "$dir/broker.api.sock" -X PUT -d '{"x":' http://localhost/status
done
kill -0 $broker 2>/dev/null || fail "the broker died: $(cat "$tmp/broker.out")"
# A request without a body (curl -X PUT, no -d: no Content-Length) has
# none: answered at once, not after waiting out the read timeout.
for m in PUT POST DELETE; do
	out=$(timeout 1 curl -s -w ' %{http_code}' --unix-socket "$dir/broker.api.sock" -X $m http://localhost/vms) ||
		fail "a bodiless $m got no answer within 1 s"
	grep -q '"error".* 404$' <<<"$(tr -d '\n' <<<"$out")" || fail "a bodiless $m /vms got: $out"
done
# An unknown path's body is read and dropped: the next request on the
# same kept-alive connection is answered as itself.
codes=$(curl -s --unix-socket "$dir/broker.api.sock" -o /dev/null -w '%{http_code} ' -X PUT -d '{"a":1}' \
	http://localhost/no-such-path --next --unix-socket "$dir/broker.api.sock" -s -o /dev/null -w '%{http_code} %{num_connects}' http://localhost/vms)
[ "$codes" = "404 200 0" ] || fail "an unknown PUT with a body, then GET /vms on the same connection: $codes (want 404 200 0)"
ctl links >/dev/null || fail "the API stopped answering"
echo "ok: broker API: documented answers, JSON errors, xover ctl, alive after bad requests"

kill -TERM $broker; wait $broker
[ -e "$dir/broker.api.sock" ] && fail "broker.api.sock left behind after the broker exited"
echo "ok: the API socket goes with the broker"
