#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, and runs every
# test (unit + integration) in a normal build and in an ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
# stage WHAT: a heading with the run's elapsed time so far, so a slow
# stage shows in the log (CI's whole run should stay under 45 minutes).
stage() { printf '== %s [%dm%02ds]\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }
scripts/install-deps.sh

stage "include rules between the layers"
scripts/check-layers.sh
stage "build (Release)"
BUILD_DIR=build scripts/build.sh
stage "Linux test guest (cached; built once, ~5-10 min cold)"
# Tests labelled `linux` boot it. A test that skips proves nothing, so a
# guest that cannot be built fails the run here, with the reason above.
scripts/linux-guest.sh >/dev/null || { echo "FAIL: the Linux test guest could not be built"; exit 1; }

stage "QEMU with virtio-snd (bookworm-backports, unpacked beside the system QEMU; cached)"
# The sound tests serve xover's sound card to it over vhost-user; Debian
# 12's QEMU 7.2 has no virtio-snd. A test that skips proves nothing: fail here.
QEMU_SND=$(scripts/qemu-backports.sh) || { echo "FAIL: no QEMU with vhost-user-snd-pci could be fetched"; exit 1; }
export QEMU_SND QEMU_SND_ARGS="-L $(dirname "$QEMU_SND")/../share/qemu"

# run_ctest DIR ARGS...: ctest, and a skipped test
# (exit 77: a missing prerequisite) counts as a failure.
run_ctest() {
	local dir=$1 log
	shift
	log=$(mktemp)
	ctest --test-dir "$dir" --output-on-failure -j2 "$@" ${CTEST_ARGS:-} 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	if scripts/ctest-skipped.sh "$log"; then rm -f "$log"; exit 1; fi
	rm -f "$log"
	return "$rc"
}

# The sanitizer builds, each just before its stage. (Compiled in the
# background, SCHED_IDLE, during the `kvm` stage, they made every test
# there take 1.3-1.5x as long on two cores: that stage's first pass took
# 2886 s, against 1799 s with nothing beside it.)
build_asan() { BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DXOVER_SANITIZE=ON; }
build_tsan() { BUILD_DIR=build-tsan BUILD_TYPE=Debug XOVER_TARGET=xover_tsan_tests scripts/build.sh -DXOVER_TSAN=ON; }

# Tests labelled kvm boot guests. A machine without /dev/kvm (a VM with no
# nested virtualization, as CI's are) runs them in a KVM host that QEMU
# emulates, with the machine's / as its root (scripts/kvm-host.sh): slow,
# but the same binary on a real KVM.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	stage "tests (Release)"
	run_ctest build
	kvm_tests=""
else
	stage "tests (Release) that need no KVM"
	run_ctest build -LE kvm
	stage "tests (Release) that need KVM, in an emulated KVM host (no /dev/kvm here)"
	scripts/kvm-host.sh prepare || { echo "FAIL: the emulated KVM host could not be prepared"; exit 1; }
	scripts/kvm-host.sh ctest build -L kvm
	kvm_tests="|kvm"  # the sanitizer builds below run them only with a real /dev/kvm
fi

stage "build (ASan+UBSan)"
build_asan
stage "tests (ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest build-asan -LE "slow|qemu|linux|chaos$kvm_tests"
stage "fuzzing: every target for a few seconds (libFuzzer, ASan+UBSan; the seed corpora replayed first)"
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
stage "ThreadSanitizer: the cross-process shared NIC state and the crossover data path"
build_tsan
TSAN_OPTIONS=halt_on_error=1 build-tsan/xover_tsan_tests "[shared-state],crossover:*"
stage "all tests passed"
