#include "text/utf8.h"

#include <cstdio>

#include "base/errors.h"

namespace smtpfence {

namespace {

// The length of the well-formed sequence at `pos`, or 0 (RFC 3629's table).
size_t sequence_length(std::string_view text, size_t pos) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    const auto in = [&](size_t i, unsigned lo, unsigned hi) {
        return i < text.size() && byte(i) >= lo && byte(i) <= hi;
    };
    const unsigned lead = byte(pos);
    if (lead < 0x80) return 1;
    if (lead >= 0xc2 && lead <= 0xdf) return in(pos + 1, 0x80, 0xbf) ? 2 : 0;
    if (lead >= 0xe0 && lead <= 0xef) {
        const unsigned lo = lead == 0xe0 ? 0xa0 : 0x80;  // no overlong forms
        const unsigned hi = lead == 0xed ? 0x9f : 0xbf;  // no surrogates
        return in(pos + 1, lo, hi) && in(pos + 2, 0x80, 0xbf) ? 3 : 0;
    }
    if (lead >= 0xf0 && lead <= 0xf4) {
        const unsigned lo = lead == 0xf0 ? 0x90 : 0x80;
        const unsigned hi = lead == 0xf4 ? 0x8f : 0xbf;  // nothing above U+10FFFF
        return in(pos + 1, lo, hi) && in(pos + 2, 0x80, 0xbf) && in(pos + 3, 0x80, 0xbf) ? 4 : 0;
    }
    return 0;
}

// The offset of the first byte that is not part of a well-formed sequence,
// or npos.
size_t first_invalid(std::string_view text, size_t* characters) {
    size_t count = 0;
    for (size_t pos = 0; pos < text.size(); ++count) {
        const size_t n = sequence_length(text, pos);
        if (n == 0) return pos;
        pos += n;
    }
    if (characters) *characters = count;
    return std::string_view::npos;
}

}  // namespace

std::optional<size_t> utf8_length(std::string_view text) {
    size_t characters = 0;
    if (first_invalid(text, &characters) != std::string_view::npos) return std::nullopt;
    return characters;
}

void check_utf8(std::string_view what, std::string_view text, std::string_view fix) {
    const size_t bad = first_invalid(text, nullptr);
    if (bad == std::string_view::npos) return;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[bad]));
    throw UsageError(std::string(what) + " is not UTF-8 (byte " + hex + " at position " + std::to_string(bad + 1) +
                     "): " + std::string(fix) + "; nothing was changed");
}

}  // namespace smtpfence
