// A fresh directory under /tmp for one test, removed with everything in it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace xover::test {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& prefix = "xover-test") {
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;  // a destructor must not throw
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

}  // namespace xover::test
