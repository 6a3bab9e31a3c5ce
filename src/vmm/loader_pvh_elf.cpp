// PVH ELF loader: loads the PT_LOAD segments of an ELF32 or ELF64 kernel at
// their physical addresses, finds the entry in the Xen PHYS32_ENTRY note,
// and writes struct hvm_start_info (command line, initrd module, memory map)
// at layout::kStartInfoAddr.
#include <algorithm>
#include <cstring>
#include <optional>

#include "loader_internal.hpp"
#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"
#include "xover/vmm/pvh_abi.hpp"

namespace xover::vmm::loader_detail {

namespace {

constexpr std::uint32_t kPtLoad = 1;
constexpr std::uint32_t kPtNote = 4;
constexpr std::uint32_t kShtNote = 7;
constexpr std::uint16_t kEmX86 = 3;
constexpr std::uint16_t kEmX86_64 = 62;

// Everything below the end of the command-line area belongs to xover's boot
// structures (layout.hpp); a kernel may not load over them.
constexpr std::uint64_t kBootAreaEnd = layout::kCmdlineAddr + layout::kCmdlineMax;

// The fields we use from a program or section header, class-independent.
struct Segment {
    std::uint32_t type;
    std::uint64_t offset;
    std::uint64_t paddr;
    std::uint64_t filesz;
    std::uint64_t memsz;
};

class ElfImage {
public:
    ElfImage(std::span<const std::uint8_t> image, const std::filesystem::path& path) : image_(image), path_(path) {
        if (image.size() < 52) fail("truncated ELF header");
        if (image[5] != 1) fail("not a little-endian ELF");
        if (image[4] == 1) is64_ = false;
        else if (image[4] == 2) is64_ = true;
        else fail("unknown ELF class");
        if (is64_ && image.size() < 64) fail("truncated ELF header");
        auto machine = u16(18);
        if (machine != kEmX86 && machine != kEmX86_64) fail(fmt::format("ELF machine {} is not x86", machine));
    }

    std::vector<Segment> program_headers() const {
        const std::uint64_t phoff = is64_ ? u64(0x20) : u32(0x1c);
        const std::uint16_t phentsize = is64_ ? u16(0x36) : u16(0x2a);
        const std::uint16_t phnum = is64_ ? u16(0x38) : u16(0x2c);
        if (phentsize < (is64_ ? 56u : 32u) && phnum > 0) fail("bad program header size");
        check_range(phoff, std::uint64_t(phentsize) * phnum, "program headers");
        std::vector<Segment> out;
        for (std::uint16_t i = 0; i < phnum; ++i) {
            const std::uint64_t h = phoff + std::uint64_t(i) * phentsize;
            if (is64_)
                out.push_back({u32(h), u64(h + 8), u64(h + 24), u64(h + 32), u64(h + 40)});
            else
                out.push_back({u32(h), u32(h + 4), u32(h + 12), u32(h + 16), u32(h + 20)});
        }
        return out;
    }

    // SHT_NOTE sections as (offset, size) in Segment form; used when the
    // kernel has no PT_NOTE program header.
    std::vector<Segment> note_sections() const {
        const std::uint64_t shoff = is64_ ? u64(0x28) : u32(0x20);
        const std::uint16_t shentsize = is64_ ? u16(0x3a) : u16(0x2e);
        const std::uint16_t shnum = is64_ ? u16(0x3c) : u16(0x30);
        std::vector<Segment> out;
        if (shoff == 0 || shnum == 0) return out;
        if (shentsize < (is64_ ? 64u : 40u)) fail("bad section header size");
        check_range(shoff, std::uint64_t(shentsize) * shnum, "section headers");
        for (std::uint16_t i = 0; i < shnum; ++i) {
            const std::uint64_t h = shoff + std::uint64_t(i) * shentsize;
            if (u32(h + 4) != kShtNote) continue;
            if (is64_)
                out.push_back({kPtNote, u64(h + 0x18), 0, u64(h + 0x20), u64(h + 0x20)});
            else
                out.push_back({kPtNote, u32(h + 0x10), 0, u32(h + 0x14), u32(h + 0x14)});
        }
        return out;
    }

    // Walks the notes in [offset, offset + size) and returns the descriptor
    // of the first note named `name` with type `type`.
    std::optional<std::uint64_t> find_note(const Segment& notes, std::string_view name, std::uint32_t type) const {
        check_range(notes.offset, notes.filesz, "note segment");
        std::uint64_t pos = notes.offset;
        const std::uint64_t end = notes.offset + notes.filesz;
        while (end - pos >= 12) {
            const std::uint32_t namesz = u32(pos), descsz = u32(pos + 4), ntype = u32(pos + 8);
            const std::uint64_t name_at = pos + 12;
            const std::uint64_t desc_at = name_at + align_up(namesz, 4);
            const std::uint64_t next = desc_at + align_up(descsz, 4);
            if (next > end) break;  // a truncated note ends the walk
            std::string_view note_name(reinterpret_cast<const char*>(image_.data() + name_at), namesz);
            if (!note_name.empty() && note_name.back() == '\0') note_name.remove_suffix(1);
            if (ntype == type && note_name == name) {
                if (descsz == 4) return u32(desc_at);
                if (descsz == 8) return u64(desc_at);
                fail(fmt::format("Xen note type {} has a {}-byte descriptor", type, descsz));
            }
            pos = next;
        }
        return std::nullopt;
    }

