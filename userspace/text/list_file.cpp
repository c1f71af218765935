#include "text/list_file.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <optional>

#include "base/errors.h"
#include "text/prefix_list.h"
#include "text/rule_options.h"

namespace smtpfence {

namespace {

// What every error about a damaged file ends with.
constexpr std::string_view kImportAgain = "the list file is damaged: import the list again";

// The header's keys, in the order format_list_file writes them.
enum class Key {
    Format,
    Name,
    Action,
    DryRun,
    Reason,
    By,
    Origin,
    CreatedUnix,
    ExpiresUnix,
    Source,
    SourceSha256,
    Entries
};
constexpr std::array<std::string_view, 12> kKeyNames = {"format",       "name",   "action",        "dry_run",
                                                        "reason",       "by",     "origin",        "created_unix",
                                                        "expires_unix", "source", "source_sha256", "entries"};

std::string_view name_of(Key key) {
    return kKeyNames[static_cast<size_t>(key)];
}

std::optional<Key> key_named(std::string_view name) {
    const auto found = std::find(kKeyNames.begin(), kKeyNames.end(), name);
    if (found == kKeyNames.end()) return std::nullopt;
    return static_cast<Key>(found - kKeyNames.begin());
}

// One line of printable text (the header holds one value per line) of at
// most `max_length` bytes; else UsageError naming `field`.
void check_one_line(std::string_view field, const std::string& value, size_t max_length) {
    if (value.size() > max_length) {
        throw UsageError("a list's " + std::string(field) + " is " + std::to_string(value.size()) + " bytes; at most " +
                         std::to_string(max_length) + " fit");
    }
    for (unsigned char c : value) {
        if (c < 0x20 || c == 0x7f) {
            throw UsageError("a list's " + std::string(field) + " must be one line of printable text");
        }
    }
}

void check_source(const std::string& source) {
    for (unsigned char c : source) {
        if (c < 0x20 || c == 0x7f) {
            throw UsageError("the path '" + source +
                             "' has a control character, which a list file cannot record: rename the file, or "
                             "import it from stdin (smtpfence import - < FILE)");
        }
    }
}

Action action_named(std::string_view name) {
    if (name == "block") return Action::Block;
    if (name == "allow") return Action::Allow;
    throw UsageError("a list's action is block or allow, not '" + std::string(name) + "'");
}

void check_sha256(const std::string& hex) {
    const bool valid = hex.size() == 64 && std::all_of(hex.begin(), hex.end(), [](char c) {
                           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                       });
    if (!valid)
        throw UsageError("the source's SHA-256 '" + hex + "' is not 64 lowercase hex digits (sha256sum's form)");
}

// A dry run counts what a block would drop; an allow drops nothing.
void check_list_dry_run(Action action, bool dry_run) {
    RuleSpec as_rule;
    as_rule.action = action;
    as_rule.dry_run = dry_run;
    check_dry_run(as_rule);
}

// Appends format_cidr(cidr) without a temporary string, and IPv4 without
// inet_ntop's sprintf: a million lines are written at once.
void append_cidr(std::string& out, const Cidr& cidr) {
    char text[INET6_ADDRSTRLEN];
    if (cidr.family == Family::V4) {
        char* end = text;
        for (size_t i = 0; i < 4; ++i) {
            if (i > 0) *end++ = '.';
            end = std::to_chars(end, end + 3, cidr.addr[i]).ptr;
        }
        out.append(text, end);
    } else {
        out += inet_ntop(AF_INET6, cidr.addr.data(), text, sizeof text);
    }
    out += '/';
    out.append(text, std::to_chars(text, text + 3, cidr.prefixlen).ptr);
}

uint64_t parse_unsigned(std::string_view value) {
    uint64_t number = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    const bool plain = !value.empty() && (value.size() == 1 || value.front() != '0');
    if (!plain || ec != std::errc{} || end != value.data() + value.size()) {
        throw UsageError("'" + std::string(value) + "' is not a decimal number");
    }
    return number;
}

bool parse_bool(std::string_view value) {
    if (value == "true") return true;
    if (value == "false") return false;
    throw UsageError("'" + std::string(value) + "' is not true or false");
}

// The header as read: each key's value and line.
struct Header {
    std::array<std::optional<std::string_view>, kKeyNames.size()> values;
    std::array<size_t, kKeyNames.size()> lines{};
};

// Reads one header line ("# key: value") into `header`.
void read_header_line(std::string_view line, size_t line_no, Header& header) {
    const size_t colon = line.find(':');
    if (!line.starts_with("# ") || colon == std::string_view::npos) {
        throw UsageError("`" + std::string(line) + "` is not a `# key: value` line");
    }
    const std::string_view name = line.substr(2, colon - 2);
    const std::optional<Key> key = key_named(name);
    if (!key) throw UsageError("unknown key `" + std::string(name) + "`");
    const auto index = static_cast<size_t>(*key);
    if (header.values[index]) {
        throw UsageError("`" + std::string(name) + "` is given twice (line " + std::to_string(header.lines[index]) +
                         " and this one)");
    }
    std::string_view value = line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
    header.values[index] = value;
    header.lines[index] = line_no;
}

}  // namespace

std::string format_list_file(const StoredList& list) {
    check_list_name(list.name);
    action_named(action_name(list.action));  // block or allow, nothing else
    check_list_dry_run(list.action, list.dry_run);
    check_stored_reason(list.reason);
    check_one_line("by", list.by, FENCE_USER_LEN - 1);
    check_one_line("origin", list.origin, FENCE_ORIGIN_LEN - 1);
    check_source(list.source);
    check_sha256(list.source_sha256);
    std::vector<Cidr> entries;
    entries.reserve(list.v4.size() + list.v6.size());
    entries.insert(entries.end(), list.v4.begin(), list.v4.end());
    entries.insert(entries.end(), list.v6.begin(), list.v6.end());
    // In the order the reader checks; a PrefixList's already is.
    if (std::adjacent_find(entries.begin(), entries.end(), std::greater_equal<>()) != entries.end()) {
        std::sort(entries.begin(), entries.end());
        entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
    }
    if (entries.size() > kMaxListPrefixes) {
        throw UsageError("list " + list.name + " has " + std::to_string(entries.size()) + " prefixes; a list holds " +
                         std::to_string(kMaxListPrefixes) + " at most");
    }

    std::string out;
    out.reserve(512 + entries.size() * 20);
    const auto add = [&](Key key, std::string_view value) {
        out += "# ";
        out += name_of(key);
        out += ": ";
        out += value;
        out += '\n';
    };
    add(Key::Format, kListFileFormat);
    add(Key::Name, list.name);
    add(Key::Action, action_name(list.action));
    add(Key::DryRun, list.dry_run ? "true" : "false");
    add(Key::Reason, list.reason);
    add(Key::By, list.by);
    add(Key::Origin, list.origin);
    add(Key::CreatedUnix, std::to_string(list.created_unix));
    add(Key::ExpiresUnix, std::to_string(list.expires_unix));
    add(Key::Source, list.source);
    add(Key::SourceSha256, list.source_sha256);
    add(Key::Entries, std::to_string(entries.size()));
    for (const Cidr& cidr : entries) {
        append_cidr(out, cidr);
        out += '\n';
    }
    return out;
}

namespace {

StoredList parse(std::string_view content, std::string_view path, bool header_only) {
    size_t line_no = 0, pos = 0;
    const auto error_at = [&](size_t line, const std::string& what) {
        return UsageError(std::string(path) + ":" + std::to_string(line) + ": " + what);
    };
    const auto next_line = [&] {
        size_t end = content.find('\n', pos);
        if (end == std::string_view::npos) end = content.size();
        const std::string_view line = content.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        return line;
    };

    const std::string format_line = "# " + std::string(name_of(Key::Format)) + ": ";
    const std::string_view first = content.empty() ? std::string_view() : next_line();
    if (!first.starts_with(format_line)) {
        throw error_at(1, "not a smtpfence list file: it starts with `" + format_line + std::string(kListFileFormat) +
                              "`; " + std::string(kImportAgain));
    }
    if (first.substr(format_line.size()) != kListFileFormat) {
        throw error_at(1, "format `" + std::string(first.substr(format_line.size())) + "`, but this smtpfence reads `" +
                              std::string(kListFileFormat) +
                              "`: use the smtpfence that wrote it, or import the list again");
    }

    Header header;
    header.values[static_cast<size_t>(Key::Format)] = kListFileFormat;
    header.lines[static_cast<size_t>(Key::Format)] = 1;
    while (pos < content.size() && content[pos] == '#') {
        const std::string_view line = next_line();
        try {
            read_header_line(line, line_no, header);
        } catch (const UsageError& e) {
            throw error_at(line_no, e.what() + std::string("; ") + std::string(kImportAgain));
        }
    }
    for (size_t i = 0; i < kKeyNames.size(); ++i) {
        if (!header.values[i]) {
            throw error_at(line_no + 1,
                           "the header has no `" + std::string(kKeyNames[i]) + "`; " + std::string(kImportAgain));
        }
    }
    // Each value checked as format_list_file checks it, a refusal naming its line.
    const auto field = [&](Key key, auto read) {
        const auto index = static_cast<size_t>(key);
        try {
            return read(*header.values[index]);
        } catch (const UsageError& e) {
            throw error_at(header.lines[index],
                           std::string(name_of(key)) + ": " + e.what() + "; " + std::string(kImportAgain));
        }
    };
    StoredList list;
    list.name = field(Key::Name, [](std::string_view value) {
        check_list_name(value);
        return std::string(value);
    });
    list.action = field(Key::Action, action_named);
    list.dry_run = field(Key::DryRun, [&](std::string_view value) {
        const bool dry_run = parse_bool(value);
        check_list_dry_run(list.action, dry_run);
        return dry_run;
    });
    list.reason = field(Key::Reason, [](std::string_view value) {
        check_stored_reason(std::string(value));
        return std::string(value);
    });
    list.by = field(Key::By, [](std::string_view value) {
        check_one_line("by", std::string(value), FENCE_USER_LEN - 1);
        return std::string(value);
    });
    list.origin = field(Key::Origin, [](std::string_view value) {
        check_one_line("origin", std::string(value), FENCE_ORIGIN_LEN - 1);
        return std::string(value);
    });
    list.created_unix = field(Key::CreatedUnix, parse_unsigned);
    list.expires_unix = field(Key::ExpiresUnix, parse_unsigned);
    list.source = field(Key::Source, [](std::string_view value) {
        check_source(std::string(value));
        return std::string(value);
    });
    list.source_sha256 = field(Key::SourceSha256, [](std::string_view value) {
        check_sha256(std::string(value));
        return std::string(value);
    });
    const uint64_t entries = field(Key::Entries, [](std::string_view value) {
        const uint64_t count = parse_unsigned(value);
        if (count > kMaxListPrefixes) {
            throw UsageError(std::to_string(count) + " is more than a list holds (" + std::to_string(kMaxListPrefixes) +
                             ")");
        }
        return count;
    });
    list.entries = entries;
    if (header_only) return list;

    std::optional<Cidr> previous;
    while (pos < content.size()) {
        const std::string_view line = next_line();
        const std::optional<ValidCidr> valid = try_parse_cidr(line);
        if (!valid || valid->was_ipv4_mapped) {
            std::string what = "`" + std::string(line) + "` is not a prefix in canonical form";
            try {
                const ParsedCidr parsed = parse_cidr(line);
                what += " (" + format_cidr(parsed.cidr) + ")";
            } catch (const UsageError& e) {
                what = e.what();
            }
            throw error_at(line_no, what + "; " + std::string(kImportAgain));
        }
        if (previous && !(*previous < valid->cidr)) {
            throw error_at(line_no, format_cidr(valid->cidr) + " comes after " + format_cidr(*previous) +
                                        ": the prefixes are not in order, or one is there twice; " +
                                        std::string(kImportAgain));
        }
        previous = valid->cidr;
        (valid->cidr.family == Family::V4 ? list.v4 : list.v6).push_back(valid->cidr);
        if (list.v4.size() + list.v6.size() > entries) {
            throw error_at(line_no, "more prefixes than the header's entries: " + std::to_string(entries) + "; " +
                                        std::string(kImportAgain));
        }
    }
    if (!content.empty() && content.back() != '\n') {
        throw error_at(line_no, "the last line has no newline: the file was cut short; " + std::string(kImportAgain));
    }
    if (const size_t found = list.v4.size() + list.v6.size(); found < entries) {
        throw error_at(line_no, std::to_string(found) + " prefixes, but the header says entries: " +
                                    std::to_string(entries) + "; " + std::string(kImportAgain));
    }
    return list;
}

}  // namespace

StoredList parse_list_file(std::string_view content, std::string_view path) {
    return parse(content, path, false);
}

StoredList parse_list_file_header(std::string_view content, std::string_view path) {
    return parse(content, path, true);
}

}  // namespace smtpfence
