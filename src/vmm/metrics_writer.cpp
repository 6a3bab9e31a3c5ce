#include "xover/vmm/metrics_writer.hpp"

#include <fcntl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "xover/error.hpp"

namespace xover::vmm {

MetricsWriter::MetricsWriter(const std::filesystem::path& path, std::chrono::nanoseconds interval, EventLoop& loop,
                             LineSource line)
    : path_(path.string()), loop_(loop), line_(std::move(line)) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw system_error(fmt::format("--metrics: cannot open \"{}\"", path_));
    file_.reset(fd);
    fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) throw system_error("timerfd_create for --metrics");
    timer_.reset(fd);
    itimerspec spec{};
    const auto ns = std::max<std::int64_t>(interval.count(), 1);
    spec.it_value.tv_sec = spec.it_interval.tv_sec = time_t(ns / 1'000'000'000);
    spec.it_value.tv_nsec = spec.it_interval.tv_nsec = long(ns % 1'000'000'000);
    if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) < 0) throw system_error("timerfd_settime for --metrics");
    loop_.watch(timer_.get(), EventLoop::Interest::Readable, [this] { tick(); });
}

MetricsWriter::~MetricsWriter() { loop_.unwatch(timer_.get(), EventLoop::Interest::Readable); }

void MetricsWriter::tick() {
    std::uint64_t expirations = 0;
    if (::read(timer_.get(), &expirations, sizeof expirations) != sizeof expirations) return;
    write(line_());
}

void MetricsWriter::write(const std::string& line) {
    std::lock_guard lock(mutex_);
    std::string_view rest = line;
    while (!rest.empty()) {
        ssize_t n = ::write(file_.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : ENOSPC;
            failed_.fetch_add(1, std::memory_order_relaxed);
            if (failure_log_.allow())
                spdlog::warn("--metrics: cannot write to \"{}\": {} (the VM goes on; at most one such line an hour)",
                             path_, std::strerror(err));
            return;
        }
        rest.remove_prefix(std::size_t(n));
    }
    lines_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace xover::vmm
