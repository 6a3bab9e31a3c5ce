#!/bin/bash
# Two xover VMs on an OVS-DPDK bridge: OVS-DPDK (Debian package
# openvswitch-switch-dpdk) serves each VM's virtio-net as a vhost-user
# port (dpdkvhostuserclient: xover listens, OVS connects), and the bridge
# switches between them. nettest from one VM to the other, every frame
# checked. A private OVS (its own database and run directory under a
# scratch directory), no hugepages needed (--no-huge through
# other_config:dpdk-extra). Needs root, KVM and a built tree.
#
#   scripts/ovs-dpdk.sh [BUILD_DIR]        COUNT (20000)
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath "${1:-build}")
X=$B/xover
N=$B/guests/nettest.elf
count=${COUNT:-20000}
for tool in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl; do
	command -v $tool >/dev/null || { echo "ovs-dpdk.sh: no $tool (apt install openvswitch-switch-dpdk)"; exit 2; }
done
[ -w /dev/kvm ] || { echo "ovs-dpdk.sh: needs /dev/kvm"; exit 2; }
tmp=$(mktemp -d /tmp/xover-ovs.XXXX)
export OVS_RUNDIR=$tmp OVS_LOGDIR=$tmp OVS_DBDIR=$tmp
db=$tmp/conf.db sock=$tmp/db.sock
pids=()
cleanup() {
	ovs-vsctl --db=unix:$sock --timeout=5 del-br xbr0 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
vsctl() { ovs-vsctl --db=unix:$sock --timeout=20 "$@"; }

ovsdb-tool create "$db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$db" --remote=punix:$sock --pidfile=$tmp/ovsdb.pid --detach --log-file=$tmp/ovsdb.log
vsctl --no-wait init
vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
	other_config:dpdk-extra="--no-huge --no-pci -m 1024 --file-prefix xover-ovs" \
	other_config:dpdk-socket-mem=1024
ovs-vswitchd unix:$sock --pidfile=$tmp/vswitchd.pid --detach --log-file=$tmp/vswitchd.log
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
	--cmdline "role=tx count=$count size=256 gap_ns=5000 dst=52:54:00:7f:00:02 tsc_khz=$tsc" >"$tmp/tx.out" 2>&1
wait "${pids[0]}" || true
grep -a RESULT "$tmp/tx.out" "$tmp/rx.out"
grep -aq "RESULT role=rx frames=$count .*errors=0 lost=0" "$tmp/rx.out" || { echo "ovs-dpdk.sh: FAIL"; exit 1; }
echo "ovs-dpdk.sh: $count frames through OVS-DPDK, none lost"
