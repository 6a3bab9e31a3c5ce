#!/usr/bin/env bash
# scripts/chaos.sh [MINUTES] — a chaos soak of the crossover (issue 12).
#
# Runs tiny-kernel VMs (nettest) on one broker:
#   pair e1000 -> e1000, copy mode         (cs1 -> cr1)
#   pair virtio-net -> virtio-net, window  (cs2 -> cr2, nettest window=1:
#     zero copy from a common start; a restarted sender's link copies into
#     the receiver's window buffers, its TX half private)
#   a broadcast group: e1000 cg0 -> cg1 (e1000) + cg2 (virtio-net)
# and for MINUTES (default 1) injects a fault every 1-3 s, at random:
#   kill-sender   SIGKILL a sender, start it again (same name and MAC)
#   stop-vm       SIGSTOP a VM (sender or pair receiver) 0.2-1.5 s, SIGCONT
#   kill-broker   SIGKILL the broker, start a new one (VMs register again)
#   stop-broker   SIGSTOP the broker 0.5-2 s, SIGCONT
# Invariants checked:
#   - no VM hangs or crashes: every receiver runs to its end and exits 0,
#     every VM that was not killed is alive after every fault;
#   - every received frame is intact and in order (nettest checks sequence
#     and checksum): errors=0 lost=0 at every receiver. A killed sender's
#     frames in flight die with it; its restarted run begins at sequence 0
#     (counted as a restart, not an error);
#   - links re-form: a restarted sender is linked again within 20 s.
# Prints the faults injected and survived and the frames checked; exits 1
# on the first broken invariant. CHAOS_SEED=N repeats a run's faults;
# CHAOS_FAULTS="kill-sender stop-vm" limits the kinds.
set -uo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-1}
B=${XOVER_BUILD:-build}
X="$B/xover"
G="$B/guests/nettest.elf"
[ -x "$X" ] && [ -f "$G" ] || { echo "chaos: build first (scripts/build.sh): $X, $G"; exit 1; }
SEED=${CHAOS_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$SEED
SOAK_S=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
tmp=$(mktemp -d /tmp/xover-chaos.XXXX)
BROKER="$tmp/b.sock"
declare -A pid mac peers model cmd nicx
broker_pid=
cleanup() {
	for p in "${pid[@]}" $broker_pid; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "chaos: logs kept in $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "chaos: FAIL (seed $SEED): $*"
	for f in "$tmp"/*.out "$tmp"/broker*.log; do [ -f "$f" ] && { echo "--- $f"; grep -v '^stats: .*bus=' "$f" | tail -15; }; done
	exit 1
}

start_broker() {
	"$X" broker --broker "$BROKER" >>"$tmp/broker.log" 2>&1 &
	broker_pid=$!
	local i
	for i in $(seq 100); do "$X" status --broker "$BROKER" >/dev/null 2>&1 && return; sleep 0.1; done
	fail "the broker did not start"
}
# start NAME: (re)starts VM NAME from its recorded description.
start() {
	local n=$1 i
	for i in 1 2 3 4 5; do
		"$X" run --name "$n" --broker "$BROKER" --kernel "$G" --cmdline "${cmd[$n]}" \
			--nic "${model[$n]},mac=${mac[$n]},crossover=${peers[$n]}${nicx[$n]}" --stats >>"$tmp/$n.out" 2>&1 &
		pid[$n]=$!
		sleep 0.3
		# A restart can meet the broker before it saw the old run's
		# connection close ("already registered"): try again.
		kill -0 "${pid[$n]}" 2>/dev/null && return
		wait "${pid[$n]}" 2>/dev/null
	done
	fail "$n could not be started again"
}
vm() {  # NAME MODEL MAC PEERS CMDLINE [NIC OPTIONS]
	model[$1]=$2 mac[$1]=$3 peers[$1]=$4 cmd[$1]=$5 nicx[$1]=${6:+,$6}
	start "$1"
}
# linked NAME: whether the broker shows a link of VM NAME (its status
# table: ID, A as VM#NIC, B as VM#NIC, ...).
linked() {
	"$X" status --broker "$BROKER" 2>/dev/null |
		awk -v n="$1#" '$1 ~ /^[0-9]+$/ && (index($2, n) == 1 || index($3, n) == 1) { found = 1 } END { exit !found }'
}

RUN_MS=$(( (SOAK_S + 15) * 1000 ))
RX="role=rx run_ms=$RUN_MS restarts=1 start_timeout_ms=$RUN_MS timeout_ms=$RUN_MS"
TX="role=tx count=4000000000 gap_ns=50000 timeout_ms=$RUN_MS"
start_broker
vm cr1 e1000 52:54:00:ca:00:01 cs1 "$RX"
vm cr2 virtio-net 52:54:00:ca:00:02 cs2 "$RX window=1" mode=window
vm cg1 e1000 52:54:00:ca:00:11 cg0 "$RX"
vm cg2 virtio-net 52:54:00:ca:00:12 cg0 "$RX"
sleep 1
vm cs1 e1000 52:54:00:ca:01:01 cr1 "$TX size=64 dst=52:54:00:ca:00:01"
vm cs2 virtio-net 52:54:00:ca:01:02 cr2 "$TX size=1514 dst=52:54:00:ca:00:02 window=1" mode=window
vm cg0 e1000 52:54:00:ca:01:10 cg1+cg2 "$TX size=128 dst=ff:ff:ff:ff:ff:ff"
senders=(cs1 cs2 cg0)
stoppable=(cs1 cs2 cg0 cr1 cr2)  # not the group's receivers: a group frame a stopped peer misses is lost, as on a wire
receivers=(cr1 cr2 cg1 cg2)

read -ra kinds <<<"${CHAOS_FAULTS:-kill-sender stop-vm kill-broker stop-broker}"
declare -A injected
for k in kill-sender stop-vm kill-broker stop-broker; do injected[$k]=0; done
survived=0
end=$(( $(date +%s) + SOAK_S ))
echo "chaos: seed $SEED, ${MINUTES} min, VMs: ${!pid[*]}"
start_s=$(date +%s) next_report=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
	if [ "$(date +%s)" -ge "$next_report" ]; then  # a line a minute: a long soak is seen to run
		echo "chaos: $(( ($(date +%s) - start_s) / 60 )) min: $survived faults survived"
		next_report=$(( next_report + 60 ))
	fi
	sleep "$(( RANDOM % 3 + 1 ))"
	kind=${kinds[RANDOM % ${#kinds[@]}]}
	case $kind in
	kill-sender)
		n=${senders[RANDOM % ${#senders[@]}]}
		kill -9 "${pid[$n]}"; wait "${pid[$n]}" 2>/dev/null
		start "$n"
		for i in $(seq 200); do linked "$n" && break; sleep 0.1; done
		linked "$n" || fail "$n, restarted, was not linked again within 20 s"
		;;
	stop-vm)
		n=${stoppable[RANDOM % ${#stoppable[@]}]}
		kill -STOP "${pid[$n]}"; sleep "0.$(( RANDOM % 9 + 2 ))$(( RANDOM % 10 ))"; kill -CONT "${pid[$n]}"
		;;
	kill-broker)
		kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
		sleep 0.$(( RANDOM % 9 + 1 ))
		start_broker
		;;
	stop-broker)
		kill -STOP "$broker_pid"; sleep "$(( RANDOM % 2 )).$(( RANDOM % 10 ))5"; kill -CONT "$broker_pid"
		;;
	esac
	injected[$kind]=$(( ${injected[$kind]} + 1 ))
	for n in "${!pid[@]}"; do
		kill -0 "${pid[$n]}" 2>/dev/null || fail "$n died after fault $kind (${n:-})"
	done
	survived=$(( survived + 1 ))
done

# The receivers end on their own (run_ms); then the senders are stopped.
for n in "${receivers[@]}"; do
	wait "${pid[$n]}"; rc=$?
	[ "$rc" = 0 ] || fail "$n exited with status $rc: $(grep '^RESULT' "$tmp/$n.out")"
done
frames=0 restarts=0
for n in "${receivers[@]}"; do
	r=$(grep '^RESULT role=rx' "$tmp/$n.out" | tail -1)
	[[ $r =~ frames=([0-9]+).*errors=0\ lost=0.*restarts=([0-9]+) ]] || fail "$n: $r"
	[ "${BASH_REMATCH[1]}" -gt 0 ] || fail "$n received nothing"
	frames=$(( frames + BASH_REMATCH[1] )) restarts=$(( restarts + BASH_REMATCH[2] ))
	echo "chaos: $n frames=${BASH_REMATCH[1]} errors=0 lost=0 sender_restarts_seen=${BASH_REMATCH[2]}"
	grep -q "stats: vm name=$n" "$tmp/$n.out" || fail "$n did not exit cleanly"
done
total=0
for k in "${!injected[@]}"; do total=$(( total + injected[$k] )); done
echo "chaos: PASS seed=$SEED minutes=$MINUTES faults=$total survived=$survived" \
	"(kill-sender ${injected[kill-sender]}, stop-vm ${injected[stop-vm]}, kill-broker ${injected[kill-broker]}," \
	"stop-broker ${injected[stop-broker]}) frames_checked=$frames sender_restarts_seen=$restarts"
