// `xover counters`: every counter a NIC's `--stats` line can hold, with its
// meaning, listed from the counters' declarations (net/counter_set.hpp).
#include <cstdio>

#include <fmt/format.h>

#include "commands.hpp"
#include "xover/crossover/crossover_port.hpp"
#include "xover/devices/vhost_user_net_counters.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/virtio_net/virtio_net.hpp"

namespace xover::cli {

namespace {

void print_set(const char* title, const std::vector<net::CounterInfo>& counters) {
    fmt::print("{}\n", title);
    for (const auto& c : counters) fmt::print("  {:<34} {}\n", c.name, c.meaning);
}

}  // namespace

CommandAction add_counters_command(CLI::App& app) {
    auto* counters = app.add_subcommand("counters", "List the NIC counters --stats prints, with their meanings");
    return [counters]() -> int {
        if (!counters->parsed()) return -1;
        print_set("e1000 NIC (stats: nicN-e1000):", e1000::E1000::counter_info());
        print_set("virtio-net NIC (stats: nicN-virtio-net):", virtio_net::VirtioNet::counter_info());
        print_set("then, on a NIC with a crossover:", crossover::CrossoverPort::counter_info());
        auto vhost_user = devices::VhostUserNetCounters::info();
        for (auto& c : virtio_net::VirtioPciDevice::transport_counter_info()) vhost_user.push_back(std::move(c));
        print_set("virtio-net NIC on a vhost-user back-end (backend=vhost-user:PATH):", vhost_user);
        std::fflush(stdout);
        return 0;
    };
}

}  // namespace xover::cli
