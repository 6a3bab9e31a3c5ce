// Sound cards in the config: --sound specs, [[sound]] tables, flags over
// the file, `xover up` files, the card's format (rate=, channels=), the
// crossover card's lack of a backend, and one check per error message.
#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "config_dir.hpp"
#include "xover/error.hpp"
#include "xover/sound/spec.hpp"
#include "xover/vmm/config_parser.hpp"

using namespace xover::vmm;
using namespace xover::test;
using xover::sound::PcmFormat;
namespace fs = std::filesystem;

namespace {

// A scratch directory with a fake kernel and a capture file in it.
struct SoundDir : ConfigDir {
    fs::path in_wav = write("in.wav", "RIFF");
    SoundDir() : ConfigDir("xover-sound-config") {}
};

const xover::sound::WavSpec& wav_of(const SoundConfig& sound) {
    REQUIRE(std::holds_alternative<xover::sound::WavSpec>(sound.backend));
    return std::get<xover::sound::WavSpec>(sound.backend);
}

const std::string kVmNameRule =
    "is not a valid VM name (letters, digits, '.', '_', '-', starting with a letter or digit, at most 64)";

const std::string kSoundKeys = "model, backend, crossover, rate, channels";

// The message a crossover card with a backend gets, after its ORIGIN.
std::string crossover_with_backend(const std::string& backend, const std::string& peer) {
    return "a crossover card plays into its peer and captures from it; backend=" + backend +
           " cannot be used with crossover=" + peer;
}

}  // namespace

TEST_CASE("sound model names", "[config][sound]") {
    CHECK(to_string(SoundModel::VirtioSnd) == "virtio-snd");
    CHECK(parse_sound_model("virtio-snd") == SoundModel::VirtioSnd);
    CHECK_FALSE(parse_sound_model("virtio-sound"));
    CHECK_FALSE(parse_sound_model("Virtio-snd"));
    CHECK_FALSE(parse_sound_model(""));
}

TEST_CASE("the default crossover format", "[config][sound]") {
    CHECK(kDefaultCrossoverFormat == PcmFormat{.channels = 2, .rate = 48000});
    CHECK_FALSE(SoundConfig{}.format);  // a card built by hand offers every format until it is finished
}

TEST_CASE("parse_sound_spec: the forms", "[config][sound]") {
    const SoundConfig plain = parse_sound_spec("virtio-snd");
    CHECK(plain.model == SoundModel::VirtioSnd);
    CHECK(std::holds_alternative<xover::sound::NoneSpec>(plain.backend));
    CHECK_FALSE(plain.crossover);
    CHECK_FALSE(plain.format);  // no crossover, no rate=, no channels=: every format

    // The comma of the wav spec's in= splits it: the item is put back.
    const SoundConfig wav = parse_sound_spec("virtio-snd,backend=wav:out.wav,in=in.wav");
    CHECK(wav_of(wav).out == fs::path("out.wav"));
    CHECK(wav_of(wav).in == fs::path("in.wav"));
    CHECK_FALSE(wav.crossover);
    CHECK_FALSE(wav.format);
    CHECK(xover::sound::to_string(wav.backend) == "wav:out.wav,in=in.wav");

    const SoundConfig wired = parse_sound_spec("virtio-snd,crossover=vm-b");
    CHECK(wired.crossover == "vm-b");
    CHECK(std::holds_alternative<xover::sound::NoneSpec>(wired.backend));
    CHECK(wired.format == kDefaultCrossoverFormat);  // a crossover card has one format

    // Keys in any order; model= after a backend ends its continuation.
    const SoundConfig reordered = parse_sound_spec("backend=wav:/a/o.wav,in=/b/i.wav,model=virtio-snd");
    CHECK(reordered.model == SoundModel::VirtioSnd);
    CHECK(wav_of(reordered).out == fs::path("/a/o.wav"));
    CHECK(wav_of(reordered).in == fs::path("/b/i.wav"));
    const SoundConfig reordered_wired = parse_sound_spec("channels=1,crossover=vm-b,model=virtio-snd");
    CHECK(reordered_wired.crossover == "vm-b");
    CHECK(reordered_wired.format == PcmFormat{.channels = 1, .rate = 48000});

    CHECK(xover::sound::to_string(parse_sound_spec("backend=wav:o.wav").backend) == "wav:o.wav");  // model optional
    CHECK_FALSE(wav_of(parse_sound_spec("backend=wav:o.wav")).in);
    CHECK(std::holds_alternative<xover::sound::NoneSpec>(parse_sound_spec("virtio-snd,backend=none").backend));
    CHECK(parse_sound_spec("model=virtio-snd,crossover=peer.1").crossover == "peer.1");
    // backend=none is no backend: a crossover card may say it.
    const SoundConfig wired_none = parse_sound_spec("virtio-snd,backend=none,crossover=vm-b");
    CHECK(wired_none.crossover == "vm-b");
    CHECK(std::holds_alternative<xover::sound::NoneSpec>(wired_none.backend));
    CHECK(parse_sound_spec("crossover=vm-b,backend=none").crossover == "vm-b");
    // The last backend= wins, as the last of any key does: a wav backend
    // given up for none leaves a crossover card without one.
    CHECK(std::holds_alternative<xover::sound::NoneSpec>(parse_sound_spec("backend=wav:o.wav,backend=none").backend));
    CHECK(parse_sound_spec("backend=wav:o.wav,crossover=b,backend=none").crossover == "b");
}

