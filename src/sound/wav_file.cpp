// RIFF/WAVE reading and writing for S16_LE PCM (see wav_file.hpp).
//
// A WAV file is "RIFF" <u32 size> "WAVE" followed by chunks, each
// <4-byte id> <u32 size> <body>, padded to an even length. Two matter:
// `fmt ` (the format) and `data` (the frames). All numbers little-endian.
#include "wav_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xover/byte_order.hpp"
#include "xover/error.hpp"

namespace xover::sound {
namespace {

constexpr std::uint16_t kFormatPcm = 1;
constexpr std::uint16_t kFormatExtensible = 0xFFFE;
// WAVE_FORMAT_EXTENSIBLE names the real format by a GUID whose first two
// bytes are the plain format tag and whose other 14 are this fixed suffix
// (KSDATAFORMAT_SUBTYPE_*: xxxxxxxx-0000-0010-8000-00aa00389b71).
constexpr std::array<std::uint8_t, 14> kSubformatSuffix = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                           0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
constexpr std::uint32_t kFmtBytes = 16;          // a plain PCM fmt chunk
constexpr std::uint32_t kExtensibleBytes = 40;   // fmt with cbSize, valid bits, mask, subformat
constexpr std::uint64_t kHeaderBytes = 44;       // RIFF header + 16-byte fmt + data chunk header
// The most the 32-bit RIFF size can count besides the header's other 36 bytes.
constexpr std::uint64_t kMaxDataBytes = 0xFFFFFFFFull - (kHeaderBytes - 8);
// Real files have a handful of chunks before `data`; a file of millions of
// empty chunks would make opening it take minutes of 8-byte reads.
constexpr unsigned kMaxChunks = 4096;

[[noreturn]] void fail(const std::filesystem::path& path, std::string_view why) {
    throw Error("wav file '{}': {}", path.string(), why);
}
[[noreturn]] void fail_errno(const std::filesystem::path& path, std::string_view what, int err = errno) {
    throw Error("wav file '{}': {}: {}", path.string(), what, std::strerror(err));
}

bool id_is(const std::uint8_t* p, std::string_view id) { return std::memcmp(p, id.data(), 4) == 0; }

// Names the formats people try first, so the refusal says what the file is.
std::string tag_name(std::uint16_t tag) {
    switch (tag) {
        case 1: return "PCM";
        case 2: return "MS ADPCM";
        case 3: return "IEEE float";
        case 6: return "A-law";
        case 7: return "mu-law";
        case 0x11: return "IMA ADPCM";
        case 0x55: return "MP3";
        default: return fmt::format("0x{:04x}", tag);
    }
}

// Reads up to `size` bytes at `offset`; fewer only at the end of the file.
std::size_t read_at(const std::filesystem::path& path, int fd, std::uint8_t* out, std::size_t size,
                    std::uint64_t offset) {
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(fd, out + done, size - done, off_t(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(path, "read");
        if (n == 0) break;
        done += std::size_t(n);
    }
    return done;
}

void write_at(const std::filesystem::path& path, int fd, const std::uint8_t* data, std::size_t size,
              std::uint64_t offset) {
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = ::pwrite(fd, data + done, size - done, off_t(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno(path, "write");
        done += std::size_t(n);
    }
}

// The format a `fmt ` chunk describes, or an Error saying why it is not
// S16_LE PCM. `body` holds the chunk's first min(size, 40) bytes.
PcmFormat parse_fmt(const std::filesystem::path& path, std::span<const std::uint8_t> body) {
    if (body.size() < kFmtBytes) fail(path, fmt::format("the fmt chunk is {} bytes, too short", body.size()));
    std::uint16_t tag = load_le16(&body[0]);
    std::uint16_t channels = load_le16(&body[2]);
    std::uint32_t rate = load_le32(&body[4]);
    std::uint16_t block_align = load_le16(&body[12]);
    std::uint16_t bits = load_le16(&body[14]);
    if (tag == kFormatExtensible) {
        if (body.size() < kExtensibleBytes)
            fail(path, fmt::format("the extensible fmt chunk is {} bytes, expected {}", body.size(), kExtensibleBytes));
        // The valid bits (body[18]) may be fewer than 16: such samples are
        // left-justified in 16 bits, so they play as S16 all the same.
        const std::uint8_t* subformat = &body[24];
        if (!std::equal(kSubformatSuffix.begin(), kSubformatSuffix.end(), subformat + 2))
            fail(path, "an extensible format with an unknown subformat GUID: only 16-bit PCM is supported");
        tag = load_le16(subformat);
    }
    if (tag != kFormatPcm)
        fail(path, fmt::format("format {} ({}): only 16-bit PCM is supported", tag, tag_name(tag)));
    if (bits != 16) fail(path, fmt::format("{} bits per sample: only 16-bit PCM is supported", bits));
    if (channels == 0 || channels > kWavMaxChannels)
        fail(path, fmt::format("{} channels: 1 to {} are supported", channels, kWavMaxChannels));
    if (rate == 0) fail(path, "a sample rate of 0 Hz");
    // What the writer could not write back (its byte rate field is 32 bits).
    if (!wav_can_hold(PcmFormat{.channels = channels, .rate = rate}))
        fail(path, fmt::format("a sample rate of {} Hz, too high", rate));
    // The frame size the file's writer used; a disagreement means the
    // channel count or the sample size is wrong, and either garbles it.
    if (block_align != channels * PcmFormat::kBytesPerSample)
        fail(path, fmt::format("a block align of {} bytes, but {} channels of 16 bits take {}", block_align,
                               channels, channels * PcmFormat::kBytesPerSample));
    // The byte rate (body[8]) is redundant (rate * block align); it is not
    // used, so a wrong one does no harm.
    return PcmFormat{.channels = channels, .rate = rate};
}

}  // namespace

bool wav_can_hold(const PcmFormat& format) {
    return format.channels >= 1 && format.channels <= kWavMaxChannels && format.rate > 0 &&
           format.bytes_per_second() <= 0xFFFFFFFFu;
}

std::string describe(const PcmFormat& format) {
    return fmt::format("{} channel{}, {} Hz", format.channels, format.channels == 1 ? "" : "s", format.rate);
}

WavReader::WavReader(const std::filesystem::path& path) : path_(path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then
    // refused below); it changes nothing for a regular file.
    fd_ = kvm::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd_) fail_errno(path, "open");
    struct stat st{};
    if (::fstat(fd_.get(), &st) < 0) fail_errno(path, "stat");
    if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
    const std::uint64_t file_size = std::uint64_t(st.st_size);

    std::array<std::uint8_t, 12> riff{};
    if (read_at(path, fd_.get(), riff.data(), riff.size(), 0) < riff.size())
        fail(path, fmt::format("{} bytes, too short for a WAV header", file_size));
    if (!id_is(&riff[0], "RIFF") || !id_is(&riff[8], "WAVE")) fail(path, "not a RIFF/WAVE file");
    // Where the RIFF size says the file ends: only used to tell an empty
    // data chunk from an unfinished one (below); the walk itself is bounded
    // by the real file size, whatever the header claims.
    const std::uint64_t riff_end = 8 + std::uint64_t(load_le32(&riff[4]));

    std::optional<PcmFormat> format;
    std::uint64_t pos = riff.size();
    for (unsigned chunks = 0;; ++chunks) {
        if (chunks == kMaxChunks) fail(path, fmt::format("more than {} chunks before the data chunk", kMaxChunks));
        std::array<std::uint8_t, 8> header{};
        if (pos > file_size || read_at(path, fd_.get(), header.data(), header.size(), pos) < header.size())
            fail(path, format ? "no data chunk" : "no fmt chunk");
        const std::uint32_t size = load_le32(&header[4]);
        const std::uint64_t body = pos + header.size();

        if (id_is(&header[0], "fmt ")) {
            if (format) fail(path, "two fmt chunks");
            std::array<std::uint8_t, kExtensibleBytes> bytes{};
            std::size_t want = std::min<std::size_t>(size, bytes.size());
            if (read_at(path, fd_.get(), bytes.data(), want, body) < want)
                fail(path, "the fmt chunk runs past the end of the file");
            format = parse_fmt(path, std::span(bytes).first(want));
        } else if (id_is(&header[0], "data")) {
            if (!format) fail(path, "no fmt chunk before the data chunk");
            format_ = *format;
            const std::uint64_t available = file_size - std::min(body, file_size);
            std::uint64_t length = size;
            // A writer that died before filling in the sizes leaves 0 (or
            // 0xFFFFFFFF, which the clamp below handles): the data then runs
            // to the end of the file. A truly empty data chunk followed by
            // other chunks is told apart by a RIFF size that is true (within
            // the file) and reaches past the data chunk's header.
            if (length == 0 && !(body < riff_end && riff_end <= file_size)) length = available;
            length = std::min(length, available);  // a size larger than the file: what is there
            length -= length % format_.frame_bytes();  // whole frames only
            next_ = body;
            end_ = body + length;
            return;
        }
        pos = body + size + (size & 1);  // odd-sized chunks carry a pad byte
    }
}

std::size_t WavReader::read(std::span<std::uint8_t> out) {
    const std::uint64_t frame = format_.frame_bytes();
    std::uint64_t want = std::min<std::uint64_t>(out.size(), remaining());
    want -= want % frame;
    if (want == 0) return 0;
    std::size_t got = read_at(path_, fd_.get(), out.data(), std::size_t(want), next_);
    if (got < want) {
        // The file was truncated under us: what is left is its end.
        got -= got % frame;
        end_ = next_ + got;
    }
    next_ += got;
    return got;
}

WavWriter::WavWriter(const std::filesystem::path& path) : path_(path) {
    // O_NONBLOCK: opening a FIFO without a reader must fail now (ENXIO),
    // not hang the VM's setup; it changes nothing for a regular file.
    fd_ = kvm::UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644));
    if (!fd_) fail_errno(path, "create");
    struct stat st{};
    if (::fstat(fd_.get(), &st) < 0) fail_errno(path, "stat");
    if (!S_ISREG(st.st_mode))
        fail(path, "not a regular file (the WAV header is rewritten as the data grows)");
}

