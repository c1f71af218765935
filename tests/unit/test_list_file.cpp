// The stored form of an imported list: every field round-trips, awkward
// texts included; what cannot be stored is refused when writing; a damaged
// file is refused whole, naming its line.
#include "text/list_file.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "base/errors.h"
#include "text/prefix_list.h"

namespace smtpfence {
namespace {

constexpr const char* kSha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

StoredList sample() {
    StoredList list;
    list.name = "spamhaus-drop";
    list.action = Action::Block;
    list.reason = "Spamhaus DROP";
    list.by = "alice";
    list.origin = "mx1 (ssh from 198.51.100.5)";
    list.created_unix = 1795600000;
    list.expires_unix = 1796112000;
    list.source = "/srv/lists/drop.txt";
    list.source_sha256 = kSha;
    list.v4 = {parse_cidr("10.0.0.0/8").cidr, parse_cidr("203.0.113.0/24").cidr};
    list.v6 = {parse_cidr("2001:db8:bad::/48").cidr};
    return list;
}

void expect_same(const StoredList& a, const StoredList& b) {
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.action, b.action);
    EXPECT_EQ(a.dry_run, b.dry_run);
    EXPECT_EQ(a.reason, b.reason);
    EXPECT_EQ(a.by, b.by);
    EXPECT_EQ(a.origin, b.origin);
    EXPECT_EQ(a.source, b.source);
    EXPECT_EQ(a.source_sha256, b.source_sha256);
    EXPECT_EQ(a.created_unix, b.created_unix);
    EXPECT_EQ(a.expires_unix, b.expires_unix);
    EXPECT_EQ(a.v4, b.v4);
    EXPECT_EQ(a.v6, b.v6);
}

TEST(ListFile, ReadsAsItsHeaderSays) {
    EXPECT_EQ(format_list_file(sample()),
              "# format: smtpfence-list 1\n"
              "# name: spamhaus-drop\n"
              "# action: block\n"
              "# dry_run: false\n"
              "# reason: Spamhaus DROP\n"
              "# by: alice\n"
              "# origin: mx1 (ssh from 198.51.100.5)\n"
              "# created_unix: 1795600000\n"
              "# expires_unix: 1796112000\n"
              "# source: /srv/lists/drop.txt\n"
              "# source_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
              "# entries: 3\n"
              "10.0.0.0/8\n"
              "203.0.113.0/24\n"
              "2001:db8:bad::/48\n");
}

TEST(ListFile, RoundTripsEveryField) {
    const StoredList list = sample();
    expect_same(parse_list_file(format_list_file(list), "drop.list"), list);

    StoredList allow = sample();
    allow.action = Action::Allow;
    allow.expires_unix = 0;
    allow.source = "stdin";
    expect_same(parse_list_file(format_list_file(allow), "allow.list"), allow);

    StoredList dry = sample();
    dry.dry_run = true;
    expect_same(parse_list_file(format_list_file(dry), "dry.list"), dry);
}

TEST(ListFile, RoundTripsAwkwardTexts) {
    for (const std::string& reason :
         {std::string(), std::string("# not a comment"), std::string("a # b ; c: d"), std::string("  two spaces  "),
          std::string("quote \" and \\ backslash"), std::string(":"), std::string("entries: 5"),
          std::string("caf\xC3\xA9 \xE2\x80\x94 utf-8"), std::string(FENCE_REASON_LEN - 1, 'r')}) {
        StoredList list = sample();
        list.reason = reason;
        list.by = reason.substr(0, FENCE_USER_LEN - 1);
        list.origin = reason.substr(0, FENCE_ORIGIN_LEN - 1);
        list.source = "/tmp/" + reason;
        expect_same(parse_list_file(format_list_file(list), "awkward.list"), list);
    }
}

TEST(ListFile, AnEmptyListRoundTrips) {
    StoredList list = sample();
    list.v4.clear();
    list.v6.clear();
    const std::string text = format_list_file(list);
    EXPECT_NE(text.find("# entries: 0\n"), std::string::npos);
    expect_same(parse_list_file(text, "empty.list"), list);
}

TEST(ListFile, WritesPrefixesInOrderOnce) {
    StoredList list = sample();
    list.v4 = {parse_cidr("203.0.113.0/24").cidr, parse_cidr("10.0.0.0/8").cidr, parse_cidr("203.0.113.0/24").cidr};
    list.v6 = {parse_cidr("2001:db8:bad::/48").cidr, parse_cidr("2001:db8::/32").cidr};
    const StoredList read = parse_list_file(format_list_file(list), "x.list");
    EXPECT_EQ(read.v4, (std::vector<Cidr>{parse_cidr("10.0.0.0/8").cidr, parse_cidr("203.0.113.0/24").cidr}));
    EXPECT_EQ(read.v6, (std::vector<Cidr>{parse_cidr("2001:db8::/32").cidr, parse_cidr("2001:db8:bad::/48").cidr}));
}

TEST(ListFile, ReadsWhatAnImportParsed) {
    const PrefixList parsed = parse_prefix_list("203.0.113.0/24 ; SBL1\n2001:db8::/32\n10.0.0.0/8\n203.0.113.0/24\n",
                                                "drop.txt", false);
    StoredList list = sample();
    list.v4 = parsed.v4;
    list.v6 = parsed.v6;
    expect_same(parse_list_file(format_list_file(list), "drop.list"), list);
}

struct Unstorable {
    std::string what;
    void (*change)(StoredList&);
    std::string message_part;
};

std::ostream& operator<<(std::ostream& out, const Unstorable& c) {
    return out << c.what;
}

class ListFileRefuses : public testing::TestWithParam<Unstorable> {};

TEST_P(ListFileRefuses, WhatItCannotStore) {
    StoredList list = sample();
    GetParam().change(list);
    try {
        format_list_file(list);
        ADD_FAILURE() << "formatted";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find(GetParam().message_part), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ListFileRefuses,
    testing::Values(
        Unstorable{"a reason with a newline", [](StoredList& l) { l.reason = "one\n# entries: 0"; },
                   "--reason must be one line of printable text"},
        Unstorable{"a reason with a carriage return", [](StoredList& l) { l.reason = "one\rtwo"; },
                   "one line of printable text"},
        Unstorable{"a reason too long", [](StoredList& l) { l.reason = std::string(FENCE_REASON_LEN, 'r'); },
                   "at most 119 fit"},
        Unstorable{"a bad name", [](StoredList& l) { l.name = "../etc"; }, "list name '../etc' is not valid"},
        Unstorable{"a limit", [](StoredList& l) { l.action = Action::Limit; }, "block or allow, not 'limit'"},
        Unstorable{"a dry-run allow",
                   [](StoredList& l) {
                       l.action = Action::Allow;
                       l.dry_run = true;
                   },
                   "an allow drops nothing"},
        Unstorable{"a by with a tab", [](StoredList& l) { l.by = "al\tice"; }, "by must be one line of printable text"},
        Unstorable{"a by too long", [](StoredList& l) { l.by = std::string(FENCE_USER_LEN, 'b'); }, "at most 31 fit"},
        Unstorable{"an origin with a newline", [](StoredList& l) { l.origin = "mx1\nmx2"; }, "origin must be one line"},
        Unstorable{"a path with a newline", [](StoredList& l) { l.source = "/tmp/a\nb"; },
                   "import it from stdin (smtpfence import - < FILE)"},
        Unstorable{"an uppercase hash", [](StoredList& l) { l.source_sha256 = std::string(64, 'A'); },
                   "not 64 lowercase hex digits"},
        Unstorable{"a short hash", [](StoredList& l) { l.source_sha256 = "abc"; }, "the source's SHA-256 'abc'"}));

// A good file with `from` replaced by `to`, parsed.
std::string error_of_damaged(const std::string& from, const std::string& to) {
    std::string text = format_list_file(sample());
    const size_t at = text.find(from);
    if (at == std::string::npos) {
        ADD_FAILURE() << "no '" << from << "' in the file";
        return {};
    }
    text.replace(at, from.size(), to);
    try {
        parse_list_file(text, "/var/lib/smtpfence/lists/drop.list");
        ADD_FAILURE() << "parsed:\n" << text;
    } catch (const UsageError& e) {
        return e.what();
    }
    return {};
}

struct Damage {
    std::string what, from, to;
    // The start of the message after "PATH:", and a part of the rest.
    std::string line, message_part;
};

std::ostream& operator<<(std::ostream& out, const Damage& c) {
    return out << c.what;
}

class ListFileDamaged : public testing::TestWithParam<Damage> {};

TEST_P(ListFileDamaged, IsRefusedNamingPathAndLine) {
    const Damage& c = GetParam();
    const std::string message = error_of_damaged(c.from, c.to);
    EXPECT_EQ(message.rfind("/var/lib/smtpfence/lists/drop.list:" + c.line + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(c.message_part), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Header, ListFileDamaged,
    testing::Values(
        Damage{"another format", "smtpfence-list 1", "smtpfence-list 2", "1",
               "format `smtpfence-list 2`, but this smtpfence reads `smtpfence-list 1`"},
        Damage{"not a list file", "# format: smtpfence-list 1\n", "block 10.0.0.0/8\n", "1",
               "not a smtpfence list file"},
        Damage{"a missing key", "# by: alice\n", "", "12", "the header has no `by`; the list file is damaged"},
        Damage{"a repeated key", "# by: alice\n", "# by: alice\n# by: bob\n", "7", "`by` is given twice (line 6"},
        Damage{"an unknown key", "# by: alice\n", "# by: alice\n# colour: red\n", "7", "unknown key `colour`"},
        Damage{"a line that is not key: value", "# by: alice\n", "# by alice\n", "6", "not a `# key: value` line"},
        Damage{"no space after #", "# by: alice\n", "#by: alice\n", "6", "not a `# key: value` line"},
        Damage{"a bad name", "# name: spamhaus-drop", "# name: -drop", "2", "name: list name '-drop' is not valid"},
        Damage{"a limit", "# action: block", "# action: limit", "3", "action: a list's action is block or allow"},
        Damage{"a dry_run not true or false", "# dry_run: false", "# dry_run: yes", "4", "'yes' is not true or false"},
        Damage{"a dry-run allow", "# action: block\n# dry_run: false", "# action: allow\n# dry_run: true", "4",
               "an allow drops nothing"},
        Damage{"a reason with a control character", "# reason: Spamhaus DROP", "# reason: Spamhaus\tDROP", "5",
               "one line of printable text"},
        Damage{"a by too long", "# by: alice", "# by: " + std::string(FENCE_USER_LEN, 'b'), "6", "at most 31 fit"},
        Damage{"a created_unix not a number", "# created_unix: 1795600000", "# created_unix: 17956e5", "8",
               "created_unix: '17956e5' is not a decimal number"},
        Damage{"a negative expires_unix", "# expires_unix: 1796112000", "# expires_unix: -1", "9",
               "'-1' is not a decimal number"},
        Damage{"an expires_unix with a leading zero", "# expires_unix: 1796112000", "# expires_unix: 01796112000", "9",
               "not a decimal number"},
        Damage{"an expires_unix too large", "# expires_unix: 1796112000", "# expires_unix: 18446744073709551616", "9",
               "not a decimal number"},
        Damage{"a source with a control character", "# source: /srv/lists/drop.txt", "# source: /srv/\x7f", "10",
               "control character"},
        Damage{"a short hash", kSha, "9f86d0", "11", "source_sha256: the source's SHA-256 '9f86d0' is not 64"},
        Damage{"entries not a number", "# entries: 3", "# entries: three", "12", "entries: 'three'"},
        Damage{"entries beyond the limit", "# entries: 3", "# entries: 16777217", "12",
               "16777217 is more than a list holds (16777216)"}));

INSTANTIATE_TEST_SUITE_P(
    Body, ListFileDamaged,
    testing::Values(
        Damage{"fewer entries than the header says", "# entries: 3", "# entries: 4", "15",
               "3 prefixes, but the header says entries: 4; the list file is damaged: import the list again"},
        Damage{"more entries than the header says", "# entries: 3", "# entries: 2", "15",
               "more prefixes than the header's entries: 2"},
        Damage{"a lost line", "203.0.113.0/24\n", "", "14", "2 prefixes, but the header says entries: 3"},
        Damage{"a last line without its newline", "2001:db8:bad::/48\n", "2001:db8:bad::/48", "15",
               "the last line has no newline: the file was cut short"},
        Damage{"a bad prefix", "203.0.113.0/24", "10.1.2.3/8", "14", "'10.1.2.3/8' has host bits set"},
        Damage{"garbage", "203.0.113.0/24", "\x01\x02", "14", "is not an IP address"},
        Damage{"an IPv4-mapped prefix", "203.0.113.0/24", "::ffff:203.0.113.0/120", "14",
               "`::ffff:203.0.113.0/120` is not a prefix in canonical form (203.0.113.0/24)"},
        Damage{"prefixes out of order", "10.0.0.0/8\n203.0.113.0/24", "203.0.113.0/24\n10.0.0.0/8", "14",
               "10.0.0.0/8 comes after 203.0.113.0/24: the prefixes are not in order"},
        Damage{"a prefix twice", "10.0.0.0/8\n203.0.113.0/24", "10.0.0.0/8\n10.0.0.0/8", "14", "or one is there twice"},
        Damage{"IPv6 before IPv4", "203.0.113.0/24\n2001:db8:bad::/48", "2001:db8:bad::/48\n203.0.113.0/24", "15",
               "203.0.113.0/24 comes after 2001:db8:bad::/48"},
        Damage{"a blank line", "203.0.113.0/24\n", "203.0.113.0/24\n\n", "15", "empty prefix"},
        Damage{"a comment in the body", "203.0.113.0/24\n", "203.0.113.0/24 # why\n", "14",
               "malformed prefix length '24 # why'"},
        Damage{"CRLF line endings", "10.0.0.0/8\n", "10.0.0.0/8\r\n", "13", "malformed prefix length"}));

TEST(ListFileDamaged, AnEmptyFileIsNotAListFile) {
    try {
        parse_list_file("", "drop.list");
        ADD_FAILURE() << "parsed";
    } catch (const UsageError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "drop.list:1: not a smtpfence list file: it starts with `# format: smtpfence-list 1`; the list "
                  "file is damaged: import the list again");
    }
}

}  // namespace
}  // namespace smtpfence
