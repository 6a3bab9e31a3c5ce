// toml++ 3.3 (Debian 12) reaches __builtin_unreachable (undefined
// behaviour) whenever it asks whether a character in U+00A1..U+0499,
// U+2C6E..U+3067 or U+FB06..U+FEFE is whitespace: its lookup table has
// holes there. It asks in many places (a table header, after a value, past
// a line-ending backslash in a string...), and tests/fuzz/fuzz_toml_config
// kept finding new ones. So toml++ never sees a non-ASCII byte: this pass
// rewrites the text into ASCII that means the same to TOML.
//   - Outside strings and comments TOML allows no non-ASCII character:
//     refused here (file:line:column).
//   - In a comment, each non-ASCII character becomes '?' (comments are
//     dropped anyway).
//   - In a basic string ("..." and """..."""), each becomes its \uXXXX or
//     \UXXXXXXXX escape: the same string value.
//   - A literal string ('...' and '''...''') that holds one has no escapes,
//     so it becomes the basic string of the same value ('\' and '"'
//     escaped too). Literal strings without one are left as they are.
// Lines never change, so toml++'s line numbers stay right; its columns on a
// line that held a non-ASCII character count the escapes. Bytes that are
// not UTF-8 are refused here, as toml++ would.
//
// The scan knows just enough TOML to tell strings and comments apart. If it
// misjudges broken TOML, toml++ still sees only ASCII and reports the error.
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm::config_detail {

namespace {

class Asciifier {
public:
    Asciifier(std::string_view text, const std::string& file) : text_(text), file_(file) { out_.reserve(text.size()); }

    std::string run() {
        if (starts("\xEF\xBB\xBF")) i_ = 3;  // a byte-order mark (some editors write one): TOML allows it
        while (i_ < text_.size()) step();
        return std::move(out_);
    }

private:
    enum class In { Syntax, Comment, Basic, MultiBasic };

    bool starts(std::string_view s) const { return text_.substr(i_, s.size()) == s; }
    unsigned char byte(std::size_t at) const { return static_cast<unsigned char>(text_[at]); }

    // Copies one byte, keeping line and column.
    void copy() {
        char c = text_[i_++];
        out_ += c;
        if (c == '\n') ++line_, column_ = 0;
        else ++column_;
    }

    [[noreturn]] void fail(std::string_view what) const {
        throw Error("{}:{}:{}: TOML syntax error: {}", file_, line_, column_ + 1, what);
    }

    // The UTF-8 character at i_ (its first byte is >= 0x80); moves past it.
    char32_t take_utf8() {
        unsigned char b = byte(i_);
        std::size_t n = (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3 : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
        if (n == 0 || i_ + n > text_.size()) fail("a byte that is not UTF-8");
        char32_t cp = b & (0x7F >> n);
        for (std::size_t k = 1; k < n; ++k) {
            unsigned char cont = byte(i_ + k);
            if ((cont & 0xC0) != 0x80) fail("a byte that is not UTF-8");
            cp = cp << 6 | (cont & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            fail("a byte that is not UTF-8");
        i_ += n;
        ++column_;
        return cp;
    }

    static std::string escape(char32_t cp) {
        return cp <= 0xFFFF ? fmt::format("\\u{:04X}", std::uint32_t(cp)) : fmt::format("\\U{:08X}", std::uint32_t(cp));
    }

    void step() {
        const unsigned char c = byte(i_);
        switch (in_) {
        case In::Syntax: return syntax(c);
        case In::Comment:
            if (c == '\n') in_ = In::Syntax, last_ = '\n';
            if (c >= 0x80) return take_utf8(), void(out_ += '?');
            return copy();
        case In::Basic:
        case In::MultiBasic: return basic(c);
        }
    }

    void syntax(unsigned char c) {
        if (c >= 0x80) fail("a non-ASCII character outside a string or comment");
        // A quote opens a string only where TOML has a key or a value: at
        // the start of a line or after = [ { , . (elsewhere, as in
        // `x = 5"...`, toml++ reads on as syntax, and so does this scan).
        bool value_start = std::string_view("\n=[{,.").find(last_) != std::string_view::npos;
        if (c == '#') {
            in_ = In::Comment;
        } else if (c == '"' && value_start) {
            in_ = starts("\"\"\"") ? In::MultiBasic : In::Basic;
            if (in_ == In::MultiBasic) copy(), copy();
            last_ = '"';  // what follows a string is not a key or value start
        } else if (c == '\'' && value_start) {
            return literal();
        } else if (c == '\n') {
            last_ = '\n';
        } else if (c != ' ' && c != '\t' && c != '\r') {
            last_ = char(c);
        }
        copy();
    }

    void basic(unsigned char c) {
        if (c >= 0x80) {
            out_ += escape(take_utf8());
        } else if (c == '\\') {
            copy();
            // TOML has no escape of a non-ASCII character.
            if (i_ < text_.size() && byte(i_) >= 0x80) fail("a backslash before a non-ASCII character (no such escape)");
            if (i_ < text_.size() && byte(i_) != '\n') copy();  // the escaped byte is not a closing quote
        } else if (in_ == In::MultiBasic && starts("\"\"\"")) {
            copy(), copy(), copy();
            in_ = In::Syntax;
        } else if (in_ == In::Basic && (c == '"' || c == '\n')) {
            if (c == '\n') last_ = '\n';  // unterminated: toml++ reports it
            in_ = In::Syntax;
            copy();
        } else {
            copy();
        }
    }

    // A literal string at i_: as it is if it is ASCII, else as the basic
    // string of the same value.
    void literal() {
        last_ = '"';
        const bool multi = starts("'''");
        const std::size_t open = multi ? 3 : 1;
        std::size_t end = i_ + open;  // one past the content
        std::size_t close = 0;        // the closing quotes
        if (multi) {
            std::size_t at = text_.find("'''", end);
            if (at == std::string_view::npos) {
                end = text_.size();
            } else {
                // Of a run of 4 or 5 quotes, the first one or two are content.
                std::size_t run = 3;
                while (at + run < text_.size() && text_[at + run] == '\'' && run < 5) ++run;
                end = at + (run - 3), close = 3;
            }
        } else {
            std::size_t at = text_.find_first_of("'\n", end);
            if (at == std::string_view::npos) end = text_.size();
            else end = at, close = text_[at] == '\'' ? 1 : 0;
        }
        const std::string_view content = text_.substr(i_ + open, end - (i_ + open));
        bool ascii = true;
        for (char ch : content) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
        if (ascii) {
            while (i_ < end + close) copy();
            return;
        }
        out_ += multi ? "\"\"\"" : "\"";
        i_ += open, column_ += open;
        while (i_ < end) {
            unsigned char ch = byte(i_);
            if (ch >= 0x80) out_ += escape(take_utf8());
            else if (ch == '\\' || ch == '"') out_ += '\\', copy();
            else copy();
        }
        if (close != 0) {
            out_ += multi ? "\"\"\"" : "\"";
            i_ += close, column_ += close;
        }
    }

    std::string_view text_;
    const std::string& file_;
    std::string out_;
    std::size_t i_ = 0, line_ = 1, column_ = 0;
    In in_ = In::Syntax;
    char last_ = '\n';  // the last syntax character other than space and tab
};

}  // namespace

std::string asciify_toml(std::string_view text, const std::string& file) { return Asciifier(text, file).run(); }

}  // namespace xover::vmm::config_detail