TEST_CASE("parse_sound_spec: rate= and channels=", "[config][sound]") {
    auto format_of = [](const std::string& spec) { return parse_sound_spec(spec).format; };
    CHECK(format_of("virtio-snd,rate=44100,channels=1") == PcmFormat{.channels = 1, .rate = 44100});
    CHECK(format_of("virtio-snd,channels=1,rate=44100") == PcmFormat{.channels = 1, .rate = 44100});
    CHECK(format_of("virtio-snd,rate=48000,channels=2") == PcmFormat{.channels = 2, .rate = 48000});
    // One alone takes the other from kDefaultCrossoverFormat.
    CHECK(format_of("virtio-snd,rate=44100") == PcmFormat{.channels = 2, .rate = 44100});
    CHECK(format_of("virtio-snd,channels=1") == PcmFormat{.channels = 1, .rate = 48000});
    CHECK(format_of("rate=48000") == kDefaultCrossoverFormat);  // set, though it is the default

    // With a crossover: the flag's example.
    const SoundConfig wired = parse_sound_spec("virtio-snd,crossover=b,rate=44100,channels=1");
    CHECK(wired.crossover == "b");
    CHECK(wired.format == PcmFormat{.channels = 1, .rate = 44100});
    CHECK(format_of("rate=44100,crossover=b") == PcmFormat{.channels = 2, .rate = 44100});
    CHECK(format_of("crossover=b,channels=1") == PcmFormat{.channels = 1, .rate = 48000});

    // With a wav backend: rate= is the card's key, not the backend's option.
    const SoundConfig wav = parse_sound_spec("backend=wav:o.wav,rate=48000");
    CHECK(xover::sound::to_string(wav.backend) == "wav:o.wav");
    CHECK(wav.format == PcmFormat{.channels = 2, .rate = 48000});
    const SoundConfig wav_in = parse_sound_spec("virtio-snd,backend=wav:o.wav,in=i.wav,channels=1,rate=44100");
    CHECK(wav_of(wav_in).out == fs::path("o.wav"));
    CHECK(wav_of(wav_in).in == fs::path("i.wav"));
    CHECK(wav_in.format == PcmFormat{.channels = 1, .rate = 44100});

    // The last of each wins.
    CHECK(format_of("rate=44100,rate=48000,channels=2,channels=1") == PcmFormat{.channels = 1, .rate = 48000});
}

TEST_CASE("parse_sound_spec errors name the flag, key and value", "[config][sound][errors]") {
    auto err = [](const std::string& spec) { return error_of([&] { parse_sound_spec(spec); }); };
    const std::string keys = " (keys: " + kSoundKeys + ")";
    CHECK(error_of([] { parse_sound_spec("sb16", "--sound \"sb16\""); }) ==
          R"(--sound "sb16": "sb16" is not a sound model (use virtio-snd))");
    CHECK(err("model=ac97") == R"(--sound: model: "ac97" is not a sound model (use virtio-snd))");
    CHECK(err("virtio-snd,volume=3") == R"(--sound: unknown key "volume")" + keys);
    CHECK(err("virtio-snd,format=s16") == R"(--sound: unknown key "format")" + keys);
    // in= continues only a backend= right before it.
    CHECK(err("virtio-snd,in=in.wav") == R"(--sound: unknown key "in")" + keys);
    CHECK(err("virtio-snd,backend=wav:o.wav,model=virtio-snd,in=i.wav") == R"(--sound: unknown key "in")" + keys);
    CHECK(err("virtio-snd,backend=wav:o.wav,rate=44100,in=i.wav") == R"(--sound: unknown key "in")" + keys);
    CHECK(err("virtio-snd,backend=wav:o.wav,channels=1,in=i.wav") == R"(--sound: unknown key "in")" + keys);
    CHECK(err("virtio-snd,virtio-snd") == R"(--sound: "virtio-snd" is not key=value)" + keys);
    CHECK(err("virtio-snd,") == R"(--sound: "" is not key=value)" + keys);
    CHECK(err("") == R"(--sound: "" is not key=value)" + keys);
    CHECK(err("virtio-snd,crossover=") == "--sound: crossover: empty crossover peer name");
    CHECK(err("virtio-snd,crossover=bad name") == "--sound: crossover: \"bad name\" " + kVmNameRule);
    CHECK(err("virtio-snd,crossover=auto") ==
          "--sound: crossover: \"auto\" is for NICs; a sound card's crossover names its one peer VM");
    CHECK(err("virtio-snd,crossover=a+b") ==
          "--sound: crossover: \"a+b\" names more than one VM; a sound card has one crossover peer");
    CHECK(err("virtio-snd,crossover=a,b") == R"(--sound: "b" is not key=value)" + keys);
    CHECK(err("virtio-snd,backend=wav:") ==
          "--sound: backend: invalid sound backend 'wav:': the output file name is empty (expected none or "
          "wav:OUT.wav[,in=IN.wav])");
    CHECK(err("virtio-snd,backend=mp3:o.mp3") ==
          "--sound: backend: invalid sound backend 'mp3:o.mp3': unknown kind (expected none or "
          "wav:OUT.wav[,in=IN.wav])");
    CHECK_THAT(err("backend="), Catch::StartsWith("--sound: backend: invalid sound backend '': unknown kind"));
    CHECK_THAT(err("backend=wav:o.wav,in="), Catch::Contains("'wav:o.wav,in=': the input file name is empty"));
    CHECK_THAT(err("backend=wav:o.wav,in=a.wav,in=b.wav"), Catch::Contains("in= is given twice"));
    // An unknown item right after backend= is the backend's to refuse.
    CHECK_THAT(err("backend=wav:o.wav,gain=2"),
               Catch::StartsWith("--sound: backend: invalid sound backend 'wav:o.wav,gain=2': unknown option "
                                 "'gain=2'"));
}

