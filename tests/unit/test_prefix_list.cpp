// Prefix list files as admins import them: one prefix per line, comments in
// two styles, CRLF, errors naming the file and line, skipping invalid lines,
// duplicates, the size limit; and list names.
#include "text/prefix_list.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/errors.h"

namespace smtpfence {
namespace {

std::vector<std::string> texts(const std::vector<Cidr>& prefixes) {
    std::vector<std::string> out;
    for (const Cidr& cidr : prefixes) out.push_back(format_cidr(cidr));
    return out;
}

// The message of the UsageError parsing `content` throws; fails the test if it does not.
std::string error_of(std::string_view content, std::string_view origin = "drop.txt") {
    try {
        parse_prefix_list(content, origin, false);
        ADD_FAILURE() << "parsed: " << content;
    } catch (const UsageError& e) {
        return e.what();
    }
    return {};
}

using Strings = std::vector<std::string>;

TEST(PrefixList, SplitsFamiliesSortsAndCountsDuplicates) {
    const PrefixList list = parse_prefix_list(
        "2001:db8:bad::/48\n203.0.113.0/24\n10.0.0.0/8\n2001:db8::/32\n203.0.113.0/24\n10.0.0.0/16\n"
        "2001:db8::/32\n203.0.113.0/24\n",
        "drop.txt", false);
    EXPECT_EQ(texts(list.v4), (Strings{"10.0.0.0/8", "10.0.0.0/16", "203.0.113.0/24"}));
    EXPECT_EQ(texts(list.v6), (Strings{"2001:db8::/32", "2001:db8:bad::/48"}));
    EXPECT_EQ(list.lines, 8u);
    EXPECT_EQ(list.duplicates, 3u) << "203.0.113.0/24 twice more, 2001:db8::/32 once more";
    EXPECT_TRUE(list.skipped.empty());
}

TEST(PrefixList, ABareAddressIsAHost) {
    const PrefixList list = parse_prefix_list("192.0.2.1\n2001:db8::1\n", "hosts", false);
    EXPECT_EQ(texts(list.v4), (Strings{"192.0.2.1/32"}));
    EXPECT_EQ(texts(list.v6), (Strings{"2001:db8::1/128"}));
}

TEST(PrefixList, TakesCommentsBlankLinesAndBlanksAround) {
    const PrefixList list = parse_prefix_list(
        "# a header\n"
        "\n"
        "   \t \n"
        "; Spamhaus style\n"
        "203.0.113.0/24 # why\n"
        "198.51.100.0/24#no space\n"
        "192.0.2.0/24;SBL1\n"
        "  \t2001:db8::/32\t  \n"
        "100.64.0.0/10 ; SBL2 # both\n",
        "list", false);
    EXPECT_EQ(texts(list.v4), (Strings{"100.64.0.0/10", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}));
    EXPECT_EQ(texts(list.v6), (Strings{"2001:db8::/32"}));
    EXPECT_EQ(list.lines, 9u);
}

TEST(PrefixList, ReadsSpamhausDrop) {
    const PrefixList list = parse_prefix_list(
        "; Spamhaus DROP List 2026/11/25 - (c) 2026 The Spamhaus Project SLU\n"
        "; https://www.spamhaus.org/drop/drop.txt\n"
        "; Last-Modified: Tue, 24 Nov 2026 15:47:07 GMT\n"
        "; Expires: Wed, 25 Nov 2026 17:26:09 GMT\n"
        "1.10.16.0/20 ; SBL256894\n"
        "1.19.0.0/16 ; SBL434604\n"
        "2a06:e480::/29 ; SBL301771\n",
        "drop.txt", false);
    EXPECT_EQ(texts(list.v4), (Strings{"1.10.16.0/20", "1.19.0.0/16"}));
    EXPECT_EQ(texts(list.v6), (Strings{"2a06:e480::/29"}));
}

TEST(PrefixList, TakesCrlfAndALastLineWithoutNewline) {
    const PrefixList list = parse_prefix_list("203.0.113.0/24\r\n; note\r\n\r\n2001:db8::/32", "win.txt", false);
    EXPECT_EQ(texts(list.v4), (Strings{"203.0.113.0/24"}));
    EXPECT_EQ(texts(list.v6), (Strings{"2001:db8::/32"}));
    EXPECT_EQ(list.lines, 4u);
}

TEST(PrefixList, TakesAUtf8ByteOrderMark) {
    const PrefixList list = parse_prefix_list(
        "\xEF\xBB\xBF"
        "203.0.113.0/24\n",
        "notepad.txt", false);
    EXPECT_EQ(texts(list.v4), (Strings{"203.0.113.0/24"}));
    EXPECT_EQ(list.lines, 1u);
}

TEST(PrefixList, EmptyContentIsAnEmptyList) {
    const PrefixList empty = parse_prefix_list("", "empty", false);
    EXPECT_TRUE(empty.v4.empty() && empty.v6.empty());
    EXPECT_EQ(empty.lines, 0u);
    EXPECT_EQ(parse_prefix_list("\n# nothing\n", "empty", false).lines, 2u);
}

TEST(PrefixList, AnIpv4MappedPrefixIsTheIpv4PrefixItMeans) {
    const PrefixList list = parse_prefix_list("::ffff:203.0.113.0/120\n203.0.113.0/24\n", "mapped", false);
    EXPECT_EQ(texts(list.v4), (Strings{"203.0.113.0/24"}));
    EXPECT_TRUE(list.v6.empty());
    EXPECT_EQ(list.ipv4_mapped, 1u);
    EXPECT_EQ(list.duplicates, 1u);
}

TEST(PrefixList, AnInvalidLineNamesOriginLineAndTextAndTheWayOut) {
    EXPECT_EQ(error_of("203.0.113.0/24\n# fine\n10.1.2.3/8 ; SBL9\n"),
              "drop.txt:3: '10.1.2.3/8' has host bits set: did you mean 10.0.0.0/8 (the network) or 10.1.2.3/32 (the "
              "host)?: `10.1.2.3/8 ; SBL9`; fix the line, or pass --skip-invalid to import the list without it");
}

TEST(PrefixList, ReusesParseCidrsMessages) {
    for (const char* bad : {"300.1.2.3", "203.0.113.0/33", "mail.example.com", "fe80::1%eth0", "1.2.3.4/08", "/24"}) {
        std::string expected;
        try {
            parse_cidr(bad);
        } catch (const UsageError& e) {
            expected = e.what();
        }
        EXPECT_EQ(error_of(std::string(bad) + "\n"),
                  "drop.txt:1: " + expected + ": `" + bad +
                      "`; fix the line, or pass --skip-invalid to import the list without it");
    }
}

TEST(PrefixList, TwoWordsOnALineAreInvalid) {
    const std::string message = error_of("203.0.113.0/24\n1.2.3.0/24 foo\n");
    EXPECT_EQ(message,
              "drop.txt:2: more than one word: a line holds one prefix, and a comment starts with # or ;: "
              "`1.2.3.0/24 foo`; fix the line, or pass --skip-invalid to import the list without it");
    EXPECT_NE(error_of("1.2.3.0/24\t2.3.4.0/24\n").find("more than one word"), std::string::npos);
}

TEST(PrefixList, StdinIsNamedSo) {
    EXPECT_EQ(error_of("garbage\n", "-").rfind("stdin:1: 'garbage' is not an IP address", 0), 0u);
}

TEST(PrefixList, TheErrorShowsTheLineWithoutItsCarriageReturn) {
    EXPECT_NE(error_of("ok\r\n").find("`ok`;"), std::string::npos);
}

TEST(PrefixList, SkipInvalidCollectsTheBadLinesAndKeepsTheRest) {
    const PrefixList list = parse_prefix_list(
        "203.0.113.0/24\n10.1.2.3/8\r\n\n2001:db8::/32\n1.2.3.0/24 foo ; x\nmx.example.com\n", "mixed", true);
    EXPECT_EQ(texts(list.v4), (Strings{"203.0.113.0/24"}));
    EXPECT_EQ(texts(list.v6), (Strings{"2001:db8::/32"}));
    EXPECT_EQ(list.lines, 6u);
    ASSERT_EQ(list.skipped.size(), 3u);
    EXPECT_EQ(list.skipped[0].line, 2u);
    EXPECT_EQ(list.skipped[0].text, "10.1.2.3/8");
    EXPECT_NE(list.skipped[0].error.find("host bits set"), std::string::npos) << list.skipped[0].error;
    EXPECT_EQ(list.skipped[1].line, 5u);
    EXPECT_EQ(list.skipped[1].text, "1.2.3.0/24 foo ; x");
    EXPECT_NE(list.skipped[1].error.find("more than one word"), std::string::npos) << list.skipped[1].error;
    EXPECT_EQ(list.skipped[2].line, 6u);
    EXPECT_EQ(list.skipped[2].text, "mx.example.com");
    EXPECT_NE(list.skipped[2].error.find("host names are not resolved"), std::string::npos) << list.skipped[2].error;
}

TEST(PrefixList, ALongLineIsShownShortened) {
    const std::string junk(1000, 'x');
    const PrefixList list = parse_prefix_list(junk + "\n", "binary", true);
    ASSERT_EQ(list.skipped.size(), 1u);
    EXPECT_EQ(list.skipped[0].text, junk.substr(0, 200) + "...");
}

TEST(PrefixList, MoreDistinctPrefixesThanATableHoldsAreRefused) {
    static_assert(kMaxListPrefixes == 16'777'216, "the kernel's list table has a 24-bit index");
    const std::string three = "10.0.0.0/8\n10.0.0.0/8\n2001:db8::/32\n192.0.2.1\n192.0.2.1\n";
    EXPECT_EQ(parse_prefix_list(three, "big.txt", false, 3).duplicates, 2u) << "repeats do not count";
    try {
        parse_prefix_list(three + "198.51.100.0/24\n", "big.txt", false, 3);
        ADD_FAILURE() << "four prefixes with room for three";
    } catch (const UsageError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "big.txt: 4 distinct prefixes, more than the 3 a list can hold (the kernel's list table indexes "
                  "its entries with 24 bits): import fewer, e.g. with adjacent prefixes merged into shorter ones");
    }
}

TEST(PrefixList, IsWhatParseCidrSaysLineByLine) {
    // Random valid prefixes in random forms and order, against a std::set of
    // parse_cidr's results.
    std::mt19937_64 random(3);
    std::string content;
    std::set<Cidr> expected;
    size_t given = 0;
    for (int i = 0; i < 5000; ++i) {
        Cidr cidr;
        cidr.family = random() % 3 == 0 ? Family::V6 : Family::V4;
        const unsigned max = cidr.family == Family::V4 ? 32 : 128;
        cidr.prefixlen = static_cast<uint8_t>(max - random() % 12);
        for (unsigned byte = 0; byte < (cidr.family == Family::V4 ? 4u : 16u); ++byte) {
            cidr.addr[byte] = byte < 2 ? 0x20 : static_cast<uint8_t>(random() % 4);
        }
        for (unsigned bit = cidr.prefixlen; bit < 128; ++bit) {
            cidr.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
        }
        const std::string text = cidr.prefixlen == max && random() % 2 == 0 ? format_address(cidr.family, cidr.addr)
                                                                            : format_cidr(cidr);
        content += (random() % 4 == 0 ? " " : "") + text + (random() % 4 == 0 ? " ; note" : "") + "\n";
        expected.insert(parse_cidr(text).cidr);
        ++given;
    }
    const PrefixList list = parse_prefix_list(content, "random", false);
    std::vector<Cidr> all = list.v4;
    all.insert(all.end(), list.v6.begin(), list.v6.end());
    EXPECT_EQ(all, std::vector<Cidr>(expected.begin(), expected.end()));
    EXPECT_EQ(list.duplicates, given - expected.size());
}

TEST(ListName, TakesLettersDigitsDotsUnderscoresAndDashes) {
    for (const std::string& name : std::vector<std::string>{"a", "drop", "spamhaus-drop", "DROP_v2.1", "9", "a.", "a-",
                                                            std::string(kMaxListNameLength, 'n')}) {
        EXPECT_NO_THROW(check_list_name(name)) << name;
    }
}

TEST(ListName, RefusesOthersSayingWhatIsAllowed) {
    for (const std::string& name :
         {std::string(), std::string(kMaxListNameLength + 1, 'n'), std::string(".hidden"), std::string("-x"),
          std::string("a/b"), std::string("a b"), std::string("caf\xC3\xA9"), std::string("a:b"), std::string("a\nb"),
          std::string("..")}) {
        try {
            check_list_name(name);
            ADD_FAILURE() << "accepted '" << name << "'";
        } catch (const UsageError& e) {
            EXPECT_EQ(std::string(e.what()),
                      "list name '" + name +
                          "' is not valid: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or "
                          "'-', e.g. spamhaus-drop");
        }
    }
}

}  // namespace
}  // namespace smtpfence
