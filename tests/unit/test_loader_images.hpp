// Builders for synthetic kernel images used by the loader tests: a minimal
// ELF (32 or 64-bit) with optional PVH note, a minimal bzImage, and a
// temporary file that deletes itself.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace xover::test {

class TempFile {
public:
    explicit TempFile(const std::vector<std::uint8_t>& data, const std::string& stem = "image") {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("xover-test-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        std::ofstream out(path_, std::ios::binary);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    }
    ~TempFile() {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Appends little-endian integers to a byte vector, or patches them in place.
inline void put(std::vector<std::uint8_t>& v, std::size_t off, std::uint64_t value, std::size_t width) {
    if (v.size() < off + width) v.resize(off + width);
    for (std::size_t i = 0; i < width; ++i) v[off + i] = std::uint8_t(value >> (8 * i));
}

struct ElfSpec {
    bool elf64 = true;
    std::uint64_t paddr = 0x100000;         // where the one PT_LOAD goes
    std::vector<std::uint8_t> code = {0xf4, 0xeb, 0xfd};  // hlt; jmp
    std::uint64_t bss = 0x100;              // memsz - filesz
    bool pvh_note = true;
    std::uint64_t pvh_entry = 0x100000;
    std::uint32_t note_descsz = 4;
    bool note_in_section_only = false;      // put the note in an SHT_NOTE section, no PT_NOTE
};

// File layout: ELF header | 2 program headers | note | code | (section headers).
inline std::vector<std::uint8_t> make_elf(const ElfSpec& s) {
    const std::size_t ehsize = s.elf64 ? 64 : 52, phentsize = s.elf64 ? 56 : 32, shentsize = s.elf64 ? 64 : 40;
    const std::size_t phnum = 2;
    const std::size_t note_off = ehsize + phnum * phentsize;
    std::vector<std::uint8_t> note;
    if (s.pvh_note) {
        // Another vendor's note first, so the walker must skip it.
        put(note, 0, 4, 4), put(note, 4, 4, 4), put(note, 8, 1, 4);
        note.insert(note.end(), {'G', 'N', 'U', 0, 1, 2, 3, 4});
        std::size_t n = note.size();
        put(note, n, 4, 4), put(note, n + 4, s.note_descsz, 4), put(note, n + 8, 18, 4);
        note.insert(note.end(), {'X', 'e', 'n', 0});
        put(note, note.size(), s.pvh_entry, s.note_descsz);
    }
    const std::size_t code_off = (note_off + note.size() + 15) & ~std::size_t(15);
    const std::size_t sh_off = code_off + s.code.size() + 16;

    std::vector<std::uint8_t> f(code_off + s.code.size());
    std::memcpy(f.data(), "\x7f" "ELF", 4);
    f[4] = s.elf64 ? 2 : 1;  // class
    f[5] = 1;                // little endian
    f[6] = 1;                // version
    put(f, 16, 2, 2);                         // ET_EXEC
    put(f, 18, s.elf64 ? 62 : 3, 2);          // machine
    put(f, 20, 1, 4);
    if (s.elf64) {
        put(f, 24, s.paddr, 8), put(f, 32, ehsize, 8), put(f, 52, ehsize, 2), put(f, 54, phentsize, 2);
        put(f, 56, phnum, 2), put(f, 58, shentsize, 2);
    } else {
        put(f, 24, s.paddr, 4), put(f, 28, ehsize, 4), put(f, 40, ehsize, 2), put(f, 42, phentsize, 2);
        put(f, 44, phnum, 2), put(f, 46, shentsize, 2);
    }
    auto phdr = [&](std::size_t i, std::uint32_t type, std::uint64_t off, std::uint64_t paddr, std::uint64_t filesz,
                    std::uint64_t memsz) {
        const std::size_t h = ehsize + i * phentsize;
        if (s.elf64) {
            put(f, h, type, 4), put(f, h + 8, off, 8), put(f, h + 16, paddr, 8), put(f, h + 24, paddr, 8);
            put(f, h + 32, filesz, 8), put(f, h + 40, memsz, 8);
        } else {
            put(f, h, type, 4), put(f, h + 4, off, 4), put(f, h + 8, paddr, 4), put(f, h + 12, paddr, 4);
            put(f, h + 16, filesz, 4), put(f, h + 20, memsz, 4);
        }
    };
    phdr(0, 1, code_off, s.paddr, s.code.size(), s.code.size() + s.bss);
    // PT_NOTE, or PT_NULL when the note lives only in a section.
    phdr(1, s.note_in_section_only ? 0 : 4, note_off, 0, note.size(), note.size());
    std::copy(note.begin(), note.end(), f.begin() + note_off);
    std::copy(s.code.begin(), s.code.end(), f.begin() + code_off);

    if (s.note_in_section_only) {
        // Two section headers: the null section and the SHT_NOTE one.
        f.resize(sh_off + 2 * shentsize);
        const std::size_t h = sh_off + shentsize;
        if (s.elf64) {
            put(f, 40, sh_off, 8), put(f, 60, 2, 2);
            put(f, h + 4, 7, 4), put(f, h + 0x18, note_off, 8), put(f, h + 0x20, note.size(), 8);
        } else {
            put(f, 32, sh_off, 4), put(f, 48, 2, 2);
            put(f, h + 4, 7, 4), put(f, h + 0x10, note_off, 4), put(f, h + 0x14, note.size(), 4);
        }
    }
    return f;
}

struct BzImageSpec {
    std::uint16_t version = 0x020f;
    std::uint16_t xloadflags = 1;  // XLF_KERNEL_64
    std::uint8_t loadflags = 1;    // LOADED_HIGH
    std::uint8_t setup_sects = 3;
    std::uint64_t pref_address = 0x1000000;
    std::uint32_t init_size = 0x200000;
    std::uint32_t initrd_addr_max = 0x7fffffff;
    std::uint32_t cmdline_size = 2048;
    std::uint8_t relocatable = 1;
    std::size_t payload = 0x3000;
};

inline std::vector<std::uint8_t> make_bzimage(const BzImageSpec& s) {
    const std::size_t setup_bytes = (std::size_t(s.setup_sects) + 1) * 512;
    std::vector<std::uint8_t> f(setup_bytes + s.payload, 0);
    f[0x1f1] = s.setup_sects;
    put(f, 0x1fe, 0xaa55, 2);
    f[0x200] = 0xeb;
    f[0x201] = 0x68 - 2;                // jump over the header: header ends at 0x268
    std::memcpy(f.data() + 0x202, "HdrS", 4);
    put(f, 0x206, s.version, 2);
    f[0x211] = s.loadflags;
    put(f, 0x214, 0x100000, 4);         // code32_start (we overwrite it)
    put(f, 0x22c, s.initrd_addr_max, 4);
    put(f, 0x230, 0x200000, 4);         // kernel_alignment
    f[0x234] = s.relocatable;
    put(f, 0x236, s.xloadflags, 2);
    put(f, 0x238, s.cmdline_size, 4);
    put(f, 0x258, s.pref_address, 8);
    put(f, 0x260, s.init_size, 4);
    for (std::size_t i = 0; i < s.payload; ++i) f[setup_bytes + i] = std::uint8_t(i * 7 + 1);
    return f;
}

}  // namespace xover::test
