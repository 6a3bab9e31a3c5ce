#!/usr/bin/env bash
# Builds xover's minimal Linux test guest: a Linux 6.1 kernel (Debian's
# linux-source-6.1 + scripts/linux-guest/patches + the config fragment
# scripts/linux-guest/xover.config on top of tinyconfig) and a
# busybox-static initramfs whose /init is scripts/linux-guest/init, and a
# second one with ALSA's aplay/arecord/amixer for the sound tests.
#
#   scripts/linux-guest.sh [CACHE_DIR]
#       default CACHE_DIR: ${XOVER_CACHE:-$HOME/.cache/xover}/linux-guest
#
# Results in CACHE_DIR (stdout prints CACHE_DIR, logs go to stderr):
#   vmlinux             ELF with a PVH entry note (boot it directly)
#   bzImage             the same kernel behind the LZ4 decompressor
#   initramfs.cpio      busybox + /init, uncompressed: boot this one
#   initramfs.cpio.gz   the same, gzip (much slower to unpack in the guest)
#   initramfs-sound.cpio  initramfs.cpio + aplay (arecord), amixer, their
#                       shared libraries and loader, ALSA's alsa.conf and
#                       /sound/tone440.wav (for xover.sound=play|record)
#   System.map, config  for debugging a guest (RIP -> symbol) and review
#   stamp               hash of every input; equal hash = nothing to do
#   build.log           output of the last kernel build
#   src/, build/        unpacked+patched source, out-of-tree objects
#
# Missing Debian packages are installed with apt-get (root or sudo).
# The kernel build runs as `nice -n 19 make -j2` (shared 2-core machine);
# set XOVER_JOBS to change -j.
#
# Exit status: 0 ok, 1 usage or build error, 2 packages unavailable (callers
# such as integration tests turn 2 into "skip").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
recipe=$here/linux-guest
cache=${1:-${XOVER_CACHE:-$HOME/.cache/xover}/linux-guest}
jobs=${XOVER_JOBS:-2}
[[ $# -le 1 ]] || { echo "usage: linux-guest.sh [CACHE_DIR]" >&2; exit 1; }

log() { echo "linux-guest: $*" >&2; }
die() { log "$*"; exit 1; }

# --- packages ---------------------------------------------------------------
# Build tools for a kernel (gcc, make, bison, flex, bc, libelf for objtool,
# libssl for the signing helpers), lz4 for the bzImage, busybox for the
# initramfs, and the kernel source itself; alsa-utils (aplay, arecord,
# amixer, with libasound2) for the sound initramfs and python3 for its tone
# (tests/guests/sndtest/wavtool.py).
packages=(build-essential bc bison flex libelf-dev libssl-dev cpio gzip lz4
          xz-utils busybox-static linux-source-6.1 alsa-utils python3)

install_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { log "need root to install: ${missing[*]}"; exit 2; }
        sudo=(sudo)
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local apt=("${sudo[@]}" apt-get -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends)
    if ! "${apt[@]}" install "${missing[@]}" >/dev/null 2>&1; then
        "${sudo[@]}" apt-get -qq -o DPkg::Lock::Timeout=600 update >/dev/null 2>&1 || true
        "${apt[@]}" install "${missing[@]}" >/dev/null ||
            { log "apt-get install ${missing[*]} failed"; exit 2; }
    fi
}

command -v dpkg-query >/dev/null || { log "not a Debian system (no dpkg-query)"; exit 2; }
install_packages

tarball=$(ls -1 /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1 || true)
[[ -n $tarball ]] || { log "linux-source-6.1 installed but no /usr/src/linux-source-6.1.tar.*"; exit 2; }
busybox=/bin/busybox
# (grep without -q reads the whole list: an early exit would SIGPIPE busybox,
# which pipefail turns into a failure)
[[ -x $busybox ]] && "$busybox" --list | grep -x nc >/dev/null || { log "no usable busybox-static"; exit 2; }
wavtool=$here/../tests/guests/sndtest/wavtool.py
[[ -f $wavtool ]] || die "no $wavtool"
[[ -x /usr/bin/aplay && -x /usr/bin/amixer && -f /usr/share/alsa/alsa.conf ]] ||
    { log "alsa-utils installed but no aplay, amixer or alsa.conf"; exit 2; }

# --- input hashes -------------------------------------------------------------
# The kernel depends on this script, the fragment, the patches and the
# source package version; the initramfs on this script, init, busybox, the
# ALSA packages, the C library (copied in) and the tone generator.
pkgver() { dpkg-query -W -f='${Package}=${Version}\n' "$1"; }
# Contents only (not paths), so every checkout of the same inputs agrees.
hash_of() { local f; for f; do sha256sum < "$f"; done | sha256sum | cut -c1-16; }
patches=("$recipe"/patches/*.patch)
kernel_hash=$( { hash_of "${BASH_SOURCE[0]}" "$recipe/xover.config" "${patches[@]}"; pkgver linux-source-6.1; } | sha256sum | cut -c1-16)
initramfs_hash=$( { hash_of "${BASH_SOURCE[0]}" "$recipe/init" "$wavtool"
                   for p in busybox-static alsa-utils libasound2 libasound2-data libc6; do pkgver "$p"; done; } |
                 sha256sum | cut -c1-16)
stamp="kernel=$kernel_hash initramfs=$initramfs_hash"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
outputs=(vmlinux bzImage initramfs.cpio initramfs.cpio.gz initramfs-sound.cpio System.map config)
all_present() { local f; for f in "${outputs[@]}"; do [[ -s $cache/$f ]] || return 1; done; }
if [[ -f $cache/stamp && $(cat "$cache/stamp") == "$stamp" ]] && all_present; then
    log "up to date ($stamp)"
    echo "$cache"
    exit 0
fi
old_stamp=$(cat "$cache/stamp" 2>/dev/null || true)
rm -f "$cache/stamp"

# --- source: unpack and patch (redone when the patches change) ----------------
src=$cache/src/linux-source-6.1
build=$cache/build
patch_hash=$( { hash_of "${patches[@]}"; pkgver linux-source-6.1; } | sha256sum | cut -c1-16)
if [[ ! -f $src/.xover-patches || $(cat "$src/.xover-patches") != "$patch_hash" ]]; then
    log "unpacking $tarball"
    rm -rf "$cache/src" "$build"
    mkdir -p "$cache/src"
    tar -xf "$tarball" -C "$cache/src"
    for p in "${patches[@]}"; do
        log "patch $(basename "$p")"
        patch -d "$src" -p1 --forward --quiet < "$p" || die "patch $p does not apply"
    done
    echo "$patch_hash" > "$src/.xover-patches"
fi

kmake() { nice -n 19 make -C "$src" O="$build" ARCH=x86_64 "$@"; }

# --- kernel -----------------------------------------------------------------
# Skipped when only the initramfs inputs changed.
if [[ $old_stamp != "kernel=$kernel_hash "* || ! -s $cache/vmlinux || ! -s $cache/bzImage ]]; then
    mkdir -p "$build"
    log "configuring (tinyconfig + xover.config)"
    kmake tinyconfig >/dev/null
    "$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$recipe/xover.config" >/dev/null
    kmake olddefconfig >/dev/null
    # Every line of the fragment must have survived olddefconfig: a symbol
    # that lost its value (missing dependency, renamed option) is an error.
    bad=0
    while IFS= read -r line; do
        if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
            grep -qxF "$line" "$build/.config" ||
                { log "config: wanted $line, got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$build/.config" || echo missing)"; bad=1; }
        elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            ! grep -qE "^${BASH_REMATCH[1]}=" "$build/.config" ||
                { log "config: wanted ${BASH_REMATCH[1]} off, got: $(grep -E "^${BASH_REMATCH[1]}=" "$build/.config")"; bad=1; }
        fi
    done < "$recipe/xover.config"
    [[ $bad -eq 0 ]] || die "config fragment not satisfied (see above)"

    log "building vmlinux + bzImage (nice -n 19 make -j$jobs; minutes)"
    start=$SECONDS
    if ! kmake -j"$jobs" bzImage > "$cache/build.log" 2>&1; then
        tail -n 30 "$cache/build.log" >&2
        die "kernel build failed, see $cache/build.log"
    fi
    log "kernel built in $((SECONDS - start)) s"
    cp "$build/vmlinux" "$cache/vmlinux.tmp" && mv "$cache/vmlinux.tmp" "$cache/vmlinux"
    cp "$build/arch/x86/boot/bzImage" "$cache/bzImage.tmp" && mv "$cache/bzImage.tmp" "$cache/bzImage"
    cp "$build/System.map" "$cache/System.map"
    cp "$build/.config" "$cache/config"
fi

# --- initramfs ----------------------------------------------------------------
# Written with the kernel's own gen_init_cpio from a file list, so device
# nodes need no root and the archive is byte-for-byte reproducible.
gen=$build/usr/gen_init_cpio
if [[ ! -x $gen ]]; then
    kmake usr/gen_init_cpio >/dev/null 2>&1 || true
fi
[[ -x $gen ]] || die "no $gen (kernel build incomplete?)"
applets=(sh ash mount umount cat echo ls ps dmesg ip ifconfig route netstat
         ping nc seq head tail tee wc md5sum cut sed grep awk date sleep usleep
         mkfifo readlink uname free kill rm cp mv mkdir ln reboot poweroff halt
         base64)
list=$cache/initramfs.list
{
    echo "dir /dev 0755 0 0"
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "nod /dev/null 0666 0 0 c 1 3"
    echo "dir /proc 0755 0 0"
    echo "dir /sys 0755 0 0"
    echo "dir /tmp 1777 0 0"
    echo "dir /bin 0755 0 0"
    echo "file /bin/busybox $busybox 0755 0 0"
    # Links for the applets init uses and a few for a debugging shell, not
    # all ~400: every archive entry costs emulated kernel work at boot
    # (the full set made unpacking several seconds slower).
    for applet in "${applets[@]}"; do
        echo "slink /bin/$applet busybox 0777 0 0"
    done
    echo "file /init $recipe/init 0755 0 0"
} > "$list"
# initramfs.cpio (uncompressed) is the one to boot: inflating the gzip copy
# at emulated CPL0 took 20-50 s, copying the 2 MB raw archive ~5 s.
"$gen" -t 0 "$list" > "$cache/initramfs.cpio.tmp"
gzip -9 -n < "$cache/initramfs.cpio.tmp" > "$cache/initramfs.cpio.gz.tmp"

# The sound initramfs: the same plus alsa-utils' aplay (arecord is a link
# to it: the program looks at its name) and amixer, the shared libraries
# they load (ldd: libasound, libm, libc) at the paths the dynamic loader
# searches without an ld.so.cache, the loader at the path in their
# PT_INTERP, and alsa.conf (alsa-lib reads it to resolve "hw:0,0"). A
# separate archive: its ~4.5 MB would slow every other Linux test's boot
# (each archive byte is copied by emulated kernel code on a software KVM).
# The tone is 2 s of 440 Hz, 48 kHz stereo S16: the crossover's format.
python3 "$wavtool" sine --rate 48000 --channels 2 --freq 440 --seconds 2 \
    "$cache/tone440.wav" > /dev/null
sound_list=$cache/initramfs-sound.list
{
    cat "$list"
    for d in /usr /usr/bin /usr/share /usr/share/alsa /lib /lib/x86_64-linux-gnu /lib64 /sound; do
        echo "dir $d 0755 0 0"
    done
    echo "file /usr/bin/aplay /usr/bin/aplay 0755 0 0"
    echo "slink /usr/bin/arecord aplay 0777 0 0"
    echo "file /usr/bin/amixer /usr/bin/amixer 0755 0 0"
    echo "file /usr/share/alsa/alsa.conf /usr/share/alsa/alsa.conf 0644 0 0"
    echo "file /sound/tone440.wav $cache/tone440.wav 0644 0 0"
    # "libasound.so.2 => /lib/x86_64-linux-gnu/libasound.so.2 (0x...)" and
    # "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no file.
    ldd /usr/bin/aplay /usr/bin/amixer | awk '
        $2 == "=>" && $3 ~ /^\// { print "lib", $1, $3 }
        $1 ~ /^\/.*ld-linux/     { print "interp", $1, $1 }' | sort -u |
    while read -r kind name path; do
        real=$(readlink -f "$path")
        [[ -f $real ]] || die "ldd: no $path"
        case $kind in
        lib) echo "file /lib/x86_64-linux-gnu/$name $real 0755 0 0" ;;
        interp) echo "file $name $real 0755 0 0" ;;
        esac
    done
} > "$sound_list"
grep -q '^file /lib64/ld-linux' "$sound_list" && grep -q 'libasound.so.2 ' "$sound_list" ||
    die "ldd found no loader or libasound for aplay (see $sound_list)"
"$gen" -t 0 "$sound_list" > "$cache/initramfs-sound.cpio.tmp"
mv "$cache/initramfs.cpio.tmp" "$cache/initramfs.cpio"
mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"
mv "$cache/initramfs-sound.cpio.tmp" "$cache/initramfs-sound.cpio"

echo "$stamp" > "$cache/stamp"
log "done: $(cd "$cache" && ls -l vmlinux bzImage initramfs.cpio initramfs.cpio.gz initramfs-sound.cpio | awk '{printf "%s %s  ", $9, $5}')"
echo "$cache"
