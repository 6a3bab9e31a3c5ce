// The message of the xover::Error a call throws, for tests that check
// messages byte for byte; "(no error)" when it throws nothing.
#pragma once

#include <string>

#include "xover/error.hpp"

namespace xover::test {

template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const xover::Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace xover::test
