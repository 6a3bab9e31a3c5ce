#include "xover/vmm/machine.hpp"
#include "xover/vmm/seccomp.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"
#include "xover/vmm/mptable.hpp"
#include "xover/vmm/thread_latency.hpp"
#include "xover/vmm/vcpu_boot.hpp"

namespace xover::vmm {

namespace {

// The signal that kicks a vCPU thread out of KVM_RUN. Its handler does
// nothing: the point is the EINTR (together with kvm_run.immediate_exit,
// which covers a kick that lands just before KVM_RUN).
const int kKickSignal = SIGUSR1;

// The I/O thread's slice: the shortest the kernel allows; it runs for tens
// of microseconds per wake-up.
constexpr std::uint64_t kIoThreadSliceNs = 100'000;

void install_kick_handler() {
    struct sigaction action{};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    if (::sigaction(kKickSignal, &action, nullptr) < 0) throw system_error("sigaction for vCPU kick signal");
}

// How many memory slots the VM has. A kernel that cannot say is older than
// 2008, when KVM began reporting it; it had 32 then.
std::uint32_t memory_slot_count(const kvm::System& system) {
    constexpr std::uint32_t kSlotsBeforeTheCap = 32;
    int count = system.check_extension(KVM_CAP_NR_MEMSLOTS);
    return count > 0 ? std::uint32_t(count) : kSlotsBeforeTheCap;
}

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// exits=<all> then one count per exit reason, by name (reasons without a
// name of their own add up in "other").
void append_exit_counts(const ExitCounters& c, StatCounters& out) {
    out.emplace_back("exits", c.total());
    const std::size_t first = out.size();
    for (std::size_t r = 0; r < ExitCounters::kReasons; ++r) {
        const std::string name(exit_reason_name(std::uint32_t(r)));
        const std::uint64_t n = c.by_reason[r].load(std::memory_order_relaxed);
        auto it = std::find_if(out.begin() + std::ptrdiff_t(first), out.end(),
                               [&](const auto& counter) { return counter.first == name; });
        if (it == out.end()) out.emplace_back(name, n);
        else it->second += n;
    }
}

std::vector<E820Entry> memory_map(std::uint64_t memory) {
    std::vector<E820Entry> map;
    std::uint64_t low = layout::ram_below_hole(memory);
    map.push_back({0, layout::kLowRamEnd, E820Entry::kRam});
    map.push_back({layout::kEbdaAddr, layout::kHighRamStart - layout::kEbdaAddr, E820Entry::kReserved});
    if (low > layout::kHighRamStart) map.push_back({layout::kHighRamStart, low - layout::kHighRamStart, E820Entry::kRam});
    if (std::uint64_t high = layout::ram_above_hole(memory)) map.push_back({layout::kMmioHoleEnd, high, E820Entry::kRam});
    return map;
}

}  // namespace

Machine::Machine(const VmConfig& config, const NicFactory& nic_factory, const SoundFactory& sound_factory)
    : config_(config),
      system_(kvm::System::open()),
      vm_(system_.create_vm()),
      memory_slots_(memory_slot_count(system_)) {
    cpu_template_ = parse_cpu_template(config_.cpu_template);
    if (config_.cpus == 0 || config_.cpus > 64) throw Error("--cpus {}: expected 1..64", config_.cpus);
    vm_.set_identity_map_addr(layout::kKvmIdentityMapAddr);
    vm_.set_tss_addr(layout::kKvmTssAddr);
    vm_.create_irqchip();
    // Linux checks at boot that IRQ0 of an i8254 reaches the IOAPIC (and
    // calibrates the TSC with it); the PIT raises nothing until a guest
    // programs it, so guests that do not use it never see it.
    vm_.create_pit();
    setup_memory();
    loop_ = make_event_loop();
    posted_writes_ = std::make_unique<PostedWrites>(vm_, mmio_, *loop_);
    setup_console();
    setup_devices();
    for (unsigned i = 0; i < config_.nics.size(); ++i) add_nic(config_.nics[i], i, nic_factory);
    for (unsigned i = 0; i < config_.sounds.size(); ++i) add_sound(config_.sounds[i], i, sound_factory);
    load_guest();
    setup_vcpus();
    setup_metrics();
}

Machine::~Machine() {
    // run() joins its threads before returning; nothing runs here any more.
    // The PCI bus goes first: it detaches from the NIC devices it points to.
    pci_.reset();
    if (loop_) loop_->stop();
}

void Machine::setup_memory() {
    memory_ = std::make_unique<RamMemory>(config_.memory_bytes);
    const auto& regions = memory_->regions();
    std::uint32_t slot = memory_slots_.allocate(std::uint32_t(regions.size()), "guest RAM");
    for (const auto& region : regions) vm_.set_memory_region(slot++, region.gpa, region.size, region.host);
}

void Machine::setup_console() {
    const std::string& console = config_.console;
    if (console == "stdout") {
        int fd = ::dup(STDOUT_FILENO);
        if (fd < 0) throw system_error("dup stdout for the console");
        console_fd_.reset(fd);
    } else if (console.rfind("file:", 0) == 0) {
        std::string path = console.substr(5);
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw system_error(fmt::format("--console {}: cannot open {}", console, path));
        console_fd_.reset(fd);
    } else if (console != "none") {
        throw Error("--console {}: expected stdout, file:PATH or none", console);
    }
}

void Machine::setup_devices() {
    com1_irq_ = std::make_unique<KvmIrqLine>(vm_, layout::kCom1Irq);
    int console_fd = console_fd_.get();
    serial_ = std::make_unique<Serial16550>(com1_irq_.get(), [console_fd](std::uint8_t byte) {
        if (console_fd >= 0) [[maybe_unused]] auto n = ::write(console_fd, &byte, 1);
    });
    pio_.insert(layout::kCom1Port, 8, *serial_, "serial");
    debug_exit_ = std::make_unique<DebugExit>([this](int status) { stop(status); });
    pio_.insert(layout::kDebugExitPort, 1, *debug_exit_, "debug-exit");
    reset_port_ = std::make_unique<ResetPort>([this](int status) {
        spdlog::info("guest requested a reset through the i8042; stopping");
        stop(status);
    });
    pio_.insert(0x64, 1, *reset_port_, "i8042-reset");
    rtc_ = std::make_unique<CmosRtc>();
    pio_.insert(0x70, 2, *rtc_, "cmos-rtc");
    pci_ = std::make_unique<PciBus>(pio_, mmio_);
    pci_->attach_config_ports();
}

void Machine::add_nic(const NicConfig& nic, unsigned index, const NicFactory& factory) {
    if (!factory) throw Error("--nic {}: no NIC models are built into this binary", to_string(nic.model));
    add_pci_function(fmt::format("nic{}-{}", index, to_string(nic.model)), index,
                     [&](NicContext& context) { return factory(nic, context); });
}

void Machine::add_sound(const SoundConfig& sound, unsigned index, const SoundFactory& factory) {
    if (!factory) throw Error("--sound {}: no sound devices are built into this binary", to_string(sound.model));
    add_pci_function(fmt::format("snd{}-{}", index, to_string(sound.model)), index,
                     [&](NicContext& context) { return factory(sound, context); });
}

void Machine::add_pci_function(std::string name, unsigned index,
                               const std::function<std::unique_ptr<PciDevice>(NicContext&)>& make) {
    auto& entry = *pci_functions_.emplace_back(std::make_unique<PciFunction>());
    unsigned slot = pci_->next_slot();
    std::uint32_t gsi = layout::pci_intx_gsi(slot, 0);
    entry.intx = std::make_unique<IrqfdLevelLine>(vm_, *loop_, gsi);
    entry.name = std::move(name);
    NicContext context{config_.name, index, slot, *memory_, *loop_, *entry.intx, &vm_, &memory_slots_,
                       [this, &entry](unsigned vectors) -> MsiController& {
                           entry.msi.push_back(std::make_unique<KvmMsiController>(vm_, vectors));
                           return *entry.msi.back();
                       }};
    context.with_vcpus_paused = [this](const std::function<void()>& fn) { with_vcpus_paused(fn); };
    context.posted_writes = posted_writes_.get();
    entry.device = make(context);
    if (!entry.device) throw Error("{}: the factory made no device", entry.name);
    pci_->add_device(*entry.device, entry.name, std::uint8_t(gsi));
}

void Machine::load_guest() {
    LoadRequest request;
    request.kernel = config_.kernel;
    request.cmdline = config_.cmdline;
    request.initrd = config_.initrd;
    request.memory_map = memory_map(config_.memory_bytes);
    request.memory_bytes = config_.memory_bytes;
    boot_image_ = load_kernel(*memory_, request);
}

void Machine::setup_vcpus() {
    auto supported = system_.supported_cpuid();
    std::uint32_t signature = 0x600, features = 0x201;
    for (const auto& e : supported)
        if (e.function == 1) signature = e.eax, features = e.edx;
    write_mptable(*memory_, MpTableConfig{config_.cpus, layout::kMpTableAddr, signature, features});
    for (unsigned i = 0; i < config_.cpus; ++i) {
        kvm::Vcpu vcpu = vm_.create_vcpu(i);
        int tsc_khz = ::ioctl(vcpu.fd(), KVM_GET_TSC_KHZ, 0);
        vcpu.set_cpuid(make_vcpu_cpuid(supported, i, config_.cpus, cpu_template_,
                                       tsc_khz > 0 ? std::uint32_t(tsc_khz) : 0));
        if (i == 0) {
            setup_boot_vcpu(vcpu, *memory_, boot_image_);
        } else {
            // Application processors wait in the in-kernel LAPIC for the
            // INIT/SIPI sequence the guest sends.
            vcpu.set_mp_state(KVM_MP_STATE_UNINITIALIZED);
        }
        vcpus_.push_back(std::move(vcpu));
        exit_counters_.push_back(std::make_unique<ExitCounters>());
    }
    attach_coalesced_ring();
}

// The coalesced-MMIO ring is one page of every vCPU's kvm_run mapping, at
// the page offset KVM_CAP_COALESCED_MMIO answers (0: no ring).
void Machine::attach_coalesced_ring() {
    int page_offset = system_.check_extension(KVM_CAP_COALESCED_MMIO);
    auto page_size = std::size_t(::sysconf(_SC_PAGESIZE));
    if (page_offset <= 0 || vcpus_.empty() || (std::size_t(page_offset) + 1) * page_size > vcpus_[0].mmap_size()) return;
    auto* page = reinterpret_cast<std::uint8_t*>(&vcpus_[0].run_state()) + std::size_t(page_offset) * page_size;
    posted_writes_->attach_ring(std::make_unique<kvm::CoalescedMmioRing>(page, page_size));
}

// The file is opened now, before the sandbox; lines come from the I/O
// thread's loop (and the last one from report_exit()).
void Machine::setup_metrics() {
    if (!config_.metrics) return;
    metrics_ = std::make_unique<MetricsWriter>(*config_.metrics, config_.metrics_interval, *loop_,
                                               [this] { return metrics_line(stats()); });
}

void Machine::stop(int status, int signal) {
    bool expected = false;
    if (stopping_.compare_exchange_strong(expected, true)) {
        stop_signal_.store(signal);
        exit_status_.store(status);
    }
    {
        // Parked vCPUs (a user's pause) wake and leave.
        std::lock_guard pause(pause_mutex_);
        pause_cv_.notify_all();
    }
    std::lock_guard lock(threads_mutex_);
    for (std::size_t i = 0; i < vcpus_.size(); ++i) {
        vcpus_[i].set_immediate_exit(true);
        if (i < vcpu_threads_.size() && vcpu_threads_[i].joinable())
            ::pthread_kill(vcpu_threads_[i].native_handle(), kKickSignal);
    }
}

void Machine::request_pause() {
    std::unique_lock lock(pause_mutex_);
    const bool first = pause_requests_++ == 0;
    if (first) pause_requested_.store(true, std::memory_order_seq_cst);
    {
        std::lock_guard threads(threads_mutex_);
        // Before run() has started the vCPU threads nothing runs guest code:
        // a link that comes up in the broker's answer to our registration
        // pauses during set-up, on the main thread, which would otherwise
        // wait here for threads it has yet to start. Nor is any vCPU kicked
        // (an immediate_exit left set would make every KVM_RUN return at
        // once): threads started while the pause lasts park before their
        // first KVM_RUN.
        if (vcpu_threads_.empty()) return;
        if (first)
            for (std::size_t i = 0; i < vcpus_.size(); ++i) {
                vcpus_[i].set_immediate_exit(true);
                if (i < vcpu_threads_.size() && vcpu_threads_[i].joinable())
                    ::pthread_kill(vcpu_threads_[i].native_handle(), kKickSignal);
            }
    }
    pause_cv_.wait(lock, [&] { return parked_ + vcpus_gone_ >= vcpus_.size(); });
}

void Machine::release_pause() {
    std::lock_guard lock(pause_mutex_);
    if (--pause_requests_ == 0) {
        pause_requested_.store(false, std::memory_order_seq_cst);
        pause_cv_.notify_all();
    }
}

void Machine::with_vcpus_paused(const std::function<void()>& fn) {
    request_pause();
    struct Release {
        Machine& m;
        ~Release() { m.release_pause(); }
    } release{*this};
    fn();
}

bool Machine::pause() {
    std::lock_guard user(user_pause_mutex_);
    // Not before the vCPU threads exist: run() may yet fail and never park them.
    if (stopping_.load(std::memory_order_acquire) || !vcpus_started_.load(std::memory_order_acquire)) return false;
    if (!user_paused_.load()) {
        request_pause();
        user_paused_.store(true);
    }
    return true;
}

bool Machine::resume() {
    std::lock_guard user(user_pause_mutex_);
    if (user_paused_.load()) {
        release_pause();
        user_paused_.store(false);
    }
    return !stopping_.load(std::memory_order_acquire);
}

Machine::RunState Machine::run_state() const {
    if (stopping_.load(std::memory_order_acquire)) return RunState::Stopping;
    if (!vcpus_started_.load(std::memory_order_acquire)) return RunState::Starting;
    return user_paused_.load() ? RunState::Paused : RunState::Running;
}

void Machine::park_if_paused(kvm::Vcpu& vcpu) {
    if (!pause_requested_.load(std::memory_order_seq_cst)) return;
    std::unique_lock lock(pause_mutex_);
    if (pause_requests_ == 0) return;
    ++parked_;
    pause_cv_.notify_all();
    // A stop ends any pause: the vCPUs leave (stop() notifies).
    pause_cv_.wait(lock, [&] { return pause_requests_ == 0 || stopping_.load(std::memory_order_acquire); });
    --parked_;
    // The kick's immediate_exit is not wanted any more (unless stopping).
    if (!stopping_.load(std::memory_order_acquire)) vcpu.set_immediate_exit(false);
    if (stopping_.load(std::memory_order_acquire)) vcpu.set_immediate_exit(true);
}

void Machine::report_vcpu_state(kvm::Vcpu& vcpu, const char* why) {
    try {
        kvm_regs r = vcpu.regs();
        kvm_sregs s = vcpu.sregs();
        spdlog::error("vCPU {}: {}", vcpu.id(), why);
        spdlog::error("  rip={:#018x} rsp={:#018x} rflags={:#x}", r.rip, r.rsp, r.rflags);
        spdlog::error("  rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x}", r.rax, r.rbx, r.rcx,
                      r.rdx, r.rsi, r.rdi, r.rbp);
        spdlog::error("  cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}", s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
        spdlog::error("  cs={:#x} (base {:#x} l={} db={}) ss={:#x} idt={:#x}/{:#x} gdt={:#x}/{:#x}", s.cs.selector,
                      s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.idt.base, s.idt.limit, s.gdt.base, s.gdt.limit);
        // AMD's SVM leaves the VMCB undefined after a shutdown intercept, so
        // KVM puts the vCPU through INIT before it reports the exit: what is
        // left is the reset vector, not the state that faulted.
        bool reset_state = r.rip == 0xfff0 && s.cs.selector == 0xf000 && s.cs.base == 0xffff0000;
        if (reset_state)
            spdlog::error("  (the reset state: this host's KVM re-initializes a vCPU on shutdown, as on AMD, so "
                          "the registers at the fault are lost)");
    } catch (const std::exception& e) {
        spdlog::error("vCPU {}: {} (registers unavailable: {})", vcpu.id(), why, e.what());
    }
}

// A pause waits for every vCPU thread to park or to have left.
void Machine::vcpu_left() {
    std::lock_guard lock(pause_mutex_);
    ++vcpus_gone_;
    pause_cv_.notify_all();
}

void Machine::vcpu_thread(unsigned index) {
    kvm::Vcpu& vcpu = vcpus_[index];
    ExitCounters& counters = *exit_counters_[index];
    kvm_run& run = vcpu.run_state();
    struct Gone {
        Machine& m;
        ~Gone() { m.vcpu_left(); }
    } gone{*this};
    while (!stopping_.load(std::memory_order_acquire)) {
        park_if_paused(vcpu);
        if (stopping_.load(std::memory_order_acquire)) break;
        int r = vcpu.run();
        // Posted writes happened before whatever made this exit.
        posted_writes_->apply();
        if (r == -EINTR || r == -EAGAIN) {
            counters.by_reason[KVM_EXIT_INTR].fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        if (r < 0) {
            spdlog::error("vCPU {}: KVM_RUN failed: {}", index, std::strerror(-r));
            stop(1);
            break;
        }
        switch (handle_exit(run, pio_, mmio_, counters)) {
        case ExitOutcome::Continue:
        case ExitOutcome::Interrupted:
        case ExitOutcome::Halted: break;
        case ExitOutcome::TripleFault:
            report_vcpu_state(vcpu, "triple fault (KVM_EXIT_SHUTDOWN)");
            stop(1);
            break;
        case ExitOutcome::SystemEvent:
            spdlog::info("vCPU {}: system event type {}; stopping", index, run.system_event.type);
            stop(run.system_event.type == KVM_SYSTEM_EVENT_CRASH ? 1 : 0);
            break;
        case ExitOutcome::InternalError:
            report_vcpu_state(vcpu, fmt::format("KVM internal error, suberror {} (1 = emulation failure)",
                                                run.internal.suberror)
                                        .c_str());
            stop(1);
            break;
        case ExitOutcome::FailEntry:
            report_vcpu_state(vcpu, fmt::format("VM entry failed, hardware reason {:#x}",
                                                run.fail_entry.hardware_entry_failure_reason)
                                        .c_str());
            stop(1);
            break;
        case ExitOutcome::Unhandled:
            report_vcpu_state(vcpu, fmt::format("unhandled exit reason {}", run.exit_reason).c_str());
            stop(1);
            break;
        }
    }
    // Stopped from outside (SIGINT/SIGTERM), not by its guest: where the
    // guest stood tells one looping without exits from one that waited on
    // a device. (A vCPU thread stuck in xover never gets here: no line.)
    if (int signal = stop_signal_.load(); signal != 0) report_vcpu_position(vcpu, signal, counters.total());
}

// A warning, as QEMU's "terminating on signal": the run did not end as its
// guest meant.
void Machine::report_vcpu_position(kvm::Vcpu& vcpu, int signal, std::uint64_t exits) {
    try {
        kvm_regs r = vcpu.regs();
        kvm_sregs s = vcpu.sregs();
        spdlog::warn("vCPU {}: stopped by signal {} at rip={:#x} (cs={:#x} rsp={:#x} rflags={:#x}) after {} exits",
                     vcpu.id(), signal, r.rip, s.cs.selector, r.rsp, r.rflags, exits);
    } catch (const std::exception& e) {
        spdlog::warn("vCPU {}: stopped by signal {} after {} exits (registers unavailable: {})", vcpu.id(), signal,
                     exits, e.what());
    }
}

bool Machine::restrict_thread(ThreadKind kind) {
    try {
        apply_thread_seccomp(config_.seccomp, SeccompProfile::Vmm, kind);
    } catch (const Error& e) {
        spdlog::error("{}; stopping the VM", e.what());
        stop(1);
        return false;
    }
    return true;
}

void Machine::watch_signals() {
    // SIGINT/SIGTERM are blocked in every thread (run() blocks them before
    // starting any) and read here, on the I/O thread, through a signalfd.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) throw system_error("signalfd");
    signal_fd_.reset(fd);
    loop_->watch(fd, EventLoop::Interest::Readable, [this] {
        signalfd_siginfo info{};
        if (::read(signal_fd_.get(), &info, sizeof info) != sizeof info) return;
        spdlog::info("signal {} received; stopping the VM", info.ssi_signo);
        stop(128 + int(info.ssi_signo), int(info.ssi_signo));
    });
}

void Machine::watch_console_input() {
    // Keyboard input only from an interactive terminal: a test harness's
    // stdin (a pipe or /dev/null) must not feed the guest by accident.
    if (config_.console != "stdout" || !::isatty(STDIN_FILENO)) return;
    loop_->watch(STDIN_FILENO, EventLoop::Interest::Readable, [this] {
        std::uint8_t buffer[64];
        ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n > 0) serial_->receive(std::span<const std::uint8_t>(buffer, std::size_t(n)));
        if (n == 0) loop_->unwatch(STDIN_FILENO, EventLoop::Interest::Readable);
    });
}

int Machine::run() {
    run_started_ns_.store(steady_ns());
    install_kick_handler();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) throw Error("cannot block SIGINT/SIGTERM");
    watch_signals();
    watch_console_input();
    // Set-up is done: from here on the process can make only the syscalls
    // its running devices need (vmm/seccomp.hpp); the threads below
    // inherit the filter.
    apply_seccomp(config_.seccomp, SeccompProfile::Vmm);
    seccomp_test_probe();

    // Named threads (15 characters at most) so that `top -H` and `perf`
    // tell a VM's I/O thread from its vCPUs.
    std::thread io_thread([this] {
        ::pthread_setname_np(::pthread_self(), "xover-io");
        // Wake-ups (ioeventfds, doorbells, timers) run at once, not when a
        // polling vCPU's slice ends (thread_latency.hpp).
        if (!request_short_slice(kIoThreadSliceNs))
            spdlog::debug("the kernel keeps the I/O thread's default time slice");
        if (!restrict_thread(ThreadKind::Io)) return;
        loop_->run();
    });
    {
        std::lock_guard lock(threads_mutex_);
        for (unsigned i = 0; i < vcpus_.size(); ++i)
            vcpu_threads_.emplace_back([this, i] {
                ::pthread_setname_np(::pthread_self(), fmt::format("xover-vcpu{}", i).c_str());
                clockid_t clock;
                if (::pthread_getcpuclockid(::pthread_self(), &clock) == 0) posted_writes_->add_vcpu_clock(clock);
                if (restrict_thread(ThreadKind::Vcpu))
                    vcpu_thread(i);
                else
                    vcpu_left();
            });
        vcpus_started_.store(true, std::memory_order_release);
    }
    // A stop() before all threads existed could not kick the later ones.
    if (stopping_.load()) stop(exit_status_.load());
    for (auto& t : vcpu_threads_) t.join();
    run_ended_ns_.store(steady_ns());
    {
        std::lock_guard lock(threads_mutex_);
        vcpu_threads_.clear();
    }
    loop_->stop();
    io_thread.join();
    loop_->unwatch(signal_fd_.get(), EventLoop::Interest::Readable);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return exit_status_.load();
}

std::chrono::milliseconds Machine::uptime() const {
    const std::int64_t started = run_started_ns_.load(), ended = run_ended_ns_.load();
    const std::int64_t ns = started == 0 ? 0 : (ended != 0 ? ended : steady_ns()) - started;
    return std::chrono::milliseconds(ns / 1'000'000);
}

StatsSnapshot Machine::stats() const {
    StatsSnapshot snapshot;
    snapshot.utc_time_ms = std::uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
    ExitCounters total;
    for (const auto& c : exit_counters_)
        for (std::size_t r = 0; r < ExitCounters::kReasons; ++r)
            total.by_reason[r].fetch_add(c->by_reason[r].load(std::memory_order_relaxed));
    StatsGroup vm{"vm", "", {{"name", config_.name}, {"cpus", config_.cpus}, {"memory_bytes", config_.memory_bytes}},
                  {}};
    vm.counters.emplace_back("uptime_ms", std::uint64_t(uptime().count()));
    append_exit_counts(total, vm.counters);
    vm.counters.emplace_back("posted_writes", posted_writes_->applied());
    vm.counters.emplace_back("posting_watchdog", posted_writes_->watchdog_applied());
    vm.counters.emplace_back("posting_stale", posted_writes_->stale_events());
    snapshot.groups.push_back(std::move(vm));
    for (std::size_t i = 0; i < exit_counters_.size(); ++i) {
        StatsGroup vcpu{fmt::format("vcpu{}", i), "", {}, {}};
        append_exit_counts(*exit_counters_[i], vcpu.counters);
        snapshot.groups.push_back(std::move(vcpu));
    }
    for (const IoBus* bus : {&pio_, &mmio_}) {
        for (const auto* c : bus->counters())
            snapshot.groups.push_back({c->name, bus->name(), {},
                                       {{"reads", c->reads.load(std::memory_order_relaxed)},
                                        {"writes", c->writes.load(std::memory_order_relaxed)}}});
        snapshot.groups.push_back({bus->name() + "-unclaimed", "", {}, {{"accesses", bus->unclaimed_accesses()}}});
    }
    for (const auto& nic : pci_functions_) {
        StatsGroup group{nic->name, "", {{"intx_gsi", nic->intx->gsi()}}, {{"resamples", nic->intx->resamples()}}};
        for (auto& counter : nic->device->counters()) group.counters.push_back(std::move(counter));
        snapshot.groups.push_back(std::move(group));
    }
    return snapshot;
}

void Machine::report_exit(std::FILE* out) {
    if (!metrics_ && config_.stats == StatsMode::Off) return;
    const StatsSnapshot snapshot = stats();
    if (metrics_) metrics_->write(metrics_line(snapshot));
    if (config_.stats == StatsMode::Off) return;
    fmt::print(out, "{}", stats_text(snapshot, config_.stats == StatsMode::All));
    std::fflush(out);
}

}  // namespace xover::vmm
