#!/bin/bash
# Two xover VMs on an OVS-DPDK bridge: OVS-DPDK (Debian package
# openvswitch-switch-dpdk) serves each VM's virtio-net as a vhost-user
# port (dpdkvhostuserclient: xover listens, OVS connects), and the bridge
# switches between them. nettest from one VM to the other, every frame
# checked. A private OVS (its own database and run directory under a
# scratch directory); OVS-DPDK runs DPDK in memory (--in-memory), which
# needs hugepages: the script reserves 600 2 MiB pages for the run if
# fewer are free, and gives them back. Needs root, KVM and a built tree.
#
#   scripts/ovs-dpdk.sh [BUILD_DIR]        COUNT (5000), GAP_NS (200000)
#
# An OVS bridge is a switch, not a lossless link: its vhost ports drop
# what a guest's RX ring cannot take, so the sender is paced and up to
# MAX_LOSS_PCT (5) may be lost; every frame that arrives must be intact
# and in order.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath "${1:-build}")
X=$B/xover
N=$B/guests/nettest.elf
count=${COUNT:-5000}
gap=${GAP_NS:-200000}
max_loss_pct=${MAX_LOSS_PCT:-5}
for tool in ovsdb-tool ovsdb-server ovs-vsctl; do
	command -v $tool >/dev/null || { echo "ovs-dpdk.sh: no $tool (apt install openvswitch-switch-dpdk)"; exit 2; }
done
# Debian installs the DPDK build beside the plain one (update-alternatives
# picks the plain one): use it directly.
vswitchd=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
[ -x $vswitchd ] || { echo "ovs-dpdk.sh: no $vswitchd (apt install openvswitch-switch-dpdk)"; exit 2; }
[ -w /dev/kvm ] || [ -n "${OVS_DPDK_NO_KVM_CHECK:-}" ] || { echo "ovs-dpdk.sh: needs /dev/kvm"; exit 2; }
tmp=$(mktemp -d /tmp/xover-ovs.XXXX)
export OVS_RUNDIR=$tmp OVS_LOGDIR=$tmp OVS_DBDIR=$tmp
db=$tmp/conf.db sock=$tmp/db.sock
pids=()
hugepages=/proc/sys/vm/nr_hugepages
old_hugepages=$(cat $hugepages)
cleanup() {
	echo "$old_hugepages" >$hugepages 2>/dev/null || true
	ovs-vsctl --db=unix:$sock --timeout=5 del-br xbr0 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	# The daemons detached: their pid files name them.
	for f in $tmp/vswitchd.pid $tmp/ovsdb.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
	sleep 1
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
# On a failure, the daemons' logs say why.
trap 'tail -n 20 $tmp/vswitchd.log 2>/dev/null' ERR
vsctl() { ovs-vsctl --db=unix:$sock --timeout=20 "$@"; }

ovsdb-tool create "$db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$db" --remote=punix:$sock --pidfile=$tmp/ovsdb.pid --detach --log-file=$tmp/ovsdb.log
vsctl --no-wait init
free=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo)
[ "${free:-0}" -ge 600 ] || echo $((old_hugepages + 600)) >$hugepages
vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:dpdk-extra="--no-pci" \
	other_config:dpdk-socket-mem=1024
$vswitchd unix:$sock --pidfile=$tmp/vswitchd.pid --detach --log-file=$tmp/vswitchd.log
vsctl add-br xbr0 -- set bridge xbr0 datapath_type=netdev
for i in 1 2; do
	vsctl add-port xbr0 vu$i -- set Interface vu$i type=dpdkvhostuserclient options:vhost-server-path=$tmp/vu$i.sock
done

tsc=$(awk -F': ' '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
"$X" run --name ovs-rx --kernel "$N" --nic "virtio-net,mac=52:54:00:7f:00:02,backend=vhost-user:$tmp/vu2.sock,server" \
	--cmdline "role=rx count=$count tsc_khz=$tsc" >"$tmp/rx.out" 2>&1 &
pids+=($!)
sleep 2
"$X" run --name ovs-tx --kernel "$N" --nic "virtio-net,mac=52:54:00:7f:00:01,backend=vhost-user:$tmp/vu1.sock,server" \
	--cmdline "role=tx count=$count size=256 gap_ns=$gap dst=52:54:00:7f:00:02 tsc_khz=$tsc" >"$tmp/tx.out" 2>&1
wait "${pids[0]}" || true
grep -a RESULT "$tmp/tx.out" "$tmp/rx.out"
lost=$(grep -ao 'RESULT role=rx .*' "$tmp/rx.out" | sed -n 's/.* lost=\([0-9]*\).*/\1/p')
grep -aq "RESULT role=rx .*errors=0 " "$tmp/rx.out" && [ -n "$lost" ] && [ $((lost * 100)) -le $((count * max_loss_pct)) ] ||
	{ echo "ovs-dpdk.sh: FAIL"; exit 1; }
echo "ovs-dpdk.sh: $count frames through OVS-DPDK, $lost lost, none damaged or out of order"
