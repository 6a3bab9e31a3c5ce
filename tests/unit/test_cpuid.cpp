#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "xover/vmm/cpuid.hpp"

using xover::vmm::CpuTemplate;
using xover::vmm::make_vcpu_cpuid;

namespace {

const kvm_cpuid_entry2 *leaf(const std::vector<kvm_cpuid_entry2> &entries,
                             std::uint32_t function) {
  for (const auto &e : entries)
    if (e.function == function)
      return &e;
  return nullptr;
}

// What Linux 6.1's native_calibrate_tsc computes from leaf 0x15, in its
// 32-bit arithmetic.
std::uint32_t linux_tsc_khz(const kvm_cpuid_entry2 &e) {
  std::uint32_t crystal_khz = e.ecx / 1000;
  return crystal_khz * e.ebx / e.eax;
}

// An AMD-like host: basic leaves up to 0x10, no 0x15/0x16.
std::vector<kvm_cpuid_entry2> amd_like_host() {
  kvm_cpuid_entry2 max{};
  max.function = 0;
  max.eax = 0x10;
  kvm_cpuid_entry2 one{};
  one.function = 1;
  return {max, one};
}

} // namespace

TEST_CASE("vCPUs learn the TSC rate from leaves 0x15/0x16 with the APIC bus as "
          "crystal",
          "[vmm][cpuid]") {
  for (std::uint32_t khz :
       {2445434u, 2999999u, 1000000u, 3700123u, 800001u, 5000000u}) {
    auto entries =
        make_vcpu_cpuid(amd_like_host(), 0, 1, CpuTemplate::Baseline, khz);
    REQUIRE(leaf(entries, 0)->eax >= 0x16);
    const auto *crystal = leaf(entries, 0x15);
    REQUIRE(crystal);
    CHECK(crystal->ecx == 1'000'000'000u); // KVM's LAPIC timer clock
    REQUIRE(crystal->eax != 0);
    // No overflow in the guest's 32-bit product, and within 2 ppm.
    CHECK(std::uint64_t(crystal->ecx / 1000) * crystal->ebx <= 0xffffffffu);
    double error = double(linux_tsc_khz(*crystal)) / khz - 1;
    CHECK(error * error < 2e-6 * 2e-6);
    CHECK(leaf(entries, 0x16)->eax == khz / 1000);
  }
}

TEST_CASE("Without a known TSC rate the frequency leaves stay the host's",
          "[vmm][cpuid]") {
  auto entries =
      make_vcpu_cpuid(amd_like_host(), 0, 1, CpuTemplate::Baseline, 0);
  CHECK(leaf(entries, 0)->eax == 0x10);
  CHECK_FALSE(leaf(entries, 0x15));
  CHECK_FALSE(leaf(entries, 0x16));
}
