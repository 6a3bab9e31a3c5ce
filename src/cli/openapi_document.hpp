// docs/openapi.json, compiled into the binary (CMakeLists.txt generates
// its definition): `xover ctl` finds its verbs there.
#pragma once

namespace xover::cli {

extern const char* const kOpenApiDocument;

}  // namespace xover::cli