TEST_CASE("parse_sound_spec: rate= and channels= errors", "[config][sound][errors]") {
    auto err = [](const std::string& spec) { return error_of([&] { parse_sound_spec(spec); }); };
    CHECK(err("virtio-snd,rate=8000") == "--sound: rate: 8000 Hz is not offered (use 44100 or 48000)");
    CHECK(err("virtio-snd,rate=96000") == "--sound: rate: 96000 Hz is not offered (use 44100 or 48000)");
    CHECK(err("virtio-snd,rate=0") == "--sound: rate: 0 Hz is not offered (use 44100 or 48000)");
    CHECK(err("virtio-snd,rate=-48000") == "--sound: rate: -48000 Hz is not offered (use 44100 or 48000)");
    CHECK(err("virtio-snd,channels=3") == "--sound: channels: 3 channels are not offered (use 1 or 2)");
    CHECK(err("virtio-snd,channels=0") == "--sound: channels: 0 channels are not offered (use 1 or 2)");
    CHECK(err("virtio-snd,channels=-1") == "--sound: channels: -1 channels are not offered (use 1 or 2)");
    CHECK(err("virtio-snd,rate=x") == R"(--sound: rate: "x" is not a number)");
    CHECK(err("virtio-snd,rate=") == R"(--sound: rate: "" is not a number)");
    CHECK(err("virtio-snd,rate=48k") == R"(--sound: rate: "48k" is not a number)");
    CHECK(err("virtio-snd,rate=+48000") == R"(--sound: rate: "+48000" is not a number)");
    CHECK(err("virtio-snd,rate= 48000") == R"(--sound: rate: " 48000" is not a number)");
    CHECK(err("virtio-snd,rate=99999999999999999999") == R"(--sound: rate: "99999999999999999999" is not a number)");
    CHECK(err("virtio-snd,channels=stereo") == R"(--sound: channels: "stereo" is not a number)");
    CHECK(err("virtio-snd,channels=1.0") == R"(--sound: channels: "1.0" is not a number)");
    // A bad value is refused where it stands, even if a later one is good.
    CHECK(err("virtio-snd,rate=8000,rate=48000") == "--sound: rate: 8000 Hz is not offered (use 44100 or 48000)");
}

TEST_CASE("parse_sound_spec: a crossover card takes no backend", "[config][sound][errors]") {
    auto err = [](const std::string& spec) { return error_of([&] { parse_sound_spec(spec); }); };
    CHECK(err("virtio-snd,backend=wav:o.wav,crossover=b") == "--sound: " + crossover_with_backend("wav:o.wav", "b"));
    CHECK(err("crossover=vm-b,backend=wav:o.wav") == "--sound: " + crossover_with_backend("wav:o.wav", "vm-b"));
    // The whole backend, in= and all, as it would be written.
    CHECK(err("virtio-snd,backend=wav:out.wav,in=in.wav,crossover=vm-b") ==
          "--sound: " + crossover_with_backend("wav:out.wav,in=in.wav", "vm-b"));
    CHECK(err("crossover=vm-b,rate=44100,channels=1,backend=wav:/a/o.wav,in=/b/i.wav") ==
          "--sound: " + crossover_with_backend("wav:/a/o.wav,in=/b/i.wav", "vm-b"));
    // The last backend= counts.
    CHECK(err("backend=none,crossover=b,backend=wav:o.wav") == "--sound: " + crossover_with_backend("wav:o.wav", "b"));
    // The origin is the one given: the whole spec, for --sound.
    CHECK(error_of([] { parse_sound_spec("backend=wav:o.wav,crossover=b", "--sound \"backend=wav:o.wav,crossover=b\""); }) ==
          "--sound \"backend=wav:o.wav,crossover=b\": " + crossover_with_backend("wav:o.wav", "b"));
    // A backend's own syntax is checked first.
    CHECK_THAT(err("crossover=b,backend=mp3:o.mp3"),
               Catch::StartsWith("--sound: backend: invalid sound backend 'mp3:o.mp3': unknown kind"));
}

TEST_CASE("sound flag: every key", "[config][sound]") {
    SoundDir d;
    SECTION("a wav card") {
        RunOptions opts;
        opts.kernel = d.kernel.string();
        opts.name = "vm-a";
        opts.sounds = {"virtio-snd,backend=wav:" + d.path("out.wav") + ",in=" + d.in_wav.string()};
        const VmConfig cfg = resolve_run_config(opts);
        REQUIRE(cfg.sounds.size() == 1);
        CHECK(cfg.sounds[0].model == SoundModel::VirtioSnd);
        CHECK(wav_of(cfg.sounds[0]).out == d.dir / "out.wav");
        CHECK(wav_of(cfg.sounds[0]).in == d.in_wav);
        CHECK_FALSE(cfg.sounds[0].crossover);
        CHECK_FALSE(cfg.sounds[0].format);
        CHECK_FALSE(fs::exists(d.dir / "out.wav"));  // checked, not created: the device opens it
    }
    SECTION("a wav card with a format") {
        RunOptions opts;
        opts.kernel = d.kernel.string();
        opts.sounds = {"virtio-snd,backend=wav:" + d.path("out.wav") + ",rate=44100"};
        const VmConfig cfg = resolve_run_config(opts);
        CHECK(wav_of(cfg.sounds.at(0)).out == d.dir / "out.wav");
        CHECK(cfg.sounds.at(0).format == PcmFormat{.channels = 2, .rate = 44100});
    }
    SECTION("a crossover card") {
        RunOptions opts;
        opts.kernel = d.kernel.string();
        opts.name = "vm-a";
        opts.sounds = {"virtio-snd,crossover=vm-b,rate=44100,channels=1"};
        const VmConfig cfg = resolve_run_config(opts);
        REQUIRE(cfg.sounds.size() == 1);
        CHECK(cfg.sounds[0].crossover == "vm-b");
        CHECK(std::holds_alternative<xover::sound::NoneSpec>(cfg.sounds[0].backend));
        CHECK(cfg.sounds[0].format == PcmFormat{.channels = 1, .rate = 44100});
        CHECK(cfg.nics.empty());  // a sound crossover is not a NIC's

        opts.sounds = {"virtio-snd,crossover=vm-b"};
        CHECK(resolve_run_config(opts).sounds.at(0).format == kDefaultCrossoverFormat);
    }
    SECTION("relative paths on the command line stay relative to the cwd") {
        RunOptions rel;
        rel.kernel = d.kernel.string();
        rel.sounds = {"virtio-snd,backend=wav:xover-no-such-dir/out.wav"};
        CHECK(error_of([&] { resolve_run_config(rel); }) ==
              "--sound \"virtio-snd,backend=wav:xover-no-such-dir/out.wav\": \"xover-no-such-dir/out.wav\" cannot be "
              "created: there is no directory \"xover-no-such-dir\"");
    }
    SECTION("no card unless asked for") {
        RunOptions none;
        none.kernel = d.kernel.string();
        CHECK(resolve_run_config(none).sounds.empty());
    }
}

