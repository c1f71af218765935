// The line-oriented files smtpfence reads (the saved rule set, the boot
// config): lines handed over one by one, and a bad line reported where it is.
#pragma once

#include <string>
#include <string_view>

#include "base/errors.h"

namespace smtpfence {

// Calls `per_line(line)` for every line of `text` (without its '\n'); a
// UsageError thrown for a line becomes "SOURCE:N: message".
template <typename PerLine>
void for_each_line(std::string_view text, const std::string& source, PerLine per_line) {
    size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        try {
            per_line(line);
        } catch (const UsageError& e) {
            throw UsageError(source + ":" + std::to_string(line_no) + ": " + e.what());
        }
    }
}

}  // namespace smtpfence
