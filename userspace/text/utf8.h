// Text that ends up in JSON (reasons, paths of list files) is UTF-8: checked
// where an admin types it, so that no byte of it can make a JSON document
// invalid later.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpfence {

// The number of characters (code points) of `text` when it is well-formed
// UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF); else
// std::nullopt.
std::optional<size_t> utf8_length(std::string_view text);

// What to do about text that is not UTF-8, typed at a terminal.
inline constexpr std::string_view kUtf8Fix =
    "write it in UTF-8 (a terminal or script in Latin-1? check `locale`, or convert with `iconv -f latin1 -t "
    "utf-8`)";

// UsageError when `what` (an option, "the file name") is not well-formed
// UTF-8, naming the first bad byte and its position, and `fix`.
void check_utf8(std::string_view what, std::string_view text, std::string_view fix = kUtf8Fix);

}  // namespace smtpfence
