// One VM, assembled from a validated VmConfig: KVM VM with in-kernel
// irqchip, guest RAM (one memfd), the buses and fixed devices (COM1, debug
// exit, i8042 reset, PCI host bridge), NICs from a factory, the kernel
// loaded, the MP table, and vCPUs. run() starts the I/O thread and one
// thread per vCPU and returns the exit status when the VM stops.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "xover/kvm/system.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/kvm/vcpu.hpp"
#include "xover/kvm/vm.hpp"
#include "xover/vmm/config.hpp"
#include "xover/vmm/cpuid.hpp"
#include "xover/vmm/cmos_rtc.hpp"
#include "xover/vmm/debug_exit.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/io_bus.hpp"
#include "xover/vmm/kvm_interrupts.hpp"
#include "xover/vmm/loader.hpp"
#include "xover/vmm/memory_slots.hpp"
#include "xover/vmm/metrics_writer.hpp"
#include "xover/vmm/nic_context.hpp"
#include "xover/vmm/pci_bus.hpp"
#include "xover/vmm/pci_device.hpp"
#include "xover/vmm/posted_writes.hpp"
#include "xover/vmm/ram_memory.hpp"
#include "xover/vmm/seccomp.hpp"
#include "xover/vmm/serial.hpp"
#include "xover/vmm/stats.hpp"
#include "xover/vmm/vcpu_exit.hpp"

namespace xover::vmm {

class Machine {
public:
    using NicFactory = std::function<std::unique_ptr<PciDevice>(const NicConfig&, NicContext&)>;
    using SoundFactory = std::function<std::unique_ptr<PciDevice>(const SoundConfig&, NicContext&)>;

    // Builds everything up to (not including) running the vCPUs: the NICs,
    // then the sound cards, in PCI slot order. Throws xover::Error with a
    // one-line message on any setup failure.
    explicit Machine(const VmConfig& config, const NicFactory& nic_factory = {},
                     const SoundFactory& sound_factory = {});
    ~Machine();
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Runs the guest until debug-exit, reset, a fatal exit, stop() or
    // SIGINT/SIGTERM. Returns the process exit status: the debug-exit value,
    // 0 on guest reset, 1 on triple fault / internal error, 128+sig on signal.
    int run();
    // Asks every vCPU out of KVM_RUN; the first stop wins: its status and
    // the SIGINT/SIGTERM that made it, if one did (each vCPU then says
    // where its guest stood). Thread-safe.
    void stop(int status, int signal = 0);

    // Runs `fn` with every vCPU parked outside KVM_RUN (kicked with the
    // stop signal + immediate_exit, each acknowledging before `fn` runs),
    // then lets them go. For memory slot swaps. Call from a non-vCPU
    // thread (the I/O thread); nested calls are fine. If the VM is
    // stopping, `fn` still runs (the vCPUs are leaving anyway).
    void with_vcpus_paused(const std::function<void()>& fn);

    // A user's pause (the control API's PUT /vm/pause): every vCPU parks
    // outside KVM_RUN, as in with_vcpus_paused(), until resume(). Devices,
    // timers and links go on: frames for the VM wait in its rings. Both
    // are idempotent. pause() returns false when the VM is stopping (a
    // stop also ends a pause) or not running yet, resume() when stopping.
    // Call from a non-vCPU thread.
    bool pause();
    bool resume();
    enum class RunState { Starting, Running, Paused, Stopping };
    RunState run_state() const;
    // How long run() has run (or ran); 0 before it starts.
    std::chrono::milliseconds uptime() const;

    // The VM's counters now: the VM, its vCPUs, the devices' bus accesses,
    // the NICs (vmm/stats.hpp).
    StatsSnapshot stats() const;
    // After run(): the last --metrics line and, with --stats, the
    // "stats: <what> key=value ..." lines on `out`, both from one snapshot.
    void report_exit(std::FILE* out);

