#!/usr/bin/env bash
# A KVM host for a machine that has no /dev/kvm (a VM whose hypervisor
# offers no nested virtualization, as CI's machines are): Debian's own 6.1
# kernel booted under QEMU's TCG on an emulated CPU with AMD SVM, where
# kvm-amd loads and gives /dev/kvm. The machine's / is its root, over
# virtio-9p, so the same build tree, caches and tools run there unchanged.
# Guests under it are slow (everything is emulated), never wrong: it is for
# tests that need KVM, not for figures.
#
#   scripts/kvm-host.sh prepare        fetch and build what it boots (cached)
#   scripts/kvm-host.sh run CMD [ARG]  run CMD there, in this directory, with
#                                      this environment; exit with its status
#   scripts/kvm-host.sh ctest DIR [ARG]  ctest --test-dir DIR ARG... there;
#                                      a host that dies (its kernel panicked:
#                                      emulation's fault, never a test's) is
#                                      booted again for the tests it had not
#                                      finished; a test that was running at
#                                      three such deaths fails; a test that
#                                      fails runs again in a fresh host, one
#                                      test at a time, and fails at three
#                                      failures (every run's output shows)
#
# Cache: ${XOVER_CACHE:-$HOME/.cache/xover}/kvm-host. XOVER_KVM_HOST_MEM
# (default 8G) and XOVER_KVM_HOST_CPUS (default: this machine's) size it;
# XOVER_KVM_HOST_TCG_THREAD=single emulates its CPUs on one thread (half
# the speed; for telling MTTCG's faults from xover's).
# XOVER_KVM_HOST_9P_CACHE (default loose): the host keeps what it read
# over 9p in its page cache, so a tool run again (`xover status`, curl,
# python3, in tests' polling loops) is not read over 9p again; tests
# that poll ran up to 3x faster. `mmap` reads every open and exec over 9p
# again. (Two whole runs with loose, long ago, lost the host as
# crossover_broker_restart started; mmap runs lost it the same way since:
# emulation's deaths, not the cache's.)
# XOVER_KVM_HOST_HEARTBEAT (default 180): seconds without the host's
# heartbeat (touched every 10 s) before it counts as frozen;
# XOVER_KVM_HOST_SILENCE (default 660): seconds without a console line.
# Its CPU and kernel arguments are chosen for speed (cpu_model and
# kernel_args below); XOVER_KVM_HOST_APPEND: more kernel arguments.
# Inside, /tmp and /run are fresh tmpfs (Unix sockets do not work on 9p);
# a working directory under /tmp is bound back in.
#
# Exit status: CMD's; 125 when the host did not come up or CMD's status
# never came back (the console output above says why).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${XOVER_CACHE:-$HOME/.cache/xover}/kvm-host
log() { echo "kvm-host: $*" >&2; }
die() { log "$*"; exit 125; }

# The modules it loads, with what they need (modules.dep): 9p for its
# root, kvm-amd for /dev/kvm, and what the network tests build.
boot_modules=(virtio_pci 9pnet_virtio 9p)
host_modules=(kvm-amd tun veth bridge vxlan)

# What it emulates, for speed under TCG (it checks behaviour, never
# security or figures). Measured inside it, per run of each (two runs of
# each configuration): tiny guests booted by `xover run` 1.8 -> 1.05 s,
# 200 MB through tmpfs 3.3 -> 1.4 s, python3 -c pass 7.0 -> 5.9 s:
# - no ERMS/FSRM: with them the kernel (and glibc, for big blocks) copies
#   and clears memory with `rep movsb`, which TCG runs one byte per
#   iteration; without, `rep movsq` moves eight;
# - no LA57: 5-level tables make each page walk (the host's, and nested
#   paging's for every guest) one level longer;
# - tsc=reliable: its check finds the emulated CPUs' TSCs out of step and
#   falls back to the HPET, so every clock read (each xover thread's
#   deadlines, KVM's timers) is an MMIO exit into QEMU's device model.
#   QEMU derives every CPU's TSC from one host clock;
# - mitigations=off: retpolines and return-buffer stuffing on every
#   indirect call and VM exit, on a CPU that does not speculate.
cpu_model="max,-erms,-fsrm,-la57"
kernel_args="mitigations=off tsc=reliable"

