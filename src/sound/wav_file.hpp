// Private to src/sound: RIFF/WAVE files of 16-bit PCM (S16_LE), the one
// format xover's sound devices move (pcm_format.hpp), read and written
// without a library.
//
// The reader trusts nothing in the file: chunk sizes are checked against the
// file's real size, unknown chunks (LIST, fact, cue ...) are skipped with
// their pad byte, and anything it cannot play as S16_LE is refused at open
// with an xover::Error naming the file and the reason.
//
// The writer keeps the header true after every append, so the file is a
// valid WAV at any instant: a VM killed with SIGKILL leaves a file every
// player opens, missing at most the last period.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "xover/kvm/unique_fd.hpp"
#include "xover/sound/pcm_format.hpp"

namespace xover::sound {

// The reader and the writer take 1 to 8 channels (virtio-snd's common
// layouts, up to 7.1).
constexpr unsigned kWavMaxChannels = 8;
// Whether a WAV file of ours can hold `format` (a channel count in range,
// a rate > 0 whose byte rate fits the header's 32 bits).
bool wav_can_hold(const PcmFormat& format);
// "2 channels, 48000 Hz" (log lines, errors).
std::string describe(const PcmFormat& format);

class WavReader {
public:
    // Opens `path` and checks its header. Throws xover::Error
    // ("wav file 'PATH': why") on anything but readable S16_LE PCM.
    explicit WavReader(const std::filesystem::path& path);

    const PcmFormat& format() const { return format_; }
    const std::filesystem::path& path() const { return path_; }
    // Bytes of audio not read yet: whole frames.
    std::uint64_t remaining() const { return end_ - next_; }

    // Copies the next whole frames that fit in `out` and returns how many
    // bytes that was: less than out.size() only at the end of the data
    // (0 after it). The bytes of `out` past the returned count are left
    // unspecified. Throws xover::Error if the file cannot be read; a file
    // that shrank since it was opened just ends early.
    std::size_t read(std::span<std::uint8_t> out);

private:
    std::filesystem::path path_;
    kvm::UniqueFd fd_;
    PcmFormat format_;
    std::uint64_t next_ = 0;  // file offset of the next frame
    std::uint64_t end_ = 0;   // file offset just past the last whole frame
};

class WavWriter {
public:
    // Creates or truncates `path` (a regular file: the header is rewritten
    // as the data grows, so a pipe cannot be one). Nothing is written until
    // set_format(). Throws xover::Error ("wav file 'PATH': why").
    explicit WavWriter(const std::filesystem::path& path);
    // close(), logging (not throwing) a failure.
    ~WavWriter();
    WavWriter(const WavWriter&) = delete;
    WavWriter& operator=(const WavWriter&) = delete;

    // The file's format: the first call writes the header with `format`
    // and returns true (false, writing nothing, if !wav_can_hold(format));
    // later calls return whether `format` is the one the file holds (a WAV
    // file has one format for all of its data). Throws xover::Error if the
    // header cannot be written (the file then still has no format).
    bool set_format(const PcmFormat& format);
    const std::optional<PcmFormat>& format() const { return format_; }

    // Appends the whole frames of `data` (a trailing partial frame is not
    // written) and rewrites the header's sizes; returns the bytes written.
    // Writes nothing before set_format(), and nothing past the most a WAV
    // file can hold (4 GiB, see full()). Throws xover::Error on a write
    // error; the bytes of that call are then not counted in the header.
    std::size_t append(std::span<const std::uint8_t> data);

    // Bytes of audio in the file.
    std::uint64_t data_bytes() const { return data_bytes_; }
    // The 32-bit RIFF sizes cannot count another frame: append() writes
    // nothing more.
    bool full() const;

    // Closes the file. A file that never got a format gets the header of
    // an empty PcmFormat{} stream, so it is still a valid WAV file rather
    // than 0 bytes that players reject. Idempotent; throws xover::Error if
    // that header cannot be written.
    void close();

private:
    void write_header();

    std::filesystem::path path_;
    kvm::UniqueFd fd_;
    std::optional<PcmFormat> format_;
    std::uint64_t data_bytes_ = 0;
};

}  // namespace xover::sound
