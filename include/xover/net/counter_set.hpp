// Counter sets: every counter is declared once, on one line of a list
// macro, with its printed name and a one-line meaning. The fields that
// store the counters, the name=value pairs `--stats` prints and the
// listing of meanings (`xover counters`) are all generated from that line.
//
// Why a list macro (an "X-macro"): C++20 cannot enumerate a struct's
// fields. A struct plus a hand-written name list (what this replaced)
// drifts: a counter gets added but never printed, or printed under a
// stale name, and its meaning lives in a comment if anywhere. A constexpr
// table of {"name", &Struct::field} still spells each counter twice.
//
//   // X: a counter the code bumps (a field of the set).
//   // V: a value computed when printed (a table's size, a word of a
//   //    shared page); it has no field, the printer supplies it.
//   #define XOVER_FOO_COUNTERS(X, V)
//       X(tx_frames, "frames the guest transmitted")
//       V(links, "links up when printed")
//   struct FooCounters {
//       XOVER_COUNTER_SET(XOVER_FOO_COUNTERS, "foo_", std::uint64_t)
//   };
//
//   ++c.tx_frames;                   // counting: the fields are plain members
//   c.append_to(out, {.links = n});  // printing: foo_tx_frames=.. foo_links=..
//   FooCounters::info()              // {"foo_tx_frames", "frames the ..."}, ...
//
// The printed name is the prefix plus the field's name; counters are
// printed in list order. The field type is std::uint64_t for counters
// bumped under a lock, Counter for ones bumped on one thread and read on
// another. A set may hold other members after the macro (not printed).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace xover::net {

// name=value pairs, printed in order (`--stats`, the backends).
using Counters = std::vector<std::pair<std::string, std::uint64_t>>;

// A counter bumped on one thread and read by --stats on another.
class Counter {
public:
    void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

inline std::uint64_t counter_value(std::uint64_t value) { return value; }
inline std::uint64_t counter_value(const Counter& counter) { return counter.get(); }

// One counter as printed, and what it means.
struct CounterInfo {
    std::string name;
    std::string_view meaning;
};

}  // namespace xover::net

// Inside a struct: the set's fields, its Computed values (V entries),
// info(), and append_to(out[, computed]).
#define XOVER_COUNTER_SET(LIST, PREFIX, TYPE)                                                         \
    using counter_type = TYPE;                                                                        \
    static constexpr std::string_view kCounterPrefix = PREFIX;                                        \
    LIST(XOVER_COUNTER_FIELD_, XOVER_COUNTER_NONE_)                                                   \
    struct Computed {                                                                                 \
        LIST(XOVER_COUNTER_NONE_, XOVER_COUNTER_COMPUTED_FIELD_)                                      \
    };                                                                                                \
    static std::vector<::xover::net::CounterInfo> info() {                                            \
        return {LIST(XOVER_COUNTER_INFO_, XOVER_COUNTER_INFO_)};                                      \
    }                                                                                                 \
    void append_to(::xover::net::Counters& out, [[maybe_unused]] const Computed& computed) const {    \
        LIST(XOVER_COUNTER_APPEND_, XOVER_COUNTER_APPEND_COMPUTED_)                                   \
    }                                                                                                 \
    /* A set with V entries must be given their values. */                                           \
    template <typename C = Computed>                                                                  \
    void append_to(::xover::net::Counters& out) const {                                               \
        static_assert(std::is_empty_v<C>, "this counter set has computed (V) counters: pass them");   \
        append_to(out, C{});                                                                          \
    }

#define XOVER_COUNTER_NONE_(name, meaning)
#define XOVER_COUNTER_FIELD_(name, meaning) counter_type name{};
#define XOVER_COUNTER_COMPUTED_FIELD_(name, meaning) std::uint64_t name = 0;
#define XOVER_COUNTER_INFO_(name, meaning) {std::string(kCounterPrefix) + #name, meaning},
#define XOVER_COUNTER_APPEND_(name, meaning) \
    out.emplace_back(std::string(kCounterPrefix) + #name, ::xover::net::counter_value(name));
#define XOVER_COUNTER_APPEND_COMPUTED_(name, meaning) \
    out.emplace_back(std::string(kCounterPrefix) + #name, computed.name);
