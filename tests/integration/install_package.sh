#!/bin/bash
# labels: integration install slow
# The install and the Debian package, as a user gets them:
#   - `cmake --install` into a temporary prefix puts the binary, the guests,
#     the example configs (pointed at the installed guests), the man page,
#     the bash completion and the docs where packaging/CMakeLists.txt says;
#   - `cpack` builds a .deb whose dependencies are installed here, and dpkg
#     installs it into a private root (its own dpkg database);
#   - the .deb's tree is the installed tree: the same files, the same binary
#     (install_demo runs the README's demo pair from such a tree).
# No KVM: where guests need an emulated KVM host, cpack alone takes
# minutes there.
source "$(dirname "$0")/lib.sh"
[ -n "$B" ] && [ -x "$X" ] || skip "XOVER_BUILD not set or xover not built"
for tool in cmake cpack dpkg dpkg-deb dpkg-checkbuilddeps; do command -v $tool >/dev/null || fail "$tool is missing"; done

# 1. cmake --install
prefix=$tmp/prefix
cmake --install "$B" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; }
for f in bin/xover share/xover/guests/nettest.elf share/xover/guests/hello.elf \
	share/xover/configs/crossover-pair.toml share/man/man1/xover.1.gz \
	share/bash-completion/completions/xover share/doc/xover/README.md; do
	[ -f "$prefix/$f" ] || fail "cmake --install: no $f"
done
[ -x "$prefix/bin/xover" ] || fail "bin/xover is not executable"
"$prefix/bin/xover" --version | grep -q "^xover [0-9]" || fail "installed xover --version"
# Every installed config names kernels that exist in the installed tree.
for config in "$prefix"/share/xover/configs/*.toml; do
	grep -q "build/" "$config" && fail "$(basename "$config"): still names the build tree"
	for kernel in $(grep -o '^kernel = "[^"]*"' "$config" | cut -d'"' -f2); do
		[ -f "$(dirname "$config")/$kernel" ] || fail "$(basename "$config"): kernel $kernel is not installed"
	done
done
# The man page documents every subcommand the binary has.
man_page=$(gzip -dc "$prefix/share/man/man1/xover.1.gz")
grep -q '^\.TH XOVER "1"' <<<"$man_page" || fail "xover.1 has no .TH header"
for sub in run up broker status counters; do
	grep -q "^\.SS \"xover $sub\"" <<<"$man_page" || fail "xover.1 has no section for xover $sub"
done
# The completion completes subcommands and a subcommand's flags.
completions=$(PATH=$prefix/bin:$PATH bash -c '
	source "$1"
	complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _xover; echo "${COMPREPLY[*]}"; }
	complete_words xover r
	complete_words xover run --ker
	complete_words xover broker --seccomp ""' _ "$prefix/share/bash-completion/completions/xover")
[ "$completions" = "$(printf 'run\n--kernel\nkill log off')" ] || fail "bash completion gave: $completions"
echo "ok: cmake --install: binary, guests, configs, man page, completion, docs"

# 2. The .deb: built by cpack, its dependencies present here, installed by dpkg.
cpack --config "$B/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack"; }
deb=$(ls "$tmp"/pkg/xover_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "cpack made no .deb"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 liburing2 libseccomp2; do
	grep -q "$lib" <<<"$depends" || fail ".deb Depends lacks $lib: $depends"
done
# dpkg-checkbuilddeps resolves versions and virtual packages (Provides).
dpkg-checkbuilddeps -d "$depends" /dev/null >"$tmp/deps.log" 2>&1 ||
	fail ".deb's dependencies are not met here: $(cat "$tmp/deps.log")"
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" && touch "$root/var/lib/dpkg/status"
# --force-depends: the private root's dpkg database has none of the host's
# packages (checked against the host's just above).
dpkg --root="$root" --force-depends --force-not-root --force-script-chrootless -i "$deb" >"$tmp/dpkg.log" 2>&1 ||
	{ cat "$tmp/dpkg.log"; fail "dpkg -i"; }
dpkg --root="$root" -s xover | grep -q "Status: install ok installed" || fail "dpkg does not list xover as installed"
for f in usr/bin/xover usr/share/xover/guests/nettest.elf usr/share/xover/configs/crossover-pair.toml \
	usr/share/man/man1/xover.1.gz usr/share/bash-completion/completions/xover; do
	[ -f "$root/$f" ] || fail ".deb: no /$f"
done
"$root/usr/bin/xover" --version | grep -q "^xover [0-9]" || fail ".deb's xover --version"
echo "ok: .deb ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB) installs with dpkg"

# 3. The .deb holds what `cmake --install` installs, byte for byte (its
# binary stripped: CPACK_STRIP_FILES).
strip -o "$tmp/xover.stripped" "$prefix/bin/xover" && cp "$tmp/xover.stripped" "$prefix/bin/xover" || fail "strip"
diff <(cd "$prefix" && find . -type f | sort) <(cd "$root/usr" && find . -type f | sort) >"$tmp/trees.diff" ||
	fail ".deb and cmake --install differ in files: $(cat "$tmp/trees.diff")"
(cd "$prefix" && find . -type f) | while read -r f; do
	cmp -s "$prefix/$f" "$root/usr/$f" || fail ".deb's $f differs from the installed one"
done || exit 1
echo "ok: the .deb's tree is the installed tree"