prepare() {
	local stamp=$cache/stamp want
	want="1 $(sha256sum "$0" | cut -c1-16)"
	[[ -s $stamp && $(cat "$stamp") == "$want" ]] && return 0
	command -v busybox >/dev/null && command -v depmod >/dev/null && command -v cpio >/dev/null ||
		die "needs busybox, kmod (depmod) and cpio (scripts/install-deps.sh installs them)"
	! ldd "$(command -v busybox)" >/dev/null 2>&1 || die "busybox is not static (install busybox-static)"
	rm -rf "$cache" && mkdir -p "$cache/deb"
	local pkg
	pkg=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-amd64-unsigned$' | awk '{print $1}' | sort -V | tail -n1)
	[[ -n $pkg ]] || die "no linux-image-*-amd64-unsigned package in apt-cache (apt-get update?)"
	log "fetching $pkg"
	(cd "$cache/deb" && apt-get download "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
	dpkg-deb -x "$cache"/deb/*.deb "$cache/deb/x"
	local version
	version=$(ls "$cache/deb/x/lib/modules")
	depmod -b "$cache/deb/x" "$version"
	# Only the modules it loads (and theirs) are kept: the rest is ~400 MB.
	local mods=$cache/deb/x/lib/modules/$version m
	mkdir -p "$cache/lib/modules/$version" "$cache/initramfs"/{bin,dev,proc,sys,root,modules}
	resolve() { # module names -> their files, each after what it needs
		local name line dep
		for name in "$@"; do
			line=$(grep -E "/${name//-/[-_]}\.ko:" "$mods/modules.dep") || die "no module $name in $pkg"
			for dep in ${line#*:}; do resolve "$(basename "$dep" .ko)"; done
			echo "${line%%:*}"
		done
	}
	resolve "${boot_modules[@]}" | awk '!seen[$0]++' >"$cache/initramfs/modules/order"
	while read -r m; do cp "$mods/$m" "$cache/initramfs/modules/"; done <"$cache/initramfs/modules/order"
	for m in $(resolve "${host_modules[@]}" | awk '!seen[$0]++'); do
		mkdir -p "$cache/lib/modules/$version/$(dirname "$m")"
		cp "$mods/$m" "$cache/lib/modules/$version/$m"
	done
	cp "$mods"/modules.{order,builtin,builtin.modinfo} "$cache/lib/modules/$version/"
	depmod -b "$cache" "$version"
	cp "$cache"/deb/x/boot/vmlinuz-* "$cache/vmlinuz"
	rm -rf "$cache/deb"
	cp "$(command -v busybox)" "$cache/initramfs/bin/busybox"
	# Stage 1 (the initramfs): mount the machine's / over 9p, go on there.
	cat >"$cache/initramfs/init" <<-'EOF'
		#!/bin/busybox sh
		/bin/busybox --install -s /bin
		mount -t proc proc /proc
		mount -t devtmpfs dev /dev
		for m in $(cat /modules/order); do insmod "/modules/${m##*/}"; done
		cache=$(sed -n 's/.*kvm_host_9p_cache=\([a-z]*\).*/\1/p' /proc/cmdline)  # run() always passes it
		mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,cache=$cache" root /root ||
			{ echo "kvm-host: no 9p root"; poweroff -f; }
		stage2=$(sed -n 's/.*kvm_host_stage2=\([^ ]*\).*/\1/p' /proc/cmdline)
		umount /proc /dev
		exec switch_root /root /bin/bash "$stage2"
	EOF
	chmod +x "$cache/initramfs/init"
	(cd "$cache/initramfs" && find . | cpio -o -H newc 2>/dev/null) >"$cache/initramfs.cpio"
	rm -rf "$cache/initramfs"
	echo "$want" >"$stamp"
}

