#!/bin/bash
# labels: integration install kvm
# The README's demo pair, run by `xover up` from a `cmake --install` tree
# with nothing from the build tree (install_package checks that tree and
# that the .deb installs the same one).
source "$(dirname "$0")/lib.sh"
need_xover
prefix=$tmp/prefix
cmake --install "$B" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; }
mkdir -p "$tmp/run"
(cd / && XDG_RUNTIME_DIR=$tmp/run timeout $((180 * EMULATION_SCALE)) "$prefix/bin/xover" up "$prefix/share/xover/configs/crossover-pair.toml") \
	>"$tmp/demo.out" 2>&1 || fail "xover up exited $?: $(tail -5 "$tmp/demo.out")"
grep -q "RESULT role=txrx tx_frames=100000 frames=100000 .*errors=0 lost=0" "$tmp/demo.out" ||
	fail "$(grep -a RESULT "$tmp/demo.out")"
grep -q "== xover up: summary ==" "$tmp/demo.out" || fail "no summary"
echo "ok: the demo pair ran from the installed tree"
