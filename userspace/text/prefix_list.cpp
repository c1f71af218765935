#include "text/prefix_list.h"

#include <endian.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "base/errors.h"

namespace smtpfence {

namespace {

constexpr std::string_view kUtf8ByteOrderMark = "\xEF\xBB\xBF";
// A skipped line or an error shows this much of the line: enough to find it,
// not a whole binary file read by mistake.
constexpr size_t kShownLineLength = 200;

// The hand-written scans below are for speed: string_view's find_first_of
// and find_first_not_of call memchr once per character.
constexpr auto is_blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; };

// The prefix part of a line: before any comment, without blanks around.
std::string_view entry_of(std::string_view line) {
    size_t end = 0;
    while (end < line.size() && line[end] != '#' && line[end] != ';') ++end;
    size_t begin = 0;
    while (begin < end && is_blank(line[begin])) ++begin;
    while (end > begin && is_blank(line[end - 1])) --end;
    return line.substr(begin, end - begin);
}

std::string shown(std::string_view line) {
    if (line.size() <= kShownLineLength) return std::string(line);
    return std::string(line.substr(0, kShownLineLength)) + "...";
}

// The prefix `word` is, by the fast path or else by parse_cidr; or why it is
// none (parse_cidr's message).
std::optional<ValidCidr> prefix_of(std::string_view word, std::string& error) {
    if (auto valid = try_parse_cidr(word)) return valid;
    try {
        const ParsedCidr parsed = parse_cidr(word);
        return ValidCidr{parsed.cidr, !parsed.note.empty()};
    } catch (const UsageError& e) {
        error = e.what();
    }
    return std::nullopt;
}

// Eight address bytes from `at` as one big-endian number.
uint64_t address_bits(const Cidr& cidr, size_t at) {
    uint64_t bits;
    std::memcpy(&bits, cidr.addr.data() + at, sizeof bits);
    return be64toh(bits);
}

// Cidr's order (family, address bytes, prefix length) in integer compares:
// std::sort calls it some twenty times per prefix.
bool cidr_less(const Cidr& a, const Cidr& b) {
    if (a.family != b.family) return a.family < b.family;
    const uint64_t a_high = address_bits(a, 0), b_high = address_bits(b, 0);
    if (a_high != b_high) return a_high < b_high;
    const uint64_t a_low = address_bits(a, 8), b_low = address_bits(b, 8);
    if (a_low != b_low) return a_low < b_low;
    return a.prefixlen < b.prefixlen;
}

// An IPv4 prefix as a number below 2^40: address, then length, so that the
// numbers sort in Cidr's order.
uint64_t key_of(const Cidr& v4) {
    uint32_t address;
    std::memcpy(&address, v4.addr.data(), sizeof address);
    return uint64_t{be32toh(address)} << 8 | v4.prefixlen;
}

Cidr v4_of(uint64_t key) {
    Cidr v4;
    const uint32_t address = htobe32(static_cast<uint32_t>(key >> 8));
    std::memcpy(v4.addr.data(), &address, sizeof address);
    v4.prefixlen = static_cast<uint8_t>(key);
    return v4;
}

// Sorts numbers below 2^40 a byte at a time, lowest byte first (an LSD
// radix sort): five passes over the keys, where std::sort makes some twenty
// compares per key and took five times as long.
void radix_sort_40_bits(std::vector<uint64_t>& keys) {
    std::vector<uint64_t> sorted(keys.size());
    for (unsigned shift = 0; shift < 40; shift += 8) {
        std::array<size_t, 257> starts{};
        for (const uint64_t key : keys) ++starts[((key >> shift) & 0xff) + 1];
        for (size_t digit = 1; digit < starts.size(); ++digit) starts[digit] += starts[digit - 1];
        for (const uint64_t key : keys) sorted[starts[(key >> shift) & 0xff]++] = key;
        keys.swap(sorted);
    }
}

// Sorts the prefixes and removes repeats; returns how many were removed.
size_t sort_unique(std::vector<uint64_t>& v4_keys, std::vector<Cidr>& v4) {
    const size_t before = v4_keys.size();
    radix_sort_40_bits(v4_keys);
    v4_keys.erase(std::unique(v4_keys.begin(), v4_keys.end()), v4_keys.end());
    v4.reserve(v4_keys.size());
    for (const uint64_t key : v4_keys) v4.push_back(v4_of(key));
    return before - v4.size();
}

size_t sort_unique(std::vector<Cidr>& v6) {
    const size_t before = v6.size();
    // A lambda, not the function's address, so that the compares are inlined.
    std::sort(v6.begin(), v6.end(), [](const Cidr& a, const Cidr& b) { return cidr_less(a, b); });
    v6.erase(std::unique(v6.begin(), v6.end()), v6.end());
    return before - v6.size();
}

}  // namespace