run() {
	[[ $# -ge 1 ]] || { echo "usage: kvm-host.sh run CMD [ARG...]" >&2; exit 1; }
	prepare
	local dir
	dir=$(mktemp -d "$cache/run.XXXXXX")
	trap "rm -rf '$dir'" EXIT
	printf '%q ' "$@" >"$dir/cmd"
	# python3 there is the system's (scripts/install-deps.sh installs it,
	# with the modules the tests import), first in PATH: one earlier in
	# this PATH may be a version manager's shim (pyenv's is a bash script
	# that runs several more before the interpreter), and every process
	# start is emulated there: python3 -c pass took 6.1 s through pyenv's
	# shim, 3.0 s in pyenv's interpreter, 1.5 s in Debian's.
	mkdir "$dir/bin"
	[[ -x /usr/bin/python3 ]] && ln -s /usr/bin/python3 "$dir/bin/python3"
	export -p >"$dir/env"
	pwd >"$dir/cwd"
	# Stage 2, PID 1 on the 9p root: the machine's view, KVM loaded.
	cat >"$dir/stage2" <<-EOF
		set +e
		mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
		mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
		mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
		for m in ${host_modules[*]}; do modprobe -d "$cache" "\$m" || echo "kvm-host: modprobe \$m failed"; done
		cwd=\$(cat "$dir/cwd")
		mount -t tmpfs tmpfs /run && mkdir -p /run/lock /run/kvm-host-was && mount --bind /tmp /run/kvm-host-was
		mount -t tmpfs -o size=50% tmpfs /tmp
		case "\$cwd/" in /tmp/*) mkdir -p "\$cwd" && mount --bind "/run/kvm-host-was\${cwd#/tmp}" "\$cwd" ;; esac
		ip link set lo up; hostname kvm-host
		. "$dir/env" 2>/dev/null
		export PATH="$dir/bin:\$PATH"
		export XOVER_TEST_TIME_SCALE=\${XOVER_TEST_TIME_SCALE:-4}  # guests here are emulated: tests wait longer
		# The heartbeat: a host whose kernel froze stops touching it, and
		# the watchdog outside stops it in minutes, not after the console's
		# silence limit (a test may print nothing for that long).
		(while sleep 10; do touch "$dir/alive"; done) &
		cd "\$cwd" && bash -c "\$(cat "$dir/cmd")" </dev/null
		echo \$? >"$dir/status"
		# One line, read whole before it runs, that never ends: the 9p root
		# goes away while the host powers off, and bash (PID 1) reading a
		# next line, or running sleep from it, would fail and exit (the
		# kernel's "Attempted to kill init" panic, printed after every run).
		sync; echo o >/proc/sysrq-trigger; while :; do read -rt 10 </dev/console; done
	EOF
	# QEMU 10 (bookworm-backports, as for the sound tests): 7.2's TCG SVM
	# corrupted the emulated host's kernel stack under load.
	local qemu
	qemu=$("$here/qemu-backports.sh") || die "no QEMU 10 from bookworm-backports (scripts/qemu-backports.sh)"
	log "booting ($(basename "$(ls "$cache"/lib/modules)"), KVM on an emulated AMD CPU); running: $*"
	local beat=$dir/beat silence=${XOVER_KVM_HOST_SILENCE:-660} alive=$dir/alive heartbeat=${XOVER_KVM_HOST_HEARTBEAT:-180}
	touch "$beat"
	QEMU_MODULE_DIR=$(dirname "$qemu")/../lib/x86_64-linux-gnu/qemu \
		"$qemu" -L "$(dirname "$qemu")/../share/qemu" -accel "tcg,thread=${XOVER_KVM_HOST_TCG_THREAD:-multi}" -cpu "$cpu_model" -smp "${XOVER_KVM_HOST_CPUS:-$(nproc)}" \
		-m "${XOVER_KVM_HOST_MEM:-8G}" -display none -serial stdio -monitor none -no-reboot \
		-kernel "$cache/vmlinuz" -initrd "$cache/initramfs.cpio" \
		-append "console=ttyS0 quiet panic=-1 $kernel_args kvm_host_stage2=$dir/stage2 kvm_host_9p_cache=${XOVER_KVM_HOST_9P_CACHE:-loose} ${XOVER_KVM_HOST_APPEND:-}" \
		-virtfs local,path=/,mount_tag=root,security_model=passthrough,multidevs=remap,id=root </dev/null \
		> >(while IFS= read -r line; do printf '%s\n' "${line%$'\r'}"; touch "$beat" 2>/dev/null; done) &
	local qemu_pid=$!
	# A host silent for longer than any test may take (600 s) is hung, not
	# busy: it is stopped, and counts as dead. (Each line touches the beat
	# as it comes: a filter in between must not buffer, or a healthy host
	# that prints little looks silent. Its last lines may come after the
	# run's directory is gone: that touch fails, quietly.)
	(while kill -0 "$qemu_pid" 2>/dev/null; do
		sleep 15
		if (($(date +%s) - $(stat -c %Y "$beat") > silence)); then
			log "no output for $silence s: the KVM host is hung; stopping it"
			kill "$qemu_pid" 2>/dev/null
		elif [[ -e $alive ]] && (($(date +%s) - $(stat -c %Y "$alive") > heartbeat)); then
			log "no heartbeat for $heartbeat s: the KVM host's kernel froze; stopping it"
			kill "$qemu_pid" 2>/dev/null
		fi
	done) &
	local watch_pid=$!
	wait "$qemu_pid" || true
	kill "$watch_pid" 2>/dev/null || true
	sleep 1  # the console's last lines
	local status=125
	if [[ -s $dir/status ]]; then status=$(cat "$dir/status"); else log "the KVM host stopped before its command did"; fi
	rm -rf "$dir"
	return "$status"
}

in_host_ctest() {
	local dir=${1:?usage: kvm-host.sh ctest DIR [CTEST ARG...]} id attempt out rc failed=0 jobs=2
	shift
	local -a todo finished running failing
	local -A deaths=() retried=()
	mapfile -t todo < <(ctest --test-dir "$dir" -N "$@" | sed -n 's/^ *Test *#\([0-9]*\):.*/\1/p')
	for attempt in 1 2 3 4 5 6 7 8; do
		[[ ${#todo[@]} -gt 0 ]] || break
		out=$(mktemp)
		rc=0
		run ctest --test-dir "$dir" --output-on-failure -j"$jobs" -I "1,0,0,$(IFS=,; echo "${todo[*]}")" > >(tee "$out") 2>&1 ||
			rc=$?
		wait $! 2>/dev/null || true  # tee has written everything
		"$here/ctest-skipped.sh" "$out" && failed=1
		grep -qE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*Not Run' "$out" && failed=1
		[[ $rc == 0 || $rc == 125 ]] || grep -q '\*\*\*' "$out" || failed=1  # ctest itself failed
		mapfile -t finished < <(sed -n 's|^ *[0-9]*/[0-9]* Test *#\([0-9]*\):.*|\1|p' "$out")
		mapfile -t failing < <(sed -n 's|^ *[0-9]*/[0-9]* Test *#\([0-9]*\):.*\*\*\*.*|\1|p' "$out")
		mapfile -t running < <(sed -n 's/^ *Start *\([0-9]*\):.*/\1/p' "$out" | grep -vxF -f <(printf '%s\n' "${finished[@]}" 0))
		rm -f "$out"
		local -a next=()
		for id in "${todo[@]}"; do
			if printf '%s\n' "${failing[@]}" | grep -qx "$id"; then
				# Again, in a host booted afresh and one test at a time:
				# emulated SVM has faulted guests that run clean on real KVM,
				# more often under load. Three failures are a failure.
				retried[$id]=$((${retried[$id]:-0} + 1))
				if [[ ${retried[$id]} -ge 3 ]]; then
					log "FAIL: test #$id failed three times"
					failed=1
				else
					next+=("$id")
				fi
				continue
			fi
			printf '%s\n' "${finished[@]}" | grep -qx "$id" && continue
			if [[ $rc == 125 ]] && printf '%s\n' "${running[@]}" | grep -qx "$id"; then
				deaths[$id]=$((${deaths[$id]:-0} + 1))
				# Emulation's deaths come in runs (ci32: two in a row
				# with crossover_policy running, and a third boot passed
				# it): like failures, three are the test's.
				if [[ ${deaths[$id]} -ge 3 ]]; then
					log "FAIL: test #$id was running each time the KVM host died"
					failed=1
					continue
				fi
			fi
			[[ $rc == 125 ]] && next+=("$id")
		done
		todo=("${next[@]}")
		if [[ $rc == 125 ]]; then
			[[ ${#todo[@]} -eq 0 ]] || log "the KVM host died; booting it again for ${#todo[@]} test(s) not finished or failed"
		elif [[ ${#todo[@]} -gt 0 ]]; then
			log "${#todo[@]} test(s) failed (the output above); booting the KVM host again to run them once more, one at a time"
		fi
		jobs=1  # only tests that failed left: one at a time
		for id in "${todo[@]}"; do [[ -n ${retried[$id]:-} ]] || jobs=2; done
	done
	[[ ${#todo[@]} -eq 0 ]] || { log "FAIL: ${#todo[@]} test(s) never finished"; failed=1; }
	[[ ${#retried[@]} -eq 0 ]] || log "tests that failed at least once (flaky under emulation): ${!retried[*]}"
	return $failed
}

case ${1:-} in
prepare) prepare ;;
run) shift; run "$@" ;;
ctest) shift; in_host_ctest "$@" ;;
*) echo "usage: kvm-host.sh prepare | run CMD [ARG...]" >&2; exit 1 ;;
esac
