// The broker's status as JSON (`xover status --json`), written as every
// xover JSON text is (xover/json.hpp).
#pragma once

#include "xover/json.hpp"

namespace xover::crossover {

using xover::Json;
using xover::json_line;

}  // namespace xover::crossover