    const VmConfig& config() const { return config_; }
    kvm::Vm& vm() { return vm_; }
    RamMemory& memory() { return *memory_; }
    EventLoop& loop() { return *loop_; }
    IoBus& pio() { return pio_; }
    IoBus& mmio() { return mmio_; }
    PciBus& pci() { return *pci_; }
    const BootImage& boot_image() const { return boot_image_; }

private:
    // A PCI function from a factory (a NIC or a sound card) and its plumbing.
    struct PciFunction {
        std::unique_ptr<IrqfdLevelLine> intx;
        std::vector<std::unique_ptr<KvmMsiController>> msi;
        std::unique_ptr<PciDevice> device;
        std::string name;
    };

    void setup_memory();
    void setup_console();
    void setup_devices();
    void add_nic(const NicConfig& nic, unsigned index, const NicFactory& factory);
    void add_sound(const SoundConfig& sound, unsigned index, const SoundFactory& factory);
    void add_pci_function(std::string name, unsigned index,
                          const std::function<std::unique_ptr<PciDevice>(NicContext&)>& make);
    void load_guest();
    void setup_vcpus();
    void setup_metrics();
    void attach_coalesced_ring();
    void vcpu_thread(unsigned index);
    void vcpu_left();
    void park_if_paused(kvm::Vcpu& vcpu);
    void request_pause();  // with_vcpus_paused's first half: returns with every vCPU parked
    void release_pause();
    void report_vcpu_state(kvm::Vcpu& vcpu, const char* why);
    void report_vcpu_position(kvm::Vcpu& vcpu, int signal, std::uint64_t exits);
    // Loads the thread kind's own seccomp filter on the calling thread
    // (vmm/seccomp.hpp); false, the VM stopping, if it cannot.
    bool restrict_thread(ThreadKind kind);
    void watch_signals();
    void watch_console_input();

    VmConfig config_;
    kvm::System system_;
    kvm::Vm vm_;
    MemorySlots memory_slots_;
    std::unique_ptr<RamMemory> memory_;
    std::unique_ptr<EventLoop> loop_;
    std::unique_ptr<PostedWrites> posted_writes_;  // before the devices that post
    IoBus pio_{"pio"};
    IoBus mmio_{"mmio"};
    kvm::UniqueFd console_fd_;
    std::unique_ptr<KvmIrqLine> com1_irq_;
    std::unique_ptr<Serial16550> serial_;
    std::unique_ptr<DebugExit> debug_exit_;
    std::unique_ptr<ResetPort> reset_port_;
    std::unique_ptr<CmosRtc> rtc_;
    std::unique_ptr<PciBus> pci_;
    std::vector<std::unique_ptr<PciFunction>> pci_functions_;  // stable addresses: contexts point into them
    BootImage boot_image_{};
    CpuTemplate cpu_template_ = CpuTemplate::Host;
    std::vector<kvm::Vcpu> vcpus_;
    std::vector<std::unique_ptr<ExitCounters>> exit_counters_;
    std::mutex threads_mutex_;  // vcpu_threads_ vs. stop() kicking them
    std::vector<std::thread> vcpu_threads_;
    kvm::UniqueFd signal_fd_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> exit_status_{0};
    std::atomic<int> stop_signal_{0};  // the SIGINT/SIGTERM that stopped the VM, if one did
    // Pause protocol (with_vcpus_paused): requests counted under
    // pause_mutex_; vCPU threads check pause_requested_ after each exit.
    std::mutex pause_mutex_;
    std::condition_variable pause_cv_;
    unsigned pause_requests_ = 0;
    unsigned parked_ = 0;
    unsigned vcpus_gone_ = 0;  // threads that left their loop
    std::atomic<bool> pause_requested_{false};
    std::mutex user_pause_mutex_;  // pause() vs. resume()
    std::atomic<bool> user_paused_{false};
    std::atomic<bool> vcpus_started_{false};  // run() made the vCPU threads
    // What run() lasted, for uptime_ms (steady clock, ns; 0: not yet).
    std::atomic<std::int64_t> run_started_ns_{0};
    std::atomic<std::int64_t> run_ended_ns_{0};
    // Last: it reads every counter above, from the I/O thread.
    std::unique_ptr<MetricsWriter> metrics_;
};

}  // namespace xover::vmm
