// One imported list on disk, beside the state file, so that the list survives
// a reboot: the kernel side restores it from this file. A header of
// `# key: value` lines, then the prefixes, one per line:
//
//   # format: smtpfence-list 1
//   # name: spamhaus-drop
//   # action: block
//   # dry_run: false
//   # reason: Spamhaus DROP
//   # by: alice
//   # origin: mx1 (ssh from 198.51.100.5)
//   # created_unix: 1795600000
//   # expires_unix: 0
//   # source: /srv/lists/drop.txt
//   # source_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//   # entries: 2
//   203.0.113.0/24
//   2001:db8:bad::/48
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/cidr.h"
#include "text/rule.h"

namespace smtpfence {

// The `format` a list file starts with; another value is another layout.
inline constexpr std::string_view kListFileFormat = "smtpfence-list 1";

struct StoredList {
    std::string name;
    Action action = Action::Block;  // Block or Allow
    bool dry_run = false;
    std::string reason, by, origin;
    std::string source;         // the path given to import, or "stdin"
    std::string source_sha256;  // of the file as read, in lowercase hex (sha256sum's)
    uint64_t created_unix = 0;
    uint64_t expires_unix = 0;  // 0 = never
    std::vector<Cidr> v4, v6;
    uint64_t entries = 0;  // as the header says (set by the parsers only)
};

// The file's content. Prefixes are written v4 before v6, each by address then
// length, once each. UsageError when a field cannot be stored: a name
// check_list_name refuses, an action other than block or allow, a dry run of
// an allow, a reason check_reason refuses, a `by`, origin or source that is
// not one line of printable text (or longer than a rule's), a source_sha256
// that is not 64 lowercase hex digits.
std::string format_list_file(const StoredList& list);

// Parses what format_list_file wrote; `path` names it in errors. Throws
// UsageError "PATH:LINE: ..." on anything else: another format, a missing,
// repeated, unknown or invalid key, a bad or misplaced prefix (the body is in
// the order format_list_file writes), an entries count that differs, a file
// not ending in a newline (cut short). A damaged file is refused whole.
StoredList parse_list_file(std::string_view content, std::string_view path);
// The header alone, checked as parse_list_file checks it, for a summary of
// the list without reading its prefixes (v4 and v6 stay empty).
StoredList parse_list_file_header(std::string_view content, std::string_view path);

}  // namespace smtpfence
