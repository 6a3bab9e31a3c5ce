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
            if (c == '\\') skip_escape(i);  // the next byte is not the closing quote
            else if (c == '"') in = In::Syntax;
            break;
        case In::Literal:
            if (c == '\'') in = In::Syntax;
            break;
        case In::MultiBasic:
            if (c == '\\') skip_escape(i);
            else if (starts(i, "\"\"\"")) in = In::Syntax, i += 2, column += 2;
            break;
        case In::MultiLiteral:
            if (starts(i, "'''")) in = In::Syntax, i += 2, column += 2;
            break;
        }
    }
}

}  // namespace xover::vmm::config_detail
