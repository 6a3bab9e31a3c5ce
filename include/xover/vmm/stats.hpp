// A VM's counters at one moment (Machine::stats()), grouped by what they
// belong to: the VM, each vCPU, each device's accesses on a bus, each NIC.
// The `--stats` lines and the `--metrics` JSON lines are both made from a
// snapshot, so the two never disagree and each counter has one name. Units
// go in the names (`memory_bytes`, `uptime_ms`); a name without a unit is
// a count (frames, exits, accesses).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "xover/json.hpp"

namespace xover::vmm {

// name=count pairs in order: what PciDevice::counters() returns.
using StatCounters = std::vector<std::pair<std::string, std::uint64_t>>;

// What a group is rather than what it did (a name, a size, an interrupt
// line): shown whatever its value.
using StatFact = std::pair<std::string, std::variant<std::string, std::uint64_t>>;

struct StatsGroup {
    std::string name;              // "vm", "vcpu0", "serial", "nic0-e1000", "pio-unclaimed"
    std::string bus;               // "pio" / "mmio": these are a device's accesses on that bus
    std::vector<StatFact> facts;   // name, cpus, memory_bytes, intx_gsi
    StatCounters counters;
};

struct StatsSnapshot {
    std::uint64_t utc_time_ms = 0;  // when it was taken (milliseconds since 1970, UTC)
    std::vector<StatsGroup> groups;
};

// The `--stats` text, a line a group:
//   stats: <name>[ bus=<bus>] <fact>=<value>... <counter>=<count>...
// Unless `all`, counters that are 0 are left out, and so is a group that
// then has neither a fact nor a counter to show.
std::string stats_text(const StatsSnapshot& snapshot, bool all);

// A `--metrics` line: one JSON object, on one line ending in '\n',
//   {"utc_time_ms":T,"vm":{...},"vcpu0":{...},"pio":{"serial":{...},...},...}
// with each group an object of its facts and every counter (zeros too, so
// that readers find every key in every line); a bus's devices are objects
// in the bus's object.
std::string metrics_line(const StatsSnapshot& snapshot);
// That object (the control API's GET /vm/counters answers it).
Json stats_json(const StatsSnapshot& snapshot);

}  // namespace xover::vmm