TEST_CASE("sound flag: errors name the flag and value", "[config][sound][errors]") {
    SoundDir d;
    auto err = [&](auto change) { return flag_error(d, change); };
    CHECK(err([](RunOptions& o) { o.sounds = {"virtio-snd", "virtio-snd,backend=none"}; }) ==
          "--sound \"virtio-snd,backend=none\": a second sound card (a VM has at most one)");
    CHECK(err([](RunOptions& o) { o.sounds = {"ac97"}; }) ==
          "--sound \"ac97\": \"ac97\" is not a sound model (use virtio-snd)");
    CHECK(err([](RunOptions& o) { o.sounds = {"virtio-snd,gain=2"}; }) ==
          "--sound \"virtio-snd,gain=2\": unknown key \"gain\" (keys: " + kSoundKeys + ")");
    CHECK(err([](RunOptions& o) { o.name = "a"; o.sounds = {"virtio-snd,crossover=a"}; }) ==
          "--sound \"virtio-snd,crossover=a\": VM \"a\" cannot be its own crossover peer");
    CHECK(err([](RunOptions& o) { o.sounds = {"virtio-snd,crossover=-x"}; }) ==
          "--sound \"virtio-snd,crossover=-x\": crossover: \"-x\" " + kVmNameRule);
    CHECK_THAT(err([](RunOptions& o) { o.sounds = {"virtio-snd,backend=ogg:x"}; }),
               Catch::StartsWith("--sound \"virtio-snd,backend=ogg:x\": backend: invalid sound backend 'ogg:x'"));
    CHECK(err([](RunOptions& o) { o.sounds = {"virtio-snd,crossover=b,rate=8000"}; }) ==
          "--sound \"virtio-snd,crossover=b,rate=8000\": rate: 8000 Hz is not offered (use 44100 or 48000)");
    CHECK(err([](RunOptions& o) { o.sounds = {"virtio-snd,channels=6"}; }) ==
          "--sound \"virtio-snd,channels=6\": channels: 6 channels are not offered (use 1 or 2)");
    CHECK(err([](RunOptions& o) { o.sounds = {"virtio-snd,rate=x"}; }) ==
          "--sound \"virtio-snd,rate=x\": rate: \"x\" is not a number");

    // A crossover card with a backend is refused before its files are looked at.
    const std::string wired_wav = "virtio-snd,backend=wav:" + d.path("no-such-dir/o.wav") + ",crossover=vm-b";
    CHECK(err([&](RunOptions& o) { o.sounds = {wired_wav}; }) ==
          "--sound \"" + wired_wav + "\": " + crossover_with_backend("wav:" + d.path("no-such-dir/o.wav"), "vm-b"));

    const std::string missing_dir = d.path("no-such-dir");
    const std::string out = missing_dir + "/out.wav";
    CHECK(err([&](RunOptions& o) { o.sounds = {"virtio-snd,backend=wav:" + out}; }) ==
          "--sound \"virtio-snd,backend=wav:" + out + "\": \"" + out + "\" cannot be created: there is no directory \"" +
              missing_dir + "\"");
    CHECK(err([&](RunOptions& o) { o.sounds = {"virtio-snd,backend=wav:" + d.dir.string()}; }) ==
          "--sound \"virtio-snd,backend=wav:" + d.dir.string() + "\": \"" + d.dir.string() +
              "\" cannot be written: it is a directory");
    const std::string spec_no_in = "virtio-snd,backend=wav:" + d.path("o.wav") + ",in=" + d.path("gone.wav");
    CHECK(err([&](RunOptions& o) { o.sounds = {spec_no_in}; }) ==
          "--sound \"" + spec_no_in + "\": \"" + d.path("gone.wav") + "\" cannot be read: No such file or directory");
    const std::string spec_dir_in = "virtio-snd,backend=wav:" + d.path("o.wav") + ",in=" + d.dir.string();
    CHECK(err([&](RunOptions& o) { o.sounds = {spec_dir_in}; }) ==
          "--sound \"" + spec_dir_in + "\": \"" + d.dir.string() + "\" cannot be read: not a regular file");
    const std::string spec_same = "virtio-snd,backend=wav:" + d.in_wav.string() + ",in=" + d.dir.string() + "/./in.wav";
    CHECK(err([&](RunOptions& o) { o.sounds = {spec_same}; }) ==
          "--sound \"" + spec_same + "\": \"" + d.in_wav.string() +
              "\" is both the output and the input (recording would overwrite what is played in)");
}

