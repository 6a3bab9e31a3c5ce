#!/bin/bash
# labels: integration cli
# Bad input is refused before the VM starts, with a non-zero status and a
# one-line message that names what was wrong.
set -u
B=${XOVER_BUILD:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0

# expect_error DESCRIPTION PATTERN -- ARGS...
expect_error() {
	local what=$1 pattern=$2
	shift 3
	timeout 60 "$B/xover" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then
		echo "FAIL: $what: exit status $rc"; failures=$((failures + 1)); return
	fi
	if ! grep -qiE -- "$pattern" "$tmp/err"; then
		echo "FAIL: $what: message does not match /$pattern/:"; cat "$tmp/err"; failures=$((failures + 1)); return
	fi
	echo "ok: $what: $(head -1 "$tmp/err")"
}

echo "just text" >"$tmp/not-an-elf"
: >"$tmp/empty"
expect_error "missing kernel file" "no-such-kernel" -- run --kernel "$tmp/no-such-kernel"
expect_error "kernel is not an ELF" "not-an-elf" -- run --kernel "$tmp/not-an-elf"
expect_error "empty kernel" "empty" -- run --kernel "$tmp/empty"
expect_error "no --kernel at all" "kernel" -- run
expect_error "malformed --mem" "mem" -- run --kernel "$tmp/not-an-elf" --mem 12Q
expect_error "zero CPUs" "cpus" -- run --kernel "$tmp/not-an-elf" --cpus 0
expect_error "bad console" "console" -- run --kernel "$tmp/not-an-elf" --console tty9
expect_error "bad CPU template" "template" -- run --kernel "$tmp/not-an-elf" --cpu-template fancy
expect_error "metrics file in a missing directory" "--metrics: .*no-such-dir.* cannot be created" -- \
	run --kernel "$tmp/not-an-elf" --metrics "$tmp/no-such-dir/vm.metrics"
expect_error "metrics file that is a directory" "--metrics: .* cannot be written: it is a directory" -- \
	run --kernel "$tmp/not-an-elf" --metrics "$tmp"
expect_error "metrics interval out of range" "--metrics-interval: 0 seconds" -- \
	run --kernel "$tmp/not-an-elf" --metrics "$tmp/vm.metrics" --metrics-interval 0
expect_error "bad --stats value" "--stats: \"most\"" -- run --kernel "$tmp/not-an-elf" --stats=most
expect_error "unknown flag" "--frobnicate" -- run --frobnicate
expect_error "no subcommand" "subcommand|required" --

"$B/xover" --version | grep -q "^xover [0-9]" || { echo "FAIL: --version"; failures=$((failures + 1)); }
"$B/xover" run --help | grep -q "Examples:" || { echo "FAIL: run --help has no examples"; failures=$((failures + 1)); }

[ $failures -eq 0 ] && echo PASS || { echo "$failures failure(s)"; exit 1; }
