// Fuzz target: the WAV reader (sound/wav_file.cpp) on any file a user may
// name as a sound card's input (`backend=wav:OUT.wav,in=IN.wav`), read in
// pieces of any size, and the writer on what the reader accepted. Any file
// must open as S16_LE PCM or be refused with xover::Error naming it; never
// a crash, never a read that is not whole frames, never more audio than
// the file holds. What the writer writes, the reader reads back the same.
//
// Input: the file, then one byte choosing the read size (1 to 255 bytes,
// or 4 KiB for 0): FuzzedDataProvider takes integers from the end.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <vector>

#include "mem_file.hpp"
#include "sound/wav_file.hpp"
#include "xover/error.hpp"

using namespace xover;

namespace {

// Everything `reader` has left, `piece` bytes at a time, checking what
// each read() promises.
std::vector<std::uint8_t> read_all(sound::WavReader& reader, std::size_t piece) {
    const std::uint64_t frame = reader.format().frame_bytes();
    const std::uint64_t expected = reader.remaining();
    if (expected % frame != 0) std::abort();
    std::vector<std::uint8_t> audio, buffer(piece);
    for (;;) {
        const std::size_t got = reader.read(buffer);
        if (got > buffer.size() || got % frame != 0) std::abort();
        if (got == 0) break;
        audio.insert(audio.end(), buffer.begin(), buffer.begin() + std::ptrdiff_t(got));
    }
    // A piece smaller than a frame reads nothing; otherwise every frame.
    if (piece >= frame && audio.size() != expected) std::abort();
    if (reader.remaining() != expected - audio.size()) std::abort();
    return audio;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static MemFile input("fuzz-wav-in"), output("fuzz-wav-out");
    FuzzedDataProvider in(data, size);
    const auto choice = in.ConsumeIntegral<std::uint8_t>();
    const std::size_t piece = choice == 0 ? 4096 : choice;
    const auto file = in.ConsumeRemainingBytes<std::uint8_t>();
    try {
        sound::WavReader reader(input.write(file));
        const sound::PcmFormat format = reader.format();
        if (!sound::wav_can_hold(format) || reader.remaining() > file.size()) std::abort();
        const auto audio = read_all(reader, piece);

        // Written back and read again: the same format and frames.
        const auto path = output.write({});
        {
            sound::WavWriter writer(path);
            if (!writer.set_format(format) || writer.append(audio) != audio.size()) std::abort();
        }
        sound::WavReader again(path);
        if (!(again.format() == format) || read_all(again, 4096) != audio) std::abort();
    } catch (const Error&) {
    }
    return 0;
}
