// vhost-user memory table: regions mapped from memfds, bounds-checked
// guest-physical spans, front-end address translation, refusal of tables
// that overlap or reach past their file, and the shareability test that
// decides whether crossover peers may map the front-end's RAM file.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <limits>

#include "temp_dir.hpp"
#include "xover/vhost_user/memory_table.hpp"

using namespace xover::vhost_user;
using xover::kvm::UniqueFd;
using Catch::Matchers::Contains;

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
constexpr std::uint64_t kUva = 0x7f00'0000'0000;

// A memfd of `size` bytes (sparse), sealed against shrinking unless told.
UniqueFd memfd(std::uint64_t size, bool seal = true) {
    UniqueFd fd(::memfd_create("xover-vhost-mem-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    REQUIRE(fd);
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
    if (seal) REQUIRE(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK) == 0);
    return fd;
}

UniqueFd dup_fd(const UniqueFd& fd) {
    UniqueFd d(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    REQUIRE(d);
    return d;
}

std::vector<UniqueFd> fds_of(std::initializer_list<const UniqueFd*> files) {
    std::vector<UniqueFd> out;
    for (const UniqueFd* f : files) out.push_back(dup_fd(*f));
    return out;
}

int open_fd_count() {
    int n = 0;
    for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// One byte of the file at `offset`, read through the file, not the table.
std::uint8_t file_byte(const UniqueFd& fd, std::uint64_t offset) {
    std::uint8_t b = 0;
    REQUIRE(::pread(fd.get(), &b, 1, static_cast<off_t>(offset)) == 1);
    return b;
}

// QEMU's layout for a small guest (memory-backend-memfd, no high RAM):
// RAM below the VGA hole and RAM above the option ROMs, one file.
struct QemuLikeTable {
    static constexpr std::uint64_t kSize = 16 << 20;
    UniqueFd file = memfd(kSize);
    std::vector<MemoryRegion> regions{
        {0, 0xa0000, kUva, 0},
        {0xc0000, kSize - 0xc0000, kUva + 0xc0000, 0xc0000},
    };
    MemoryTable make() { return MemoryTable(regions, fds_of({&file, &file})); }
};

}  // namespace

TEST_CASE("MemoryTable maps each region at its mmap offset", "[vhost-user]") {
    UniqueFd file = memfd(0x10000);
    MemoryRegion r{0x10000, 0x4000, kUva, 0x2000};
    MemoryTable t(std::span(&r, 1), fds_of({&file}));
    CHECK(t.region_count() == 1);
    CHECK_FALSE(t.empty());

    auto s = t.span(0x10000, 0x4000);
    REQUIRE(s.size() == 0x4000);
    s[0] = 0xab;
    s[0x3fff] = 0xcd;
    CHECK(file_byte(file, 0x2000) == 0xab);
    CHECK(file_byte(file, 0x5fff) == 0xcd);
    std::uint8_t last = 0;
    CHECK(t.read(0x13fff, last));
    CHECK(last == 0xcd);
}

TEST_CASE("MemoryTable spans must lie inside one region", "[vhost-user]") {
    UniqueFd file = memfd(0x10000);
    std::vector<MemoryRegion> regions{
        {0x10000, 0x4000, kUva, 0},
        {0x14000, 0x4000, kUva + 0x8000, 0x4000},  // adjacent in GPA, not in uva
    };
    MemoryTable t(regions, fds_of({&file, &file}));
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

    CHECK(t.span(0x10000, 1).size() == 1);
    CHECK(t.span(0x13fff, 1).size() == 1);
    CHECK(t.span(0x14000, 0x4000).size() == 0x4000);
    CHECK(t.span(0x10000, 0).empty());
    CHECK(t.span(0xffff, 2).empty());          // starts before RAM
    CHECK(t.span(0x13fff, 2).empty());         // straddles two regions
    CHECK(t.span(0x17fff, 2).empty());         // runs past the end
    CHECK(t.span(0x18000, 1).empty());
    CHECK(t.span(0x10000, kMax).empty());      // len overflows
    CHECK(t.span(kMax, 2).empty());            // gpa + len wraps
    CHECK(t.span(kMax - 0x3fff, 0x4000).empty());
}

TEST_CASE("MemoryTable translates front-end addresses to guest-physical", "[vhost-user]") {
    UniqueFd file = memfd(0x10000);
    std::vector<MemoryRegion> regions{
        {0x0, 0x4000, kUva, 0},
        {0x100000, 0x4000, kUva + 0x4000, 0x4000},
    };
    MemoryTable t(regions, fds_of({&file, &file}));
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

    CHECK(t.to_guest_physical(kUva + 0x10, 16) == 0x10u);
    CHECK(t.to_guest_physical(kUva + 0x4000, 0x4000) == 0x100000u);
    CHECK(t.to_guest_physical(kUva + 0x7ff0, 16) == 0x103ff0u);
    CHECK_FALSE(t.to_guest_physical(kUva + 0x3ff0, 0x20));  // straddles regions (contiguous uva, not GPA)
    CHECK_FALSE(t.to_guest_physical(kUva + 0x7ff0, 0x11));
    CHECK_FALSE(t.to_guest_physical(kUva - 1, 2));
    CHECK_FALSE(t.to_guest_physical(kUva, 0));
    CHECK_FALSE(t.to_guest_physical(kMax, 2));
    CHECK_FALSE(t.to_guest_physical(kUva, kMax));
}

TEST_CASE("MemoryTable refuses overlapping regions", "[vhost-user]") {
    UniqueFd file = memfd(0x10000);
    SECTION("in guest-physical addresses") {
        std::vector<MemoryRegion> regions{{0x0, 0x4000, kUva, 0}, {0x3000, 0x4000, kUva + 0x10000, 0x4000}};
        CHECK_THROWS_WITH(MemoryTable(regions, fds_of({&file, &file})), Contains("overlap"));
    }
    SECTION("in front-end addresses") {
        std::vector<MemoryRegion> regions{{0x0, 0x4000, kUva, 0}, {0x10000, 0x4000, kUva + 0x1000, 0x4000}};
        CHECK_THROWS_AS(MemoryTable(regions, fds_of({&file, &file})), ProtocolError);
    }
    SECTION("one region inside another") {
        std::vector<MemoryRegion> regions{{0x0, 0x8000, kUva, 0}, {0x1000, 0x1000, kUva + 0x10000, 0x1000}};
        CHECK_THROWS_AS(MemoryTable(regions, fds_of({&file, &file})), ProtocolError);
    }
}

TEST_CASE("MemoryTable refuses regions its file cannot back", "[vhost-user]") {
    UniqueFd file = memfd(0x4000);
    int before = open_fd_count();
    SECTION("offset + size beyond the file's size") {
        MemoryRegion r{0, 0x4000, kUva, 0x1000};
        CHECK_THROWS_WITH(MemoryTable(std::span(&r, 1), fds_of({&file})),
                          Contains("region 0: offset+size beyond the file's size"));
    }
    SECTION("an unaligned mmap offset") {
        MemoryRegion r{0, 0x1000, kUva, 0x800};
        CHECK_THROWS_AS(MemoryTable(std::span(&r, 1), fds_of({&file})), ProtocolError);
    }
    SECTION("a second region beyond the file after a good first one") {
        std::vector<MemoryRegion> regions{{0, 0x1000, kUva, 0}, {0x10000, 0x4000, kUva + 0x10000, 0x1000}};
        CHECK_THROWS_WITH(MemoryTable(regions, fds_of({&file, &file})), Contains("region 1"));
    }
    SECTION("a wrapping region") {
        MemoryRegion r{0xffff'ffff'ffff'f000, 0x2000, kUva, 0};
        CHECK_THROWS_AS(MemoryTable(std::span(&r, 1), fds_of({&file})), ProtocolError);
    }
    SECTION("an empty region") {
        MemoryRegion r{0, 0, kUva, 0};
        CHECK_THROWS_AS(MemoryTable(std::span(&r, 1), fds_of({&file})), ProtocolError);
    }
    SECTION("regions and fds that do not match") {
        std::vector<MemoryRegion> regions{{0, 0x1000, kUva, 0}, {0x1000, 0x1000, kUva + 0x1000, 0x1000}};
        CHECK_THROWS_AS(MemoryTable(regions, fds_of({&file})), ProtocolError);
    }
    SECTION("an invalid fd") {
        MemoryRegion r{0, 0x1000, kUva, 0};
        std::vector<UniqueFd> none;
        none.emplace_back();
        CHECK_THROWS_AS(MemoryTable(std::span(&r, 1), std::move(none)), ProtocolError);
    }
    SECTION("nine regions") {
        std::vector<MemoryRegion> regions;
        std::vector<UniqueFd> fds;
        for (std::uint64_t i = 0; i < 9; ++i) {
            regions.push_back({i * 0x1000, 0x1000, kUva + i * 0x1000, 0});
            fds.push_back(dup_fd(file));
        }
        CHECK_THROWS_AS(MemoryTable(regions, std::move(fds)), ProtocolError);
    }
    CHECK(open_fd_count() == before);  // the refused tables' fds are closed
}

TEST_CASE("a QEMU-like memfd layout is shareable", "[vhost-user]") {
    QemuLikeTable q;
    MemoryTable t = q.make();
    auto ram = t.ram_file();
    REQUIRE(ram);
    CHECK(ram->size == QemuLikeTable::kSize);
    CHECK(t.not_shareable_reason().empty());
    // The RAM file peers get is the front-end's file.
    auto s = t.span(0xc0000, 1);
    REQUIRE(s.size() == 1);
    s[0] = 0x5a;
    std::uint8_t b = 0;
    REQUIRE(::pread(ram->fd, &b, 1, 0xc0000) == 1);
    CHECK(b == 0x5a);
}

TEST_CASE("RAM above 4 GiB is shareable at offset GPA - 1 GiB", "[vhost-user]") {
    // Sparse: the file is 3 GiB + 1 MiB of address space, not of memory.
    UniqueFd file = memfd(3 * kGiB + (1 << 20));
    std::vector<MemoryRegion> regions{
        {0, 1 << 20, kUva, 0},
        {4 * kGiB, 1 << 20, kUva + 4 * kGiB, 3 * kGiB},
    };
    MemoryTable t(regions, fds_of({&file, &file}));
    REQUIRE(t.ram_file());
    CHECK(t.ram_file()->size == 3 * kGiB + (1 << 20));
}

TEST_CASE("layouts other than xover's are not shareable", "[vhost-user]") {
    SECTION("two different memfds") {
        UniqueFd a = memfd(0x10000), b = memfd(0x10000);
        std::vector<MemoryRegion> regions{{0, 0x1000, kUva, 0}, {0x2000, 0x1000, kUva + 0x2000, 0x2000}};
        MemoryTable t(regions, fds_of({&a, &b}));
        CHECK_FALSE(t.ram_file());
        CHECK_THAT(t.not_shareable_reason(), Contains("different files"));
        CHECK(t.span(0x2000, 0x1000).size() == 0x1000);  // still usable memory
    }
    SECTION("an unsealed memfd") {
        UniqueFd a = memfd(0x10000, false);
        MemoryRegion r{0, 0x10000, kUva, 0};
        MemoryTable t(std::span(&r, 1), fds_of({&a}));
        CHECK_FALSE(t.ram_file());
        CHECK_THAT(t.not_shareable_reason(), Contains("sealed"));
    }
    SECTION("a memfd that cannot be sealed") {
        UniqueFd a(::memfd_create("xover-vhost-mem-test", MFD_CLOEXEC));
        REQUIRE(::ftruncate(a.get(), 0x10000) == 0);
        MemoryRegion r{0, 0x10000, kUva, 0};
        MemoryTable t(std::span(&r, 1), fds_of({&a}));
        CHECK_FALSE(t.ram_file());
        CHECK_FALSE(t.not_shareable_reason().empty());
    }
    SECTION("a plain file") {
        xover::test::TempDir dir("xover-vhost");
        UniqueFd a(::open((dir.path / "ram").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        REQUIRE(a);
        REQUIRE(::ftruncate(a.get(), 0x10000) == 0);
        MemoryRegion r{0, 0x10000, kUva, 0};
        MemoryTable t(std::span(&r, 1), fds_of({&a}));
        CHECK_FALSE(t.ram_file());
        CHECK_FALSE(t.not_shareable_reason().empty());
    }
    SECTION("file offset differs from the GPA") {
        UniqueFd a = memfd(0x10000);
        MemoryRegion r{0x1000, 0x1000, kUva, 0x2000};
        MemoryTable t(std::span(&r, 1), fds_of({&a}));
        CHECK_FALSE(t.ram_file());
        CHECK_THAT(t.not_shareable_reason(), Contains("offset"));
    }
    SECTION("high RAM at offset = GPA") {
        UniqueFd a = memfd(4 * kGiB + 0x1000);
        MemoryRegion r{4 * kGiB, 0x1000, kUva, 4 * kGiB};
        MemoryTable t(std::span(&r, 1), fds_of({&a}));
        CHECK_FALSE(t.ram_file());
    }
    SECTION("a region between 3 and 4 GiB") {
        UniqueFd a = memfd(3 * kGiB + 0x1000);
        MemoryRegion r{3 * kGiB, 0x1000, kUva, 3 * kGiB};
        MemoryTable t(std::span(&r, 1), fds_of({&a}));
        CHECK_FALSE(t.ram_file());
        CHECK_THAT(t.not_shareable_reason(), Contains("3 and 4 GiB"));
    }
    SECTION("low RAM crossing 3 GiB") {
        UniqueFd a = memfd(3 * kGiB + 0x1000);
        MemoryRegion r{3 * kGiB - 0x1000, 0x2000, kUva, 3 * kGiB - 0x1000};
        MemoryTable t(std::span(&r, 1), fds_of({&a}));
        CHECK_FALSE(t.ram_file());
        CHECK_THAT(t.not_shareable_reason(), Contains("3 GiB"));
    }
}

TEST_CASE("an empty MemoryTable is empty memory", "[vhost-user]") {
    MemoryTable t;
    CHECK(t.empty());
    CHECK(t.region_count() == 0);
    CHECK(t.span(0, 1).empty());
    CHECK_FALSE(t.to_guest_physical(0, 1));
    CHECK_FALSE(t.ram_file());
    CHECK_FALSE(t.not_shareable_reason().empty());
}

TEST_CASE("moving a MemoryTable leaves the source empty", "[vhost-user]") {
    int before = open_fd_count();
    {
        QemuLikeTable q;
        MemoryTable a = q.make();
        MemoryTable b(std::move(a));
        CHECK(a.empty());
        CHECK(a.span(0, 1).empty());
        CHECK_FALSE(a.ram_file());
        REQUIRE(b.ram_file());
        CHECK(b.span(0, 1).size() == 1);

        MemoryTable c;
        c = std::move(b);
        CHECK(b.empty());
        CHECK_FALSE(b.ram_file());
        CHECK(c.region_count() == 2);
        REQUIRE(c.ram_file());

        // Assigning over a live table unmaps it and closes its fds.
        QemuLikeTable r;
        c = r.make();
        CHECK(c.region_count() == 2);
        REQUIRE(c.ram_file());
        c = MemoryTable();
        CHECK(c.empty());
    }
    CHECK(open_fd_count() == before);
}
