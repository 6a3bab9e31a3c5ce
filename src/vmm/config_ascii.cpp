// TOML 1.0 allows non-ASCII characters only inside strings and comments.
// Checked before toml++ sees the text: toml++ 3.3 (Debian 12) reaches
// __builtin_unreachable (undefined behaviour) when it asks whether such a
// character is whitespace for some code points (U+00A1..U+0499,
// U+2C6E..U+3067), e.g. in a table header (found by
// tests/fuzz/fuzz_toml_config). The scan knows just enough TOML to tell
// strings and comments apart.
#include <string_view>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm::config_detail {

void refuse_non_ascii_syntax(std::string_view text, const std::string& file) {
    enum class In { Syntax, Comment, Basic, Literal, MultiBasic, MultiLiteral } in = In::Syntax;
    std::size_t line = 1, column = 0;
    // A quote opens a string only where TOML has a key or a value: at the
    // start of a line or after = [ { , . (elsewhere, as in `x = 5"...`,
    // toml++ reads on as syntax, and so does this scan).
    char last = '\n';  // the last syntax character other than space and tab
    auto starts = [&](std::size_t i, std::string_view s) { return text.substr(i, s.size()) == s; };
    // A backslash in a basic string escapes the next byte. TOML has no
    // escape of a non-ASCII character, and toml++ asks whether it is
    // whitespace (a line-ending backslash), which is the same unreachable
    // branch (fuzz_toml_config: `\\` then U+FEDF in a """ string).
    auto skip_escape = [&](std::size_t& i) {
        if (i + 1 >= text.size() || text[i + 1] == '\n') return;  // the newline is counted as one
        if (static_cast<unsigned char>(text[i + 1]) >= 0x80)
            throw Error("{}:{}:{}: TOML syntax error: a backslash before a non-ASCII character (no such escape)",
                        file, line, column + 1);
        ++i, ++column;
    };
    // A backslash followed by spaces makes toml++ read on for a line end,
    // and a multi-line string's line-ending backslash trims every space and
    // newline after it; toml++ asks of the first character past them
    // whether it is whitespace too, and a non-ASCII one is the same
    // unreachable branch (fuzz_toml_config: `\`, a newline, U+FEDF). After
    // a line end that is valid TOML, but refused with a way around it.
    auto check_after_backslash = [&](std::size_t i) {
        std::size_t j = i + 1, at_line = line, at_column = column;
        bool line_end = false;
        for (; j < text.size(); ++j) {
            if (text[j] == '\n') line_end = true, ++at_line, at_column = 0;
            else if (text[j] == ' ' || text[j] == '\t' || text[j] == '\r') ++at_column;
            else break;
        }
        if (j == i + 1 || j >= text.size() || static_cast<unsigned char>(text[j]) < 0x80) return;
        if (!line_end)
            throw Error("{}:{}:{}: TOML syntax error: a backslash before a space (no such escape)", file, line,
                        column + 1);
        throw Error("{}:{}:{}: TOML: a non-ASCII character right after a line-ending backslash is not supported "
                    "(toml++ 3.3 cannot read it); write it as a \\u escape",
                    file, at_line, at_column + 1);
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        ++column;
        if (c == '\n') {
            ++line, column = 0;
            if (in == In::Comment || in == In::Basic || in == In::Literal) in = In::Syntax;  // single-line ends
            if (in == In::Syntax) last = '\n';
            continue;
        }
        switch (in) {
        case In::Syntax:
            if (c >= 0x80)
                throw Error("{}:{}:{}: TOML syntax error: a non-ASCII character outside a string or comment", file,
                            line, column);
            if (c == '#') {
                in = In::Comment;
            } else if ((c == '"' || c == '\'') && std::string_view("\n=[{,.").find(char(last)) != std::string_view::npos) {
                if (starts(i, "\"\"\"")) in = In::MultiBasic, i += 2, column += 2;
                else if (starts(i, "'''")) in = In::MultiLiteral, i += 2, column += 2;
                else in = c == '"' ? In::Basic : In::Literal;
                last = '"';  // what follows a string is not a key or value start
            } else if (c != ' ' && c != '\t') {
                last = char(c);
            }
            break;
        case In::Comment: break;
        case In::Basic:
            if (c == '\\') check_after_backslash(i), skip_escape(i);  // the next byte is not the closing quote
            else if (c == '"') in = In::Syntax;
            break;
        case In::Literal:
            if (c == '\'') in = In::Syntax;
            break;
        case In::MultiBasic:
            if (c == '\\') check_after_backslash(i), skip_escape(i);
            else if (starts(i, "\"\"\"")) in = In::Syntax, i += 2, column += 2;
            break;
        case In::MultiLiteral:
            if (starts(i, "'''")) in = In::Syntax, i += 2, column += 2;
            break;
        }
    }
}

}  // namespace xover::vmm::config_detail
