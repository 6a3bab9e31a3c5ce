// request_short_slice(): the I/O thread's scheduling hint takes effect on
// the calling thread only, where the kernel supports custom slices.
#include <catch2/catch.hpp>

#include <thread>

#include "xover/vmm/thread_latency.hpp"

using namespace xover;

TEST_CASE("thread latency: a short slice applies to the calling thread only") {
    long before = vmm::current_slice_ns();
    bool applied = false;
    long inside = 0;
    std::thread t([&] {
        applied = vmm::request_short_slice(100000);
        inside = vmm::current_slice_ns();
    });
    t.join();
    if (!applied) {
        WARN("this kernel keeps default slices; nothing to check");
        return;
    }
    CHECK(inside == 100000);
    CHECK(vmm::current_slice_ns() == before);  // this thread is untouched
}