TEST_CASE("sound tables: every key", "[config][sound]") {
    SoundDir d;
    SECTION("a wav card; relative paths are relative to the file") {
        const VmConfig cfg = run_file(d.vm_toml(R"(
name = "vm-a"
[[sound]]
model = "virtio-snd"
backend = "wav:out.wav,in=in.wav"
)"));
        REQUIRE(cfg.sounds.size() == 1);
        CHECK(cfg.sounds[0].model == SoundModel::VirtioSnd);
        CHECK(wav_of(cfg.sounds[0]).out == d.dir / "out.wav");
        CHECK(wav_of(cfg.sounds[0]).in == d.dir / "in.wav");
        CHECK_FALSE(cfg.sounds[0].crossover);
        CHECK_FALSE(cfg.sounds[0].format);
    }
    SECTION("a crossover card with every other key") {
        const VmConfig cfg = run_file(d.vm_toml(R"(
name = "vm-a"
[[sound]]
model = "virtio-snd"
backend = "none"
crossover = "vm-b"
rate = 44100
channels = 1
)"));
        REQUIRE(cfg.sounds.size() == 1);
        CHECK(cfg.sounds[0].model == SoundModel::VirtioSnd);
        CHECK(std::holds_alternative<xover::sound::NoneSpec>(cfg.sounds[0].backend));
        CHECK(cfg.sounds[0].crossover == "vm-b");
        CHECK(cfg.sounds[0].format == PcmFormat{.channels = 1, .rate = 44100});
    }
    SECTION("rate and channels: one alone takes the other from the default") {
        CHECK(run_file(d.vm_toml("[[sound]]\nrate = 44100\n")).sounds.at(0).format ==
              PcmFormat{.channels = 2, .rate = 44100});
        CHECK(run_file(d.vm_toml("[[sound]]\nchannels = 1\n")).sounds.at(0).format ==
              PcmFormat{.channels = 1, .rate = 48000});
        CHECK(run_file(d.vm_toml("[[sound]]\ncrossover = \"vm-b\"\nchannels = 1\n")).sounds.at(0).format ==
              PcmFormat{.channels = 1, .rate = 48000});
        CHECK(run_file(d.vm_toml("[[sound]]\ncrossover = \"vm-b\"\n")).sounds.at(0).format ==
              kDefaultCrossoverFormat);
        // With a wav backend too.
        const VmConfig wav = run_file(d.vm_toml("[[sound]]\nbackend = \"wav:out.wav\"\nrate = 48000\nchannels = 1\n"));
        CHECK(wav_of(wav.sounds.at(0)).out == d.dir / "out.wav");
        CHECK(wav.sounds.at(0).format == PcmFormat{.channels = 1, .rate = 48000});
    }
    SECTION("absolute paths stay as they are") {
        const VmConfig cfg = run_file(d.vm_toml("[[sound]]\nbackend = \"wav:" + d.path("abs.wav") + ",in=" +
                                                d.in_wav.string() + "\"\n"));
        CHECK(wav_of(cfg.sounds.at(0)).out == d.dir / "abs.wav");
        CHECK(wav_of(cfg.sounds.at(0)).in == d.in_wav);
    }
    SECTION("defaults: model virtio-snd, backend none, no crossover, every format") {
        const VmConfig cfg = run_file(d.vm_toml("[[sound]]\n"));
        REQUIRE(cfg.sounds.size() == 1);
        CHECK(cfg.sounds[0].model == SoundModel::VirtioSnd);
        CHECK(std::holds_alternative<xover::sound::NoneSpec>(cfg.sounds[0].backend));
        CHECK_FALSE(cfg.sounds[0].crossover);
        CHECK_FALSE(cfg.sounds[0].format);
        CHECK(run_file(d.vm_toml("")).sounds.empty());
    }
}

TEST_CASE("sound tables: errors name the file, line, key and value", "[config][sound][errors]") {
    SoundDir d;
    const std::string f = d.path("vm.toml");
    CHECK(run_error(d.vm_toml("[[sound]]\nvolume = 3\n")) ==
          f + ":3: key \"sound[0].volume\": unknown key (known in [[sound]]: " + kSoundKeys + ")");
    CHECK(run_error(d.vm_toml("[[sound]]\nmodel = \"sb16\"\n")) ==
          f + ":3: key \"sound[0].model\": \"sb16\" is not a sound model (use virtio-snd)");
    CHECK(run_error(d.vm_toml("[[sound]]\nmodel = 1\n")) ==
          f + ":3: key \"sound[0].model\": expected a string, got the integer 1");
    CHECK(run_error(d.vm_toml("[[sound]]\nbackend = \"wav:\"\n")) ==
          f + ":3: key \"sound[0].backend\": invalid sound backend 'wav:': the output file name is empty (expected "
              "none or wav:OUT.wav[,in=IN.wav])");
    CHECK(run_error(d.vm_toml("[[sound]]\ncrossover = \"\"\n")) ==
          f + ":3: key \"sound[0].crossover\": empty crossover peer name");
    CHECK(run_error(d.vm_toml("[[sound]]\ncrossover = \"a b\"\n")) ==
          f + ":3: key \"sound[0].crossover\": \"a b\" " + kVmNameRule);
    CHECK(run_error(d.vm_toml("[[sound]]\ncrossover = \"auto\"\n")) ==
          f + ":3: key \"sound[0].crossover\": \"auto\" is for NICs; a sound card's crossover names its one peer VM");
    CHECK(run_error(d.vm_toml("[[sound]]\ncrossover = [\"vm-b\"]\n")) ==
          f + ":3: key \"sound[0].crossover\": expected a VM name (a string), got an array");
    CHECK(run_error(d.vm_toml("name = \"vm-a\"\n[[sound]]\ncrossover = \"vm-a\"\n")) ==
          f + ":4: key \"sound[0].crossover\": VM \"vm-a\" cannot be its own crossover peer");
    CHECK(run_error(d.vm_toml("sound = 1\n")) == f + ":2: key \"sound\": expected [[sound]] tables, got the integer 1");
    CHECK(run_error(d.vm_toml("[sound]\nmodel = \"virtio-snd\"\n")) ==
          f + ":2: key \"sound\": expected [[sound]] tables, got a table");
    CHECK(run_error(d.vm_toml("[[sound]]\n[[sound]]\n")) == f + ":3: key \"sound[1]\": a second sound card (a VM has at most one)");
    CHECK_THAT(run_error(d.vm_toml("sounds = []\n")),
               Catch::StartsWith(f + ":2: key \"sounds\": unknown key (known: ") && Catch::EndsWith(", nic, sound)"));

    // rate and channels: integers, and only the offered ones.
    CHECK(run_error(d.vm_toml("[[sound]]\nrate = 8000\n")) ==
          f + ":3: key \"sound[0].rate\": 8000 Hz is not offered (use 44100 or 48000)");
    CHECK(run_error(d.vm_toml("[[sound]]\nrate = -1\n")) ==
          f + ":3: key \"sound[0].rate\": -1 Hz is not offered (use 44100 or 48000)");
    CHECK(run_error(d.vm_toml("[[sound]]\nchannels = 3\n")) ==
          f + ":3: key \"sound[0].channels\": 3 channels are not offered (use 1 or 2)");
    CHECK(run_error(d.vm_toml("[[sound]]\nchannels = 0\n")) ==
          f + ":3: key \"sound[0].channels\": 0 channels are not offered (use 1 or 2)");
    CHECK(run_error(d.vm_toml("[[sound]]\nrate = \"48000\"\n")) ==
          f + ":3: key \"sound[0].rate\": expected an integer, got the string \"48000\"");
    CHECK(run_error(d.vm_toml("[[sound]]\nrate = 48000.0\n")) ==
          f + ":3: key \"sound[0].rate\": expected an integer, got a float");
    CHECK(run_error(d.vm_toml("[[sound]]\nchannels = true\n")) ==
          f + ":3: key \"sound[0].channels\": expected an integer, got a boolean");

    // A crossover card takes no backend: the error names the table.
    CHECK(run_error(d.vm_toml("[[sound]]\nbackend = \"wav:out.wav,in=in.wav\"\ncrossover = \"vm-b\"\n")) ==
          f + ":2: key \"sound[0]\": " + crossover_with_backend("wav:" + d.path("out.wav") + ",in=" + d.path("in.wav"),
                                                             "vm-b"));

    // Files are checked after the paths are taken relative to the file.
    CHECK(run_error(d.vm_toml("[[sound]]\nbackend = \"wav:no-such-dir/out.wav\"\n")) ==
          f + ":3: key \"sound[0].backend\": \"" + d.path("no-such-dir/out.wav") +
              "\" cannot be created: there is no directory \"" + d.path("no-such-dir") + "\"");
    CHECK(run_error(d.vm_toml("[[sound]]\nbackend = \"wav:out.wav,in=gone.wav\"\n")) ==
          f + ":3: key \"sound[0].backend\": \"" + d.path("gone.wav") + "\" cannot be read: No such file or directory");
}

TEST_CASE("sound flag: it replaces the file's [[sound]] list", "[config][sound]") {
    SoundDir d;
    const fs::path file = d.vm_toml(R"(
name = "vm-a"
[[sound]]
crossover = "vm-b"
rate = 44100
channels = 1
)");
    SECTION("no --sound: the file's card") {
        RunOptions opts;
        opts.config = file;
        opts.mem = "64M";  // another flag leaves the sounds alone
        const VmConfig cfg = resolve_run_config(opts);
        REQUIRE(cfg.sounds.size() == 1);
        CHECK(cfg.sounds[0].crossover == "vm-b");
        CHECK(cfg.sounds[0].format == PcmFormat{.channels = 1, .rate = 44100});
    }
    SECTION("no --sound: the file's wav card") {
        RunOptions opts;
        opts.config = d.vm_toml("[[sound]]\nbackend = \"wav:file-out.wav\"\n");
        const VmConfig cfg = resolve_run_config(opts);
        CHECK(wav_of(cfg.sounds.at(0)).out == d.dir / "file-out.wav");
    }
    SECTION("--sound: the flag's card, whole") {
        RunOptions opts;
        opts.config = file;
        opts.sounds = {"virtio-snd"};
        const VmConfig cfg = resolve_run_config(opts);
        REQUIRE(cfg.sounds.size() == 1);
        CHECK(std::holds_alternative<xover::sound::NoneSpec>(cfg.sounds[0].backend));
        CHECK_FALSE(cfg.sounds[0].crossover);  // not kept from the file
        CHECK_FALSE(cfg.sounds[0].format);     // nor its rate and channels
    }
    SECTION("--sound's format, not the file's") {
        RunOptions opts;
        opts.config = file;
        opts.sounds = {"virtio-snd,crossover=vm-b"};
        CHECK(resolve_run_config(opts).sounds.at(0).format == kDefaultCrossoverFormat);  // not 44100 Hz mono
        opts.sounds = {"virtio-snd,crossover=vm-b,rate=48000"};
        CHECK(resolve_run_config(opts).sounds.at(0).format == PcmFormat{.channels = 2, .rate = 48000});
        opts.sounds = {"virtio-snd,channels=2"};
        const VmConfig cfg = resolve_run_config(opts);
        CHECK_FALSE(cfg.sounds.at(0).crossover);
        CHECK(cfg.sounds.at(0).format == PcmFormat{.channels = 2, .rate = 48000});
    }
    SECTION("a flag's wav card replaces the file's crossover card, and the other way round") {
        RunOptions opts;
        opts.config = file;
        opts.sounds = {"virtio-snd,backend=wav:" + d.path("out.wav")};
        const VmConfig wav = resolve_run_config(opts);
        CHECK(wav_of(wav.sounds.at(0)).out == d.dir / "out.wav");
        CHECK_FALSE(wav.sounds.at(0).crossover);  // no mix of the two, so no exclusivity error
        CHECK_FALSE(wav.sounds.at(0).format);

        RunOptions back;
        back.config = d.vm_toml("name = \"vm-a\"\n[[sound]]\nbackend = \"wav:file-out.wav\"\n");
        back.sounds = {"virtio-snd,crossover=vm-b"};
        const VmConfig wired = resolve_run_config(back);
        CHECK(std::holds_alternative<xover::sound::NoneSpec>(wired.sounds.at(0).backend));
        CHECK(wired.sounds.at(0).crossover == "vm-b");
    }
    SECTION("errors name the flag, not the file, once it replaced the list") {
        RunOptions opts;
        opts.config = file;
        opts.sounds = {"virtio-snd,crossover=vm-a"};
        CHECK(error_of([&] { resolve_run_config(opts); }) ==
              "--sound \"virtio-snd,crossover=vm-a\": VM \"vm-a\" cannot be its own crossover peer");
        opts.sounds = {"virtio-snd,rate=22050"};
        CHECK(error_of([&] { resolve_run_config(opts); }) ==
              "--sound \"virtio-snd,rate=22050\": rate: 22050 Hz is not offered (use 44100 or 48000)");
    }
    SECTION("a flag fixes the file's bad card") {
        const fs::path bad = d.vm_toml("[[sound]]\nbackend = \"wav:no-such-dir/out.wav\"\n");
        CHECK_THAT(run_error(bad), Catch::Contains("cannot be created: there is no directory"));
        RunOptions opts;
        opts.config = bad;
        opts.sounds = {"virtio-snd,backend=wav:" + d.path("out.wav")};
        CHECK(wav_of(resolve_run_config(opts).sounds.at(0)).out == d.dir / "out.wav");

        // A file's crossover card with a backend is refused as the file is
        // read, before any flag: a --sound does not rescue it.
        const fs::path wired_wav = d.vm_toml("[[sound]]\nbackend = \"wav:out.wav\"\ncrossover = \"vm-b\"\n");
        RunOptions over;
        over.config = wired_wav;
        over.sounds = {"virtio-snd"};
        CHECK_THAT(error_of([&] { resolve_run_config(over); }),
                   Catch::StartsWith(d.path("vm.toml") + ":2: key \"sound[0]\": a crossover card"));
    }
    SECTION("--name changes what counts as the VM itself") {
        RunOptions opts;
        opts.config = file;
        opts.name = "vm-b";
        CHECK(error_of([&] { resolve_run_config(opts); }) ==
              d.path("vm.toml") + ":5: key \"sound[0].crossover\": VM \"vm-b\" cannot be its own crossover peer");
    }
}

TEST_CASE("sound cards in up files", "[config][sound][up]") {
    SoundDir d;
    const std::string f = d.path("up.toml");
    SECTION("a pair wired by their sound cards, and a wav card") {
        const auto vms = load_up_file(d.up_toml(R"(
[[vm]]
name = "vm-a"
kernel = "kernel.elf"
[[vm.sound]]
crossover = "vm-b"
rate = 44100
channels = 1
[[vm]]
name = "vm-b"
kernel = "kernel.elf"
[[vm.sound]]
model = "virtio-snd"
crossover = "vm-a"
rate = 44100
channels = 1
[[vm]]
name = "vm-c"
kernel = "kernel.elf"
[[vm.sound]]
backend = "wav:c-out.wav,in=in.wav"
[[vm]]
name = "vm-d"
kernel = "kernel.elf"
)"));
        REQUIRE(vms.size() == 4);
        REQUIRE(vms[0].sounds.size() == 1);
        CHECK(vms[0].sounds[0].crossover == "vm-b");
        CHECK(vms[0].sounds[0].format == PcmFormat{.channels = 1, .rate = 44100});
        REQUIRE(vms[1].sounds.size() == 1);
        CHECK(vms[1].sounds[0].crossover == "vm-a");
        CHECK(vms[1].sounds[0].format == vms[0].sounds[0].format);
        REQUIRE(vms[2].sounds.size() == 1);
        CHECK(wav_of(vms[2].sounds[0]).out == d.dir / "c-out.wav");  // relative to the file
        CHECK(wav_of(vms[2].sounds[0]).in == d.in_wav);
        CHECK_FALSE(vms[2].sounds[0].crossover);
        CHECK_FALSE(vms[2].sounds[0].format);
        CHECK(vms[3].sounds.empty());
    }
    SECTION("a pair with the default format") {
        const auto vms = load_up_file(d.up_toml("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\ncrossover = \"b\"\n"
                                         "[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\ncrossover = \"a\"\n"));
        CHECK(vms.at(0).sounds.at(0).format == kDefaultCrossoverFormat);
        CHECK(vms.at(1).sounds.at(0).format == kDefaultCrossoverFormat);
    }
    SECTION("a peer that is not in the file") {
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\ncrossover = \"ghost\"\n"
                       "[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\n") ==
              f + ":5: key \"vm[0].sound[0].crossover\": crossover peer \"ghost\" is not a VM in this file (VMs: a, b)");
    }
    SECTION("errors inside a [[vm.sound]] name the VM's index") {
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nmodel = \"hda\"\n") ==
              f + ":5: key \"vm[0].sound[0].model\": \"hda\" is not a sound model (use virtio-snd)");
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\n[[vm.sound]]\n") ==
              f + ":5: key \"vm[0].sound[1]\": a second sound card (a VM has at most one)");
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\ncrossover = \"a\"\n") ==
              f + ":5: key \"vm[0].sound[0].crossover\": VM \"a\" cannot be its own crossover peer");
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nchannels = 4\n") ==
              f + ":5: key \"vm[0].sound[0].channels\": 4 channels are not offered (use 1 or 2)");
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nrate = 32000\n") ==
              f + ":5: key \"vm[0].sound[0].rate\": 32000 Hz is not offered (use 44100 or 48000)");
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nbackend = \"wav:o.wav\"\n"
                       "crossover = \"b\"\n[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\n") ==
              f + ":4: key \"vm[0].sound[0]\": " + crossover_with_backend("wav:" + d.path("o.wav"), "b"));
    }
    SECTION("one wav output a VM") {
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nbackend = \"wav:o.wav\"\n"
                       "[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nbackend = \"wav:./o.wav\"\n") ==
              f + ":10: key \"vm[1].sound[0].backend\": \"" + d.path("./o.wav") +
                  "\" is also the sound output of vm[0] (give each VM its own)");
        // One capture file may feed several VMs.
        const auto vms = load_up_file(
            d.up_toml("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nbackend = \"wav:a.wav,in=in.wav\"\n"
               "[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\n[[vm.sound]]\nbackend = \"wav:b.wav,in=in.wav\"\n"));
        CHECK(wav_of(vms[1].sounds.at(0)).in == d.in_wav);
    }
}

