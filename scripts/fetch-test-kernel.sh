#!/usr/bin/env bash
# Downloads Debian's stock amd64 kernel package (unsigned variant preferred)
# into DIR with apt-get download and extracts its /boot/vmlinuz-* there.
# Prints the path of the extracted bzImage on stdout. Re-runs reuse the cache.
#
#   scripts/fetch-test-kernel.sh DIR
#
# Exit status: 0 ok, 1 usage, 2 no package available / download failed.
set -euo pipefail

dir=${1:?usage: fetch-test-kernel.sh DIR}
mkdir -p "$dir"
cd "$dir"

existing=$(ls -1 extracted/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
if [[ -n "$existing" && -s "$existing" ]]; then
    echo "$PWD/$existing"
    exit 0
fi

command -v apt-cache >/dev/null && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
    echo "fetch-test-kernel: apt-get/dpkg-deb not available" >&2
    exit 2
}

# Newest plain amd64 flavour (not cloud/rt, not -dbg); unsigned first since
# it does not depend on the signing machinery, then the signed package.
pick() {
    apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' |
        grep -Ev -- '-(dbg|cloud|rt)-|-dbg$|cloud|-rt-' | sort -V | tail -n1
}
pkg=$(pick '^linux-image-[0-9.]+-[0-9]+-amd64-unsigned$')
[[ -n "$pkg" ]] || pkg=$(pick '^linux-image-[0-9.]+-[0-9]+-amd64$')
if [[ -z "$pkg" ]]; then
    echo "fetch-test-kernel: no linux-image-*-amd64 package in apt-cache (run apt-get update?)" >&2
    exit 2
fi

echo "fetch-test-kernel: downloading $pkg" >&2
rm -f ./*.deb
if ! apt-get download "$pkg" >&2; then
    echo "fetch-test-kernel: apt-get download $pkg failed" >&2
    exit 2
fi
deb=$(ls -1 ./*.deb | head -n1)
rm -rf extracted
dpkg-deb -x "$deb" extracted
rm -f "$deb"   # keep only the kernel; the modules are large
find extracted -mindepth 1 -maxdepth 1 ! -name boot -exec rm -rf {} +

kernel=$(ls -1 extracted/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
if [[ -z "$kernel" ]]; then
    echo "fetch-test-kernel: $deb has no /boot/vmlinuz-*" >&2
    exit 2
fi
echo "$PWD/$kernel"
