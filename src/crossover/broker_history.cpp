// What `xover status` says about the broker's life: when it started, how
// VMs registered (again, after a restart) and how its links came to be.
#include <ctime>

#include <fmt/format.h>

#include "xover/crossover/broker_state.hpp"

namespace xover::crossover {

namespace {

// UTC, to the second: one reading whatever the host's time zone.
std::string utc(std::chrono::system_clock::time_point t) {
    std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&seconds, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

}  // namespace

std::string BrokerState::history_text() const {
    std::string sounds;
    if (history_.sound_links_formed || history_.sound_links_refused)
        sounds = fmt::format("; sound links {} formed, {} refused", history_.sound_links_formed,
                             history_.sound_links_refused);
    return fmt::format("Broker: started {}; {} registration(s), {} again; links {} formed, {} adopted, {} refused "
                       "at adoption{}\n",
                       utc(history_.started), history_.registrations, history_.re_registrations,
                       history_.links_formed, history_.links_adopted, history_.links_refused, sounds);
}

std::string BrokerState::registrations_text() const {
    std::string out;
    for (const auto& [name, vm] : vms_)
        out += fmt::format("{}{} #{} {}", out.empty() ? "Registered: " : ", ", name, vm.earlier_registrations + 1,
                           utc(vm.registered_at));
    return out.empty() ? out : out + "\n";
}

void BrokerState::add_registration(Json& vm_json, const Vm& vm) {
    vm_json["registration"] = vm.earlier_registrations + 1;
    vm_json["registered_at"] = utc(vm.registered_at);
}

Json BrokerState::history_json() const {
    return Json{{"started", utc(history_.started)},
                {"registrations", history_.registrations},
                {"re_registrations", history_.re_registrations},
                {"links_formed", history_.links_formed},
                {"links_adopted", history_.links_adopted},
                {"links_refused", history_.links_refused},
                {"sound_links_formed", history_.sound_links_formed},
                {"sound_links_refused", history_.sound_links_refused}};
}

}  // namespace xover::crossover