WavWriter::~WavWriter() {
    try {
        close();
    } catch (const Error& e) {
        spdlog::warn("{}", e.what());
    }
}

bool WavWriter::set_format(const PcmFormat& format) {
    if (format_) return *format_ == format;
    if (!wav_can_hold(format)) return false;
    format_ = format;
    try {
        write_header();
    } catch (...) {
        format_.reset();  // the file still has no header: a later start may try again
        throw;
    }
    return true;
}

bool WavWriter::full() const { return format_ && kMaxDataBytes - data_bytes_ < format_->frame_bytes(); }

std::size_t WavWriter::append(std::span<const std::uint8_t> data) {
    if (!format_ || !fd_) return 0;
    const std::uint64_t frame = format_->frame_bytes();
    std::uint64_t n = std::min<std::uint64_t>(data.size(), kMaxDataBytes - data_bytes_);
    n -= n % frame;
    if (n == 0) return 0;
    write_at(path_, fd_.get(), data.data(), std::size_t(n), kHeaderBytes + data_bytes_);
    data_bytes_ += n;
    // Every append makes the header true again, so the file is complete
    // at any instant (one more pwrite per period, into the page cache).
    // If this fails the frames are in the file but not counted; the next
    // append that succeeds counts them.
    write_header();
    return std::size_t(n);
}

void WavWriter::close() {
    if (!fd_) return;
    if (!format_) {
        format_ = PcmFormat{};
        write_header();
    }
    fd_.reset();
}

void WavWriter::write_header() {
    const PcmFormat& f = *format_;
    std::array<std::uint8_t, kHeaderBytes> h{};
    auto put = [&h](std::size_t offset, std::size_t width, std::uint64_t value) {
        store_le(std::span(h).subspan(offset, width), value);
    };
    std::memcpy(&h[0], "RIFF", 4);
    put(4, 4, kHeaderBytes - 8 + data_bytes_);
    std::memcpy(&h[8], "WAVE", 4);
    std::memcpy(&h[12], "fmt ", 4);
    put(16, 4, kFmtBytes);
    put(20, 2, kFormatPcm);
    put(22, 2, f.channels);
    put(24, 4, f.rate);
    put(28, 4, f.bytes_per_second());
    put(32, 2, f.frame_bytes());
    put(34, 2, 16);  // bits per sample
    std::memcpy(&h[36], "data", 4);
    put(40, 4, data_bytes_);
    write_at(path_, fd_.get(), h.data(), h.size(), 0);
}

}  // namespace xover::sound
