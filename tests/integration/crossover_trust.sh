#!/bin/bash
# labels: integration crossover security kvm
# Who may link, and who may talk to whom (issue 11; link_planner.hpp,
# broker.hpp):
# - a rogue registrant that names a VM which did not name it gets no link
#   (so none of the victim's fds), and `xover status` shows it waiting for
#   the victim's consent;
# - VMs of one `xover up` file link when only one names the other (the file
#   is the operator's consent);
# - a broker directory other users could use is refused before the VM
#   sends anything, and so is a broker that runs as another user;
# - a client of another uid is refused by the broker (SO_PEERCRED), even
#   when the operator opened the socket to everyone;
# - a flood of idle connections leaves the broker responsive, its CPU low.
source "$(dirname "$0")/crossover_common.inc"
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (it runs parts as nobody)"; exit 1; }

# --- the rogue registrant
V=52:54:00:c9:00:01; M=52:54:00:c9:00:02
vm victim e1000 $V b "role=rx count=1 start_timeout_ms=4000 timeout_ms=4000"
for i in $(seq 100); do "$X" status --broker "$BROKER" | grep -q "^  victim " && break; sleep 0.1; done
vm mallory e1000 $M victim "role=tx count=50 size=64 dst=$V timeout_ms=3000 hold_ms=1500"
for i in $(seq 100); do "$X" status --broker "$BROKER" | grep -q "^  mallory " && break; sleep 0.1; done
status=$("$X" status --broker "$BROKER")
grep -q "mallory .*(victim: waiting for its consent)" <<<"$status" ||
	fail "status does not show mallory waiting for the victim's consent: $status"
wait_vm mallory >/dev/null
grep -q "link .* up" "$tmp/broker.log" && fail "a one-sided request linked: $(grep 'link .* up' "$tmp/broker.log")"
[ "$(stat mallory xover_links_made)" = 0 ] || fail "mallory got a link"
wait_vm victim >/dev/null
[ "$(stat victim xover_links_made)" = 0 ] && [ "$(stat mallory xover_tx_frames)" = 0 ] ||
	fail "the victim was linked, or frames crossed without a link"
echo "ok: a VM naming one that did not name it gets no link; status: $(grep -o 'mallory .*consent)' <<<"$status" | tr -s ' ')"

# --- one xover up file: one side naming the other is consent enough
# (Its broker in a directory of its own: the test's broker has broker.api.sock here.)
mkdir -m 700 "$tmp/up"
# (left names right; right names only third, and says nothing of left)
cat >"$tmp/one-sided.toml" <<TOML
broker = "$tmp/up/up.sock"
[[vm]]
name = "left"
kernel = "$G"
cmdline = "role=rx count=200 timeout_ms=8000 start_timeout_ms=30000"
mem = "32M"
[[vm.nic]]
model = "e1000"
mac = "52:54:00:c9:01:01"
crossover = ["right"]

[[vm]]
name = "right"
kernel = "$G"
cmdline = "role=tx count=200 size=64 dst=52:54:00:c9:01:01 timeout_ms=8000"
mem = "32M"
[[vm.nic]]
model = "e1000"
mac = "52:54:00:c9:01:02"
crossover = ["third"]

[[vm]]
name = "third"
kernel = "$B/guests/hello.elf"
mem = "32M"
[[vm.nic]]
model = "e1000"
mac = "52:54:00:c9:01:03"
crossover = ["right"]
TOML
timeout 120 "$X" up "$tmp/one-sided.toml" --stats >"$tmp/up.out" 2>&1 || { cat "$tmp/up.out"; fail "xover up: one-sided pair failed"; }
grep -q "^\[left\] RESULT role=rx frames=200 .*errors=0 lost=0" "$tmp/up.out" || fail "no lossless rx: $(grep RESULT "$tmp/up.out")"
grep -q "^\[left\] .*xover_links_made=1" "$tmp/up.out" || fail "the VMs of one file did not link: $(grep '^\[left\] .*xover_links' "$tmp/up.out")"
echo "ok: VMs of one xover up file link when one names the other"

