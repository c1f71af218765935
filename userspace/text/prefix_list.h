// A named prefix list as an admin imports it (`smtpfence import FILE --as
// NAME`): a file of one prefix per line, such as Spamhaus DROP, up to millions
// of lines, so it is read without a per-line allocation or exception.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "text/cidr.h"

namespace smtpfence {

// The most prefixes one list holds: the kernel's list table indexes its
// entries with 24 bits.
inline constexpr size_t kMaxListPrefixes = size_t{1} << 24;
// The longest list name: it becomes a file name and a name in output.
inline constexpr size_t kMaxListNameLength = 64;

// An invalid line left out (parse_prefix_list with skip_invalid).
struct SkippedLine {
    size_t line = 0;    // from 1
    std::string text;   // the line as read, without its line ending (shortened past 200 bytes)
    std::string error;  // what is wrong with it
};

struct PrefixList {
    // Canonical, sorted (address, then prefix length), duplicates removed.
    std::vector<Cidr> v4, v6;
    size_t lines = 0;       // lines read
    size_t duplicates = 0;  // prefixes given more than once: every repeat counts one
    // IPv4-mapped IPv6 prefixes (::ffff:203.0.113.0/120) kept as the IPv4
    // prefixes they mean, as parse_cidr does: such senders arrive as IPv4.
    size_t ipv4_mapped = 0;
    std::vector<SkippedLine> skipped;  // only with skip_invalid
};

// Parses a prefix list file's content. One prefix per line, IPv4 and IPv6
// mixed, valid as parse_cidr says (a bare address is a /32 or /128; host bits
// set is an error); blank lines; '#' or ';' starts a comment anywhere in a
// line (DROP's `203.0.113.0/24 ; SBL123`); blanks around and CRLF line endings
// are fine; a second word on a line is an error. `origin` names the content in
// errors ("drop.txt", or "-" for stdin). An invalid line throws UsageError
// "ORIGIN:LINE: what is wrong: `the line`" and how to go on, unless
// `skip_invalid`, which lists it in `skipped` instead. More than
// `max_prefixes` distinct prefixes throws UsageError.
PrefixList parse_prefix_list(std::string_view content, std::string_view origin, bool skip_invalid,
                             size_t max_prefixes = kMaxListPrefixes);

// A list name: 1 to kMaxListNameLength characters of A-Z a-z 0-9 . _ -, not
// starting with '.' or '-' (it names a file, and must not read as an option).
// UsageError saying what is allowed.
void check_list_name(std::string_view name);

// "stdin" for "-", else `origin`: what errors call the content.
std::string origin_name(std::string_view origin);

}  // namespace smtpfence
