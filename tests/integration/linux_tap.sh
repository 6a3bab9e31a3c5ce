#!/bin/bash
# labels: integration linux slow kvm
# The Linux guest on the host's own network stack: in a private network
# namespace xover creates tap xvltN (backend=tap:xvltN), the host side gets
# 10.98.N.1/24, the guest (Linux e1000 driver) takes 10.98.N.2 and pings the
# host (its init waits for the host to answer), and the host pings the
# guest 10 times with `ping`: 0% loss. Skips without root, network
# namespaces or /dev/net/tun.
source "$(dirname "$0")/linux_common.inc"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, tap)"; exit 77; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
command -v ip >/dev/null && command -v ping >/dev/null || { echo "SKIP: needs ip and ping"; exit 77; }

n=$((RANDOM % 200 + 20))
ns=xover-linux-$$-$n
tap=xvlt$n
ip netns add "$ns" 2>/dev/null || { echo "SKIP: cannot create a network namespace"; exit 77; }
at_exit "ip netns delete $ns"
ip netns exec "$ns" ip link set lo up

t0=$(now)
# xover.wait: the guest stays up while the host pings it.
linux_vm tap vmlinux "e1000,mac=52:54:00:6c:b0:01,backend=tap:$tap" \
	"xover.ip=10.98.$n.2/24 xover.peer=10.98.$n.1 xover.ping=3 xover.wait=40" ip netns exec "$ns"
for _ in $(seq 100); do ip netns exec "$ns" ip link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$ns" ip link show "$tap" >/dev/null 2>&1 || fail "xover did not create $tap"
ip netns exec "$ns" ip addr add "10.98.$n.1/24" dev "$tap"
ip netns exec "$ns" ip link set "$tap" up
wait_marker tap XOVER-PEER-REACHABLE 300 || fail "the guest never reached the host"
out=$(ip netns exec "$ns" ping -c 10 -i 0.5 -W 3 "10.98.$n.2" 2>&1)
echo "host -> guest: $(echo "$out" | tail -2 | tr '\n' ' ')"
echo "$out" | grep -q " 0% packet loss" || fail "host ping lost packets: $out"
check_done tap
check_ping tap
echo "ok: Linux guest on tap:$tap reachable from the host, $(elapsed "$t0") s"
echo PASS
