#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, ASan + UBSan): builds the targets in
# tests/fuzz with clang into build-fuzz, then runs each for SECONDS
# (default 60), one after the other. Each starts from its seeds
# (tests/fuzz/corpus/<target>/, all replayed first) and what earlier runs
# found (build-fuzz/corpus/<target>/). Prints per target the inputs run,
# libFuzzer's coverage (cov: edges, ft: features) and the crashes; exits
# non-zero if any target crashed, hung (-timeout), ran out of memory or
# broke a sanitizer rule. The failing input is kept in
# build-fuzz/crashes/<target>/; replay it with
#   build-fuzz/fuzz/<target> build-fuzz/crashes/<target>/<file>
#
#   scripts/fuzz.sh [SECONDS]   FUZZ_TARGETS="fuzz_virtqueue ..." to pick some
#   scripts/fuzz.sh --build-only
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz

CC=clang CXX=clang++ cmake -S . -B "$build" -DXOVER_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_all >/dev/null
[ "$seconds" = --build-only ] && exit 0

targets=${FUZZ_TARGETS:-$(ls tests/fuzz/corpus)}
failed=0
printf '%-22s %10s %7s %7s %8s\n' target runs cov ft crashes
for target in $targets; do
	found="$build/corpus/$target" crashes="$build/crashes/$target" log="$build/logs/$target.log"
	mkdir -p "$found" "$crashes" "$(dirname "$log")"
	rc=0
	"$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$found" "tests/fuzz/corpus/$target" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	coverage=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
	count=$(find "$crashes" -type f | wc -l)
	printf '%-22s %10s %7s %7s %8s\n' "$target" "${runs:-0}" "$(echo "$coverage" | awk '{print $2}')" \
		"$(echo "$coverage" | awk '{print $4}')" "$count"
	if [ "$rc" -ne 0 ] || [ "$count" -ne 0 ]; then
		failed=1
		echo "FAIL: $target (exit $rc); its log: $log"
		grep -m3 -E 'ERROR|SUMMARY|Assertion' "$log" || true
	fi
done
exit "$failed"
