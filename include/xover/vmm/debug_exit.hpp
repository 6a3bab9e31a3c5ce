// Ways a guest ends the VM on purpose:
//  - DebugExit at port 0xf4: `outb v` stops the VM, xover exits with status v
//    (QEMU's isa-debug-exit at the same port exits with (v << 1) | 1).
//  - ResetPort at port 0x64 (the i8042 command port): command 0xfe (pulse
//    the reset line) is Linux's `reboot` path without ACPI; xover stops the
//    VM with status 0, like QEMU with -no-reboot. Reads report an idle
//    controller so the guest's wait loops end.
#pragma once

#include <cstdint>
#include <functional>

#include "xover/vmm/io_device.hpp"

namespace xover::vmm {

class DebugExit final : public IoDevice {
public:
    using Stop = std::function<void(int status)>;
    explicit DebugExit(Stop stop) : stop_(std::move(stop)) {}
    void read(std::uint64_t, std::span<std::uint8_t> data) override;
    void write(std::uint64_t, std::span<const std::uint8_t> data) override;

private:
    Stop stop_;
};

class ResetPort final : public IoDevice {
public:
    using Stop = std::function<void(int status)>;
    explicit ResetPort(Stop stop) : stop_(std::move(stop)) {}
    void read(std::uint64_t, std::span<std::uint8_t> data) override;
    void write(std::uint64_t, std::span<const std::uint8_t> data) override;

private:
    Stop stop_;
};

}  // namespace xover::vmm
