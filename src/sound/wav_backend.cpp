// wav:OUT.wav[,in=IN.wav] — playback is appended to OUT.wav, capture reads
// IN.wav. Made for tests and for recording a guest: a capture→playback loop
// in the guest turns IN.wav into an OUT.wav with the same frames, because
// only the periods the guest really played are written (the device does not
// call play() for underruns) and capture never skips or repeats a byte.
//
// Both files are opened when the backend is made, so a bad path or an
// unplayable input stops the VM before it starts rather than when the guest
// first opens a stream. The output gets its header at the first playback
// start (the format is the guest's choice); a WAV file holds one format, so
// a later start with another format is refused. There is no resampling: an
// input start whose format is not the file's is refused too.
//
// Capture after stop(Input) and a new start(Input) continues where it
// stopped rather than rewinding: each frame of IN.wav reaches the guest
// once, in order, however often its driver stops and restarts the stream
// (ALSA does on every xrun recovery), which keeps the round trip exact.
#include <sys/stat.h>

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "wav_backend.hpp"
#include "wav_file.hpp"
#include "xover/error.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::sound {
namespace {

// The backend's counters (net/counter_set.hpp).
#define XOVER_WAV_BACKEND_COUNTERS(X, V)                                                                  \
    X(played_bytes, "bytes the guest played, written to the output file")                                 \
    X(dropped_bytes, "bytes the guest played that were not written: no accepted start, a partial frame, " \
                     "the file full (4 GiB) or a write error")                                            \
    X(captured_bytes, "bytes the guest captured from the input file")                                     \
    X(silence_bytes, "bytes of silence the guest captured: no input file, past its end, a refused "       \
                     "start or a read error")                                                             \
    X(refused_starts, "stream starts refused: a format the file does not (or cannot) hold, or an "        \
                      "output header that could not be written")
struct Stats {
    XOVER_COUNTER_SET(XOVER_WAV_BACKEND_COUNTERS, "wav_", net::Counter)
};

// Whether two paths name one file (a hard link or a symlink included).
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
    struct stat sa{}, sb{};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

class WavBackend final : public Backend {
public:
    // The input is opened first (members are built in order): creating the
    // output truncates it, so it must not be the input, and a bad input
    // must not cost the user an old recording.
    explicit WavBackend(const WavSpec& spec) : spec_(spec), input_(open_input(spec)), output_(spec.out) {}

    bool start(Direction direction, const PcmFormat& format) override {
        return direction == Direction::Output ? start_output(format) : start_input(format);
    }

    void stop(Direction direction) override {
        if (direction == Direction::Output)
            output_on_ = false;
        else
            input_on_ = false;
    }

    void play(std::span<const std::uint8_t> period) override {
        std::size_t written = 0;
        if (output_on_) {
            try {
                written = output_.append(period);
            } catch (const Error& e) {
                write_log_.warn("{} (period dropped)", e.what());
            }
            if (output_.full() && !warned_full_) {
                warned_full_ = true;
                spdlog::warn("wav backend: output '{}' is full (4 GiB, the most a WAV file holds): further "
                             "playback is dropped",
                             output_path());
            }
        }
        stats_.played_bytes.add(written);
        stats_.dropped_bytes.add(period.size() - written);
    }

    void capture(std::span<std::uint8_t> period) override {
        std::size_t got = 0;
        if (input_on_ && input_) {
            try {
                got = input_->read(period);
            } catch (const Error& e) {
                // An I/O error on the input: it is treated as its end.
                spdlog::warn("{} (capturing silence from now on)", e.what());
                input_.reset();
            }
        }
        std::fill(period.begin() + std::ptrdiff_t(got), period.end(), std::uint8_t{0});
        stats_.captured_bytes.add(got);
        stats_.silence_bytes.add(period.size() - got);
    }

    // IN.wav is read on demand, so none of it is skipped for a slow guest.
    bool capture_waits_for_guest() const override { return true; }

    // A file is always plugged into the output jack; the input jack only
    // has something in it when an input file was given.
    bool plugged(Direction direction) const override {
        return direction == Direction::Output || spec_.in.has_value();
    }

    net::Counters counters() const override {
        net::Counters out;
        stats_.append_to(out);
        return out;
    }

private:
    bool start_output(const PcmFormat& format) {
        bool ok = false;
        try {
            ok = output_.set_format(format);
        } catch (const Error& e) {
            spdlog::warn("{} (playback is dropped for this run)", e.what());
            return refuse(output_on_);
        }
        if (!ok) {
            if (!warned_output_format_) {
                warned_output_format_ = true;
                if (output_.format())
                    spdlog::warn("wav backend: output '{}' holds {}, the guest started playback with {}: refused "
                                 "(a WAV file has one format; this is logged once)",
                                 output_path(), describe(*output_.format()), describe(format));
                else
                    spdlog::warn("wav backend: output '{}' cannot hold {}: refused (this is logged once)",
                                 output_path(), describe(format));
            }
            return refuse(output_on_);
        }
        output_on_ = true;
        return true;
    }

    bool start_input(const PcmFormat& format) {
        // No input file: silence in any format.
        if (input_ && input_->format() != format) {
            if (!warned_input_format_) {
                warned_input_format_ = true;
                spdlog::warn("wav backend: input '{}' is {}, the guest started capture with {}: refused, the "
                             "guest captures silence (there is no resampling; this is logged once)",
                             spec_.in->string(), describe(input_->format()), describe(format));
            }
            return refuse(input_on_);
        }
        input_on_ = true;
        return true;
    }

    bool refuse(bool& on) {
        on = false;
        stats_.refused_starts.add();
        return false;
    }

    static std::optional<WavReader> open_input(const WavSpec& spec) {
        if (!spec.in) return std::nullopt;
        std::optional<WavReader> input(std::in_place, *spec.in);
        if (same_file(*spec.in, spec.out))
            throw Error("wav backend: '{}' is both the output and the input", spec.out.string());
        return input;
    }

    std::string output_path() const { return spec_.out.string(); }

    const WavSpec spec_;
    std::optional<WavReader> input_;  // reset after a read error: silence from then on
    WavWriter output_;
    bool output_on_ = false;
    bool input_on_ = false;
    bool warned_output_format_ = false;
    bool warned_input_format_ = false;
    bool warned_full_ = false;
    vmm::RateLimitedLog write_log_;
    Stats stats_;
};

}  // namespace

std::unique_ptr<Backend> make_wav_backend(const WavSpec& spec) { return std::make_unique<WavBackend>(spec); }

}  // namespace xover::sound
