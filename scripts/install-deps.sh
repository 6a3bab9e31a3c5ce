#!/usr/bin/env bash
# Installs everything xover needs to build, test and benchmark on Debian 12.
# Idempotent and quiet; run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git dpkg-dev help2man  # dpkg-dev, help2man: the .deb and the man page (packaging/)
  liburing-dev libseccomp-dev libfmt-dev libspdlog-dev libcli11-dev catch2 libtomlplusplus-dev nlohmann-json3-dev
  libcpp-httplib-dev libcurl4-openssl-dev  # the control API: server, and `xover ctl`'s client
  qemu-system-x86 ipxe-qemu iproute2 iputils-ping procps python3 curl
  python3-jsonschema  # scripts/check-openapi.py: the control API against docs/openapi.json
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer and its sanitizer runtimes
  dpdk-dev  # dpdk-testpmd: the vhost-user back-end the frontend tests and scripts/ovs-dpdk.sh use
  busybox-static kmod cpio  # scripts/kvm-host.sh: the emulated KVM host on a machine without /dev/kvm
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