std::string origin_name(std::string_view origin) {
    return origin == "-" ? "stdin" : std::string(origin);
}

PrefixList parse_prefix_list(std::string_view content, std::string_view origin, bool skip_invalid,
                             size_t max_prefixes) {
    PrefixList list;
    // Windows editors may start a UTF-8 file with a byte order mark.
    size_t pos = content.starts_with(kUtf8ByteOrderMark) ? kUtf8ByteOrderMark.size() : 0;
    // IPv4 prefixes are read as numbers: less than half the memory of a Cidr,
    // and sorted faster.
    std::vector<uint64_t> v4_keys;
    while (pos < content.size()) {
        size_t end = content.find('\n', pos);
        if (end == std::string_view::npos) end = content.size();
        const std::string_view line = content.substr(pos, end - pos);
        pos = end + 1;
        ++list.lines;

        const std::string_view entry = entry_of(line);
        if (entry.empty()) continue;
        std::string error;
        if (std::any_of(entry.begin(), entry.end(), is_blank)) {
            error = "more than one word: a line holds one prefix, and a comment starts with # or ;";
        } else if (const auto valid = prefix_of(entry, error)) {
            if (valid->cidr.family == Family::V4) {
                v4_keys.push_back(key_of(valid->cidr));
            } else {
                list.v6.push_back(valid->cidr);
            }
            list.ipv4_mapped += valid->was_ipv4_mapped;
            continue;
        }
        const std::string_view text = line.substr(0, line.size() - (line.ends_with('\r') ? 1 : 0));
        if (!skip_invalid) {
            throw UsageError(origin_name(origin) + ":" + std::to_string(list.lines) + ": " + error + ": `" +
                             shown(text) + "`; fix the line, or pass --skip-invalid to import the list without it");
        }
        list.skipped.push_back({list.lines, shown(text), std::move(error)});
    }
    list.duplicates = sort_unique(v4_keys, list.v4) + sort_unique(list.v6);
    const size_t prefixes = list.v4.size() + list.v6.size();
    if (prefixes > max_prefixes) {
        throw UsageError(origin_name(origin) + ": " + std::to_string(prefixes) + " distinct prefixes, more than the " +
                         std::to_string(max_prefixes) +
                         " a list can hold (the kernel's list table indexes its entries with 24 bits): import "
                         "fewer, e.g. with adjacent prefixes merged into shorter ones");
    }
    return list;
}

void check_list_name(std::string_view name) {
    const auto allowed = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    };
    if (!name.empty() && name.size() <= kMaxListNameLength && name.front() != '.' && name.front() != '-' &&
        std::all_of(name.begin(), name.end(), allowed)) {
        return;
    }
    throw UsageError("list name '" + std::string(name) + "' is not valid: use 1 to " +
                     std::to_string(kMaxListNameLength) +
                     " letters, digits, '.', '_' or '-', not starting with '.' or '-', e.g. spamhaus-drop");
}

}  // namespace smtpfence
