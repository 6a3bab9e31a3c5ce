#!/usr/bin/env bash
# Prints the path of a QEMU with virtio-sound-pci and vhost-user-snd-pci
# (QEMU >= 8.2) for the sound tests; Debian 12's own QEMU 7.2 has neither.
# Takes bookworm-backports' qemu-system-x86, unpacked (dpkg -x) into
# ~/.cache/xover/qemu-backports, not installed: the system QEMU stays the
# one every other test uses. Cached; ~40 MB downloaded once. Its firmware
# is under the printed binary's ../share/qemu (QEMU finds it itself when
# started with -L, which tests/integration/lib.sh's qemu_snd adds).
set -euo pipefail
cache=${XOVER_CACHE:-$HOME/.cache/xover}/qemu-backports
bin=$cache/root/usr/bin/qemu-system-x86_64
if [ ! -x "$bin" ] || ! "$bin" -L "$cache/root/usr/share/qemu" -device vhost-user-snd-pci,help >/dev/null 2>&1; then
	rm -rf "$cache"
	mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/debs"
	echo "deb http://deb.debian.org/debian bookworm-backports main" >"$cache/sources.list"
	opts=(-o "Dir::Etc::SourceList=$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$cache/lists" -o "Dir::Cache::Archives=$cache/archives"
		-o Debug::NoLocking=1 -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
	apt-get "${opts[@]}" -qq update >&2
	(cd "$cache/debs" && apt-get "${opts[@]}" -qq download \
		qemu-system-x86/bookworm-backports qemu-system-common/bookworm-backports qemu-system-data/bookworm-backports >&2)
	for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$cache/root"; done
	"$bin" -L "$cache/root/usr/share/qemu" -device vhost-user-snd-pci,help >/dev/null 2>&1 ||
		{ echo "qemu-backports: $bin has no vhost-user-snd-pci" >&2; exit 1; }
fi
echo "$bin"