# --- broker directories and brokers of other users
run_refused() {  # NAME BROKER_PATH WHAT: a crossover VM that must refuse, saying WHAT
	( timeout 30 "$X" run --name "$1" --broker "$2" --kernel "$G" --cmdline "role=rx count=1 timeout_ms=1000" \
		--nic e1000,mac=52:54:00:c9:02:01,crossover=x >"$tmp/$1.out" 2>&1; echo $? >"$tmp/$1.rc" )
	[ "$(cat "$tmp/$1.rc")" != 0 ] || fail "$1: a VM used $2"
	grep -q "$3" "$tmp/$1.out" || fail "$1: no clear refusal ($3): $(cat "$tmp/$1.out")"
	echo "ok: $1 refused: $(grep -o "broker .*" "$tmp/$1.out" | head -1)"
}
mkdir -m 777 "$tmp/open"
run_refused open-dir "$tmp/open/b.sock" "open to other users"
[ ! -e "$tmp/open/b.sock" ] || fail "a broker was started in a directory open to everyone"
mkdir -m 700 "$tmp/theirs"; chown nobody "$tmp/theirs"
run_refused their-dir "$tmp/theirs/b.sock" "belongs to uid 65534"
# A broker of another user, in a directory it owns, reachable by root;
# nobody runs a copy of the binary (the build tree may be private).
chmod 711 "$tmp"
mkdir -m 755 "$tmp/bin"; install -m 755 "$X" "$tmp/bin/xover"
mkdir -m 700 "$tmp/nb"; chown nobody:nogroup "$tmp/nb"
setpriv --reuid=65534 --regid=65534 --clear-groups "$tmp/bin/xover" broker --broker "$tmp/nb/b.sock" >"$tmp/nb.log" 2>&1 &
lib_pids+=($!)
for i in $(seq 100); do [ -S "$tmp/nb/b.sock" ] && break; sleep 0.1; done
[ -S "$tmp/nb/b.sock" ] || fail "nobody's broker did not start: $(cat "$tmp/nb.log")"
"$X" status --broker "$tmp/nb/b.sock" >"$tmp/nb-status.out" 2>&1 && fail "root trusted nobody's broker"
grep -q "runs as uid 65534" "$tmp/nb-status.out" || fail "no clear refusal of nobody's broker: $(cat "$tmp/nb-status.out")"
echo "ok: a broker of another user refused: $(grep -o 'the broker .*' "$tmp/nb-status.out")"

# --- a client of another uid, the socket opened to everyone by hand
chmod 711 "$(dirname "$BROKER")"; chmod 666 "$BROKER"
setpriv --reuid=65534 --regid=65534 --clear-groups "$tmp/bin/xover" status --broker "$BROKER" >"$tmp/nobody.out" 2>&1 &&
	fail "the broker answered a client of another uid: $(cat "$tmp/nobody.out")"
grep -q "refused a StatusRequest from uid 65534" "$tmp/broker.log" ||
	fail "the broker did not refuse uid 65534: $(tail -5 "$tmp/broker.log")"
echo "ok: a client of another uid refused: $(grep -o 'refused a StatusRequest from uid 65534' "$tmp/broker.log" | head -1)"
chmod 700 "$(dirname "$BROKER")"; chmod 600 "$BROKER"

# --- a connection flood
bpid=$(pgrep -f "xover broker --broker $BROKER" | head -1)
[ -n "$bpid" ] || fail "cannot find the broker's pid"
python3 - "$BROKER" "$tmp/flood.ready" <<'PY' &
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for _ in range(3000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
    except BlockingIOError:
        pass  # queued in the backlog
    except OSError:
        s.close()
        continue
    held.append(s)
open(sys.argv[2], "w").write(str(len(held)))
time.sleep(6)
PY
flood=$!
for i in $(seq 100); do [ -s "$tmp/flood.ready" ] && break; sleep 0.1; done
[ -s "$tmp/flood.ready" ] || fail "the flood client did not connect"
ticks() { awk '{ print $14 + $15 }' "/proc/$bpid/stat"; }
t0=$(ticks)
timeout 10 "$X" status --broker "$BROKER" >/dev/null || fail "the broker did not answer during a flood of $(cat "$tmp/flood.ready") connections"
sleep 2
t1=$(ticks)
[ $((t1 - t0)) -le 50 ] || fail "the broker burnt $((t1 - t0)) CPU ticks in 2 s under the flood"
echo "ok: $(cat "$tmp/flood.ready") idle connections: status answered, broker CPU $((t1 - t0)) ticks in 2 s"
kill "$flood" 2>/dev/null; wait "$flood" 2>/dev/null
echo PASS
