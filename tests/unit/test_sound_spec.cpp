// Sound backend specs: what parses, what is refused and why, and that
// to_string gives back what was parsed.
#include <catch2/catch.hpp>

#include <string>

#include "xover/error.hpp"
#include "xover/sound/spec.hpp"

using namespace xover::sound;

namespace {

std::string refusal(const std::string& spec) {
    try {
        parse_backend_spec(spec);
    } catch (const xover::Error& e) {
        return e.what();
    }
    return "(accepted)";
}

}  // namespace

TEST_CASE("sound spec: none and wav parse", "[sound][spec]") {
    CHECK(std::holds_alternative<NoneSpec>(parse_backend_spec("none")));

    auto out_only = std::get<WavSpec>(parse_backend_spec("wav:a.wav"));
    CHECK(out_only.out == "a.wav");
    CHECK_FALSE(out_only.in.has_value());

    auto both = std::get<WavSpec>(parse_backend_spec("wav:/tmp/out dir/a.wav,in=b.wav"));
    CHECK(both.out == "/tmp/out dir/a.wav");
    REQUIRE(both.in.has_value());
    CHECK(*both.in == "b.wav");
}

TEST_CASE("sound spec: errors name the spec and the reason", "[sound][spec]") {
    CHECK_THAT(refusal("wav:"), Catch::Contains("'wav:'") && Catch::Contains("output file name is empty"));
    CHECK_THAT(refusal("wav:,in=x"), Catch::Contains("output file name is empty"));
    CHECK_THAT(refusal("wav:a,in="), Catch::Contains("input file name is empty"));
    CHECK_THAT(refusal("wav:a,bogus=1"), Catch::Contains("unknown option 'bogus=1'"));
    CHECK_THAT(refusal("wav:a,"), Catch::Contains("unknown option ''"));
    CHECK_THAT(refusal("wav:a,in=b,in=c"), Catch::Contains("in= is given twice"));
    CHECK_THAT(refusal("alsa"), Catch::Contains("'alsa'") && Catch::Contains("unknown kind"));
    CHECK_THAT(refusal(""), Catch::Contains("unknown kind"));
    CHECK_THAT(refusal("WAV:a.wav"), Catch::Contains("unknown kind"));
    // Refused; the message quotes the spec, NUL included, so what() (a C
    // string) ends at the NUL: only the refusal itself is checked.
    CHECK_THAT(refusal(std::string("wav:a\0b", 7)), Catch::StartsWith("invalid sound backend"));
    // Every refusal says what would have been accepted.
    CHECK_THAT(refusal("alsa"), Catch::Contains("expected none or wav:OUT.wav[,in=IN.wav]"));
}

TEST_CASE("sound spec: to_string round-trips", "[sound][spec]") {
    for (std::string spec : {"none", "wav:a.wav", "wav:a.wav,in=b.wav", "wav:/x/y z.wav,in=/dev/../in.wav"}) {
        CAPTURE(spec);
        BackendSpec parsed = parse_backend_spec(spec);
        CHECK(to_string(parsed) == spec);
        CHECK(to_string(parse_backend_spec(to_string(parsed))) == spec);
    }
    CHECK(to_string(WavSpec{.out = "o.wav", .in = "i.wav"}) == "wav:o.wav,in=i.wav");
}
