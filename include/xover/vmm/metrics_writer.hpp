// `--metrics PATH`: a VM's counters as one JSON object a line
// (vmm/stats.hpp's metrics_line), appended every interval and once more
// at exit, as Firecracker writes its metrics. The file is opened when the
// writer is made (before the sandbox: O_APPEND, created 0644) and each line
// is one write(2) on it; the interval is a periodic timerfd armed here too,
// so at run time the writer needs no syscall a VMM does not make anyway
// (read and write). Ticks run on the VM's I/O thread, in its event loop.
//
// A write that fails (a full disk, a file system gone read-only) is logged
// (the first time, then at most once an hour with a count) and never stops
// the VM: the next tick tries again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

#include "xover/kvm/unique_fd.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::vmm {

class MetricsWriter {
public:
    // Makes the line to write: called on the loop thread at each tick.
    using LineSource = std::function<std::string()>;

    // Opens `path` and arms the tick on `loop` every `interval`. Throws
    // xover::Error naming the path on failure.
    MetricsWriter(const std::filesystem::path& path, std::chrono::nanoseconds interval, EventLoop& loop,
                  LineSource line);
    // Stops watching the timer; call it with the loop stopped, or from
    // its thread.
    ~MetricsWriter();
    MetricsWriter(const MetricsWriter&) = delete;
    MetricsWriter& operator=(const MetricsWriter&) = delete;

    // Appends `line` (one JSON object and its '\n') now: what a tick does
    // with its source's line, and the machine at exit. Thread-safe.
    void write(const std::string& line);

    std::uint64_t lines_written() const { return lines_.load(std::memory_order_relaxed); }
    std::uint64_t failed_writes() const { return failed_.load(std::memory_order_relaxed); }

private:
    void tick();

    std::string path_;
    kvm::UniqueFd file_;
    kvm::UniqueFd timer_;
    EventLoop& loop_;
    LineSource line_;
    std::mutex mutex_;  // one line at a time (a tick, the exit line)
    std::atomic<std::uint64_t> lines_{0};
    std::atomic<std::uint64_t> failed_{0};
    RateLimitedLog failure_log_{1, std::chrono::hours(1)};
};

}  // namespace xover::vmm
