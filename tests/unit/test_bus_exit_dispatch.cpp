// vCPU exits dispatched on the buses, fed synthetic kvm_run contents
// (no /dev/kvm needed): string port I/O, MMIO reads and writes, and the
// classification of exits the loop must stop on.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "xover/vmm/io_bus.hpp"
#include "xover/vmm/vcpu_exit.hpp"

namespace {

struct Sink : xover::vmm::IoDevice {
    std::string written;
    std::uint64_t last_offset = 0;
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        last_offset = offset;
        for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::uint8_t(0x10 + i);
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        last_offset = offset;
        written.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
};

// kvm_run followed by room for string I/O data, as in the real mmap.
struct RunPage {
    alignas(8) std::uint8_t bytes[4096] = {};
    kvm_run& run() { return *reinterpret_cast<kvm_run*>(bytes); }
};

}  // namespace

TEST_CASE("exit dispatch: string OUT writes every item to the port", "[bus][exit]") {
    xover::vmm::IoBus pio("pio"), mmio("mmio");
    Sink serial;
    pio.insert(0x3f8, 8, serial, "serial");
    xover::vmm::ExitCounters counters;
    RunPage page;
    auto& run = page.run();
    run.exit_reason = KVM_EXIT_IO;
    run.io.direction = KVM_EXIT_IO_OUT;
    run.io.size = 1;
    run.io.port = 0x3f8;
    run.io.count = 5;
    run.io.data_offset = 1024;
    std::memcpy(page.bytes + 1024, "hello", 5);
    CHECK(xover::vmm::handle_exit(run, pio, mmio, counters) == xover::vmm::ExitOutcome::Continue);
    CHECK(serial.written == "hello");
    CHECK(counters.by_reason[KVM_EXIT_IO] == 1);
}

TEST_CASE("exit dispatch: IN fills kvm_run data, unclaimed ports read all-ones", "[bus][exit]") {
    xover::vmm::IoBus pio("pio"), mmio("mmio");
    xover::vmm::ExitCounters counters;
    RunPage page;
    auto& run = page.run();
    run.exit_reason = KVM_EXIT_IO;
    run.io.direction = KVM_EXIT_IO_IN;
    run.io.size = 2;
    run.io.port = 0x80;
    run.io.count = 1;
    run.io.data_offset = 1024;
    xover::vmm::handle_exit(run, pio, mmio, counters);
    CHECK(page.bytes[1024] == 0xff);
    CHECK(page.bytes[1025] == 0xff);
    CHECK(pio.unclaimed_accesses() == 1);
}

TEST_CASE("exit dispatch: MMIO read and write at device offsets", "[bus][exit]") {
    xover::vmm::IoBus pio("pio"), mmio("mmio");
    Sink dev;
    mmio.insert(0xc0000000, 0x1000, dev, "dev");
    xover::vmm::ExitCounters counters;
    RunPage page;
    auto& run = page.run();
    run.exit_reason = KVM_EXIT_MMIO;
    run.mmio.phys_addr = 0xc0000010;
    run.mmio.len = 4;
    run.mmio.is_write = 0;
    xover::vmm::handle_exit(run, pio, mmio, counters);
    CHECK(dev.last_offset == 0x10);
    CHECK(run.mmio.data[0] == 0x10);
    CHECK(run.mmio.data[3] == 0x13);
    run.mmio.is_write = 1;
    run.mmio.phys_addr = 0xc0000020;
    run.mmio.len = 2;
    run.mmio.data[0] = 'o';
    run.mmio.data[1] = 'k';
    xover::vmm::handle_exit(run, pio, mmio, counters);
    CHECK(dev.written == "ok");
    CHECK(counters.by_reason[KVM_EXIT_MMIO] == 2);
    CHECK(counters.total() == 2);
}

TEST_CASE("exit dispatch: fatal exits are classified, not handled", "[bus][exit]") {
    xover::vmm::IoBus pio("pio"), mmio("mmio");
    xover::vmm::ExitCounters counters;
    RunPage page;
    auto& run = page.run();
    using xover::vmm::ExitOutcome;
    const std::vector<std::pair<std::uint32_t, ExitOutcome>> cases = {
        {KVM_EXIT_SHUTDOWN, ExitOutcome::TripleFault},
        {KVM_EXIT_INTERNAL_ERROR, ExitOutcome::InternalError},
        {KVM_EXIT_FAIL_ENTRY, ExitOutcome::FailEntry},
        {KVM_EXIT_HLT, ExitOutcome::Halted},
        {KVM_EXIT_INTR, ExitOutcome::Interrupted},
        {KVM_EXIT_DEBUG, ExitOutcome::Unhandled},
    };
    for (auto [reason, outcome] : cases) {
        run.exit_reason = reason;
        CHECK(xover::vmm::handle_exit(run, pio, mmio, counters) == outcome);
    }
    CHECK(xover::vmm::exit_reason_name(KVM_EXIT_SHUTDOWN) == "shutdown");
}
