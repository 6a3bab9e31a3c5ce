#!/bin/bash
# labels: integration network kvm
# The host's own network stack through a tap device: in a private network
# namespace, xover creates tap xvtapN (backend=tap:xvtapN), the host side
# gets 10.99.N.1/24, the guest answers ARP and ping as 10.99.N.2 (nettest
# role=responder), and `ping -c 20` must lose nothing; for e1000 and
# virtio-net. Skips without root, network namespaces or /dev/net/tun.
. "$(dirname "$0")/lib.sh"
need_xover
need_netns xover-test
pings=${PINGS:-20}

# run MODEL
run() {
	local model=$1 tap=xvtap$n name=tap-$1 t0 out
	t0=$(now)
	start "$name" 120 ip netns exec "$ns" "$X" run --name "$name" --kernel "$NETTEST" \
		--cmdline "role=responder ip=10.99.$n.2 count=$pings timeout_ms=60000" \
		--nic "$model,mac=52:54:00:5b:00:01,backend=tap:$tap" --stats
	# The tap exists once xover has opened it; the guest then brings its NIC up.
	for _ in $(seq 100); do ip netns exec "$ns" ip link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
	ip netns exec "$ns" ip link show "$tap" >/dev/null 2>&1 || fail "$name: xover did not create $tap"
	ip netns exec "$ns" ip addr add "10.99.$n.1/24" dev "$tap"
	ip netns exec "$ns" ip link set "$tap" up
	wait_output "$name" "link=up" 60 || fail "$name: guest NIC never came up"
	out=$(ip netns exec "$ns" ping -c "$pings" -i 0.2 -W 2 "10.99.$n.2" 2>&1)
	echo "$out" | tail -2
	echo "$out" | grep -q " 0% packet loss" || fail "$name: ping lost packets: $(echo "$out" | tail -2)"
	expect "$name" icmp="$pings"
	echo "ok $model: $pings pings over a tap, no loss, $(elapsed "$t0") s"
}

run e1000
run virtio-net
echo PASS