TEST_CASE("validate_vm_config checks sound cards built by hand", "[config][sound]") {
    SoundDir d;
    VmConfig manual;
    manual.kernel = d.kernel;
    manual.sounds.push_back(
        SoundConfig{SoundModel::VirtioSnd, xover::sound::WavSpec{d.dir / "o.wav", d.in_wav}, std::nullopt, std::nullopt});
    validate_vm_config(manual, "manual");
    CHECK_FALSE(manual.sounds.at(0).format);  // every format the device offers

    VmConfig wired = manual;
    wired.sounds[0] = SoundConfig{SoundModel::VirtioSnd, xover::sound::NoneSpec{}, "peer", std::nullopt};
    validate_vm_config(wired, "manual");
    CHECK(wired.sounds.at(0).crossover == "peer");
    CHECK(wired.sounds.at(0).format == kDefaultCrossoverFormat);

    // A format given by hand is kept, with or without a crossover.
    VmConfig wired_mono = wired;
    wired_mono.sounds[0].format = PcmFormat{.channels = 1, .rate = 44100};
    validate_vm_config(wired_mono, "manual");
    CHECK(wired_mono.sounds.at(0).format == PcmFormat{.channels = 1, .rate = 44100});
    VmConfig wav_mono = manual;
    wav_mono.sounds[0].format = PcmFormat{.channels = 1, .rate = 48000};
    validate_vm_config(wav_mono, "manual");
    CHECK(wav_mono.sounds.at(0).format == PcmFormat{.channels = 1, .rate = 48000});

    VmConfig wired_wav = manual;
    wired_wav.sounds[0].crossover = "peer";
    CHECK(error_of([&] { validate_vm_config(wired_wav, "manual"); }) ==
          "manual: key \"sound[0]\": " +
              crossover_with_backend("wav:" + (d.dir / "o.wav").string() + ",in=" + d.in_wav.string(), "peer"));

    VmConfig bad_rate = wired;
    bad_rate.sounds[0].format = PcmFormat{.channels = 2, .rate = 8000};
    CHECK(error_of([&] { validate_vm_config(bad_rate, "manual"); }) ==
          "manual: key \"sound[0].rate\": 8000 Hz is not offered (use 44100 or 48000)");

    VmConfig bad_channels = manual;
    bad_channels.sounds[0].format = PcmFormat{.channels = 3, .rate = 48000};
    CHECK(error_of([&] { validate_vm_config(bad_channels, "manual"); }) ==
          "manual: key \"sound[0].channels\": 3 channels are not offered (use 1 or 2)");

    VmConfig two = manual;
    two.sounds.push_back(SoundConfig{});
    CHECK(error_of([&] { validate_vm_config(two, "manual"); }) ==
          "manual: key \"sound[1]\": a second sound card (a VM has at most one)");

    VmConfig bad_peer = wired;
    bad_peer.sounds[0].crossover = "auto";
    CHECK(error_of([&] { validate_vm_config(bad_peer, "manual"); }) ==
          "manual: key \"sound[0].crossover\": \"auto\" is for NICs; a sound card's crossover names its one peer VM");

    VmConfig self = wired;
    self.sounds[0].crossover = "vm";
    CHECK(error_of([&] { validate_vm_config(self, "manual"); }) ==
          "manual: key \"sound[0].crossover\": VM \"vm\" cannot be its own crossover peer");

    VmConfig no_dir = manual;
    no_dir.sounds[0].backend = xover::sound::WavSpec{d.dir / "nope" / "o.wav", std::nullopt};
    CHECK(error_of([&] { validate_vm_config(no_dir, "manual"); }) ==
          "manual: key \"sound[0].backend\": \"" + (d.dir / "nope" / "o.wav").string() +
              "\" cannot be created: there is no directory \"" + (d.dir / "nope").string() + "\"");

    VmConfig empty_out = manual;
    empty_out.sounds[0].backend = xover::sound::WavSpec{};  // a spec built by hand is checked as its text
    CHECK_THAT(error_of([&] { validate_vm_config(empty_out, "manual"); }),
               Catch::StartsWith("manual: key \"sound[0].backend\": invalid sound backend 'wav:': the output file "
                                 "name is empty"));
}