    void check_range(std::uint64_t offset, std::uint64_t size, std::string_view what) const {
        if (offset > image_.size() || size > image_.size() - offset)
            fail(fmt::format("{} at file offset {:#x} (+{:#x}) lie past the end of the file", what, offset, size));
    }

    [[noreturn]] void fail(const std::string& why) const { throw Error("kernel {}: {}", path_.string(), why); }

private:
    std::uint16_t u16(std::uint64_t off) const { return load_le<std::uint16_t>(image_, off); }
    std::uint32_t u32(std::uint64_t off) const { return load_le<std::uint32_t>(image_, off); }
    std::uint64_t u64(std::uint64_t off) const { return load_le<std::uint64_t>(image_, off); }

    std::span<const std::uint8_t> image_;
    const std::filesystem::path& path_;
    bool is64_ = true;
};

// Writes hvm_start_info, the module list and the memory map into the 4 KiB
// start-info page; returns its GPA.
std::uint64_t write_start_info(GuestMemory& memory, const std::vector<E820Entry>& map, std::uint64_t cmdline,
                               const PlacedInitrd& initrd) {
    constexpr std::uint64_t kModlistAddr = layout::kStartInfoAddr + 0x40;
    constexpr std::uint64_t kMemmapAddr = layout::kStartInfoAddr + 0x80;
    constexpr std::uint64_t kMaxMemmap = (layout::kStartInfoSize - 0x80) / sizeof(pvh::MemmapEntry);
    static_assert(sizeof(pvh::StartInfo) <= 0x40 && sizeof(pvh::ModlistEntry) <= 0x40);
    if (map.size() > kMaxMemmap) throw Error("memory map has {} entries; PVH start info holds {}", map.size(), kMaxMemmap);

    zero_guest(memory, layout::kStartInfoAddr, layout::kStartInfoSize, "hvm_start_info");
    pvh::StartInfo info{};
    info.magic = pvh::kStartInfoMagic;
    info.version = 1;
    info.cmdline_paddr = cmdline;
    info.memmap_paddr = kMemmapAddr;
    info.memmap_entries = static_cast<std::uint32_t>(map.size());
    if (initrd.size > 0) {
        info.nr_modules = 1;
        info.modlist_paddr = kModlistAddr;
        memory.write(kModlistAddr, pvh::ModlistEntry{initrd.addr, initrd.size, 0, 0});
    }
    for (std::size_t i = 0; i < map.size(); ++i)
        memory.write(kMemmapAddr + i * sizeof(pvh::MemmapEntry), pvh::MemmapEntry{map[i].addr, map[i].size, map[i].type, 0});
    memory.write(layout::kStartInfoAddr, info);
    return layout::kStartInfoAddr;
}

}  // namespace

BootImage load_pvh_elf(GuestMemory& memory, const LoadRequest& request, std::span<const std::uint8_t> image) {
    ElfImage elf(image, request.kernel);
    const auto map = effective_memory_map(request);
    const auto headers = elf.program_headers();

    // Entry first: without the PVH note there is nothing we can boot, and
    // that is the most useful thing to tell the user.
    std::optional<std::uint64_t> entry;
    for (const auto& ph : headers)
        if (!entry && ph.type == kPtNote) entry = elf.find_note(ph, "Xen", pvh::kElfNoteType);
    if (!entry)
        for (const auto& sh : elf.note_sections())
            if (!entry) entry = elf.find_note(sh, "Xen", pvh::kElfNoteType);
    if (!entry)
        elf.fail("ELF has no XEN_ELFNOTE_PHYS32_ENTRY note; build with CONFIG_PVH or use a bzImage");
    if (*entry >= (1ull << 32)) elf.fail(fmt::format("PVH entry {:#x} is above 4 GiB", *entry));

    std::uint64_t kernel_end = 0;
    bool loaded_any = false;
    for (const auto& ph : headers) {
        if (ph.type != kPtLoad || ph.memsz == 0) continue;
        if (ph.filesz > ph.memsz) elf.fail(fmt::format("segment at {:#x} has filesz > memsz", ph.paddr));
        elf.check_range(ph.offset, ph.filesz, "segment data");
        if (ph.paddr < kBootAreaEnd)
            elf.fail(fmt::format("segment at {:#x} overlaps xover's boot structures below {:#x}", ph.paddr, kBootAreaEnd));
        if (!inside_ram(map, ph.paddr, ph.memsz))
            elf.fail(fmt::format("segment {:#x}..{:#x} does not fit in guest memory ({})", ph.paddr,
                                 ph.paddr + ph.memsz, mib(request.memory_bytes)));
        write_guest(memory, ph.paddr, image.subspan(ph.offset, ph.filesz), "kernel segment");
        zero_guest(memory, ph.paddr + ph.filesz, ph.memsz - ph.filesz, "kernel bss");
        kernel_end = std::max(kernel_end, ph.paddr + ph.memsz);
        loaded_any = true;
    }
    if (!loaded_any) elf.fail("ELF has no loadable segments");

    const auto cmdline = place_cmdline(memory, request, layout::kCmdlineMax - 1);
    const auto initrd = place_initrd(memory, request, map, kernel_end, layout::kMmioHoleStart);
    const auto info = write_start_info(memory, map, cmdline, initrd);
    return BootImage{BootImage::Mode::Pvh32, *entry, info, kernel_end};
}

}  // namespace xover::vmm::loader_detail
