#include "text/cidr.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "base/errors.h"

namespace smtpfence {
namespace {

Cidr parsed(std::string_view text) {
    return parse_cidr(text).cidr;
}

// The message of the UsageError parse_cidr throws; fails the test if it does not.
std::string usage_error_of(std::string_view text) {
    try {
        const ParsedCidr result = parse_cidr(text);
        ADD_FAILURE() << "'" << text << "' parsed as " << format_cidr(result.cidr);
    } catch (const UsageError& e) {
        return e.what();
    }
    return {};
}

// try_parse_cidr gives what parse_cidr gives for `text`: the same prefix, the
// mapped flag where parse_cidr has a note, nothing where it throws.
void expect_fast_path_agrees(std::string_view text) {
    std::optional<ParsedCidr> reference;
    try {
        reference = parse_cidr(text);
    } catch (const UsageError&) {
    }
    const std::optional<ValidCidr> fast = try_parse_cidr(text);
    ASSERT_EQ(fast.has_value(), reference.has_value())
        << "'" << text << "': parse_cidr " << (reference ? "accepts" : "refuses") << " it";
    if (!fast) return;
    EXPECT_EQ(fast->cidr, reference->cidr) << "'" << text << "'";
    EXPECT_EQ(fast->was_ipv4_mapped, !reference->note.empty()) << "'" << text << "'";
}

struct AcceptedCase {
    std::string input;
    Family family;
    std::string canonical;
};

std::ostream& operator<<(std::ostream& out, const AcceptedCase& c) {
    return out << "'" << c.input << "' -> " << c.canonical;
}

class CidrAccepted : public testing::TestWithParam<AcceptedCase> {};

TEST_P(CidrAccepted, ParsesToCanonicalPrefix) {
    const AcceptedCase& c = GetParam();
    const ParsedCidr result = parse_cidr(c.input);
    EXPECT_EQ(result.cidr.family, c.family);
    EXPECT_EQ(format_cidr(result.cidr), c.canonical);
    EXPECT_EQ(result.note, "");
}

TEST_P(CidrAccepted, FastPathAgrees) {
    expect_fast_path_agrees(GetParam().input);
}

TEST_P(CidrAccepted, CanonicalFormParsesBackToTheSamePrefix) {
    const AcceptedCase& c = GetParam();
    const Cidr first = parsed(c.input);
    const ParsedCidr again = parse_cidr(format_cidr(first));
    EXPECT_EQ(again.cidr, first);
    EXPECT_EQ(again.note, "");
}

INSTANTIATE_TEST_SUITE_P(V4, CidrAccepted,
                         testing::Values(AcceptedCase{"203.0.113.0/24", Family::V4, "203.0.113.0/24"},
                                         AcceptedCase{"203.0.113.7", Family::V4, "203.0.113.7/32"},
                                         AcceptedCase{"203.0.113.7/32", Family::V4, "203.0.113.7/32"},
                                         AcceptedCase{"10.0.0.0/8", Family::V4, "10.0.0.0/8"},
                                         AcceptedCase{"192.0.2.128/25", Family::V4, "192.0.2.128/25"},
                                         AcceptedCase{"198.51.100.64/26", Family::V4, "198.51.100.64/26"},
                                         AcceptedCase{"172.16.0.0/12", Family::V4, "172.16.0.0/12"},
                                         AcceptedCase{"128.0.0.0/1", Family::V4, "128.0.0.0/1"},
                                         AcceptedCase{"0.0.0.0/0", Family::V4, "0.0.0.0/0"},
                                         AcceptedCase{"0.0.0.0", Family::V4, "0.0.0.0/32"},
                                         AcceptedCase{"255.255.255.255", Family::V4, "255.255.255.255/32"},
                                         AcceptedCase{"255.255.255.254/31", Family::V4, "255.255.255.254/31"}));

INSTANTIATE_TEST_SUITE_P(
    V6, CidrAccepted,
    testing::Values(AcceptedCase{"2001:db8::/32", Family::V6, "2001:db8::/32"},
                    AcceptedCase{"2001:0db8:0000:0000:0000:0000:0000:0000/32", Family::V6, "2001:db8::/32"},
                    AcceptedCase{"2001:DB8::/32", Family::V6, "2001:db8::/32"},
                    AcceptedCase{"2001:db8:0:0:1:0:0:1", Family::V6, "2001:db8::1:0:0:1/128"},
                    AcceptedCase{"2001:db8::1", Family::V6, "2001:db8::1/128"},
                    AcceptedCase{"2001:db8:0:1::/64", Family::V6, "2001:db8:0:1::/64"},
                    AcceptedCase{"2001:db8:abcd:12::/63", Family::V6, "2001:db8:abcd:12::/63"},
                    AcceptedCase{"2001:db8::8000:0/97", Family::V6, "2001:db8::8000:0/97"},
                    AcceptedCase{"fe80::/10", Family::V6, "fe80::/10"}, AcceptedCase{"::/0", Family::V6, "::/0"},
                    AcceptedCase{"::", Family::V6, "::/128"}, AcceptedCase{"::1", Family::V6, "::1/128"},
                    AcceptedCase{"8000::/1", Family::V6, "8000::/1"},
                    // Only the ::ffff:0:0/96 range is rewritten; its neighbours stay IPv6.
                    AcceptedCase{"::fffe:0:0/95", Family::V6, "::fffe:0:0/95"},
                    AcceptedCase{"::/80", Family::V6, "::/80"},
                    AcceptedCase{"64:ff9b::/96", Family::V6, "64:ff9b::/96"},
                    AcceptedCase{"::fffe:cb00:7100/120", Family::V6, "::fffe:cb00:7100/120"}));

struct MappedCase {
    std::string input;
    std::string stored;
};

std::ostream& operator<<(std::ostream& out, const MappedCase& c) {
    return out << "'" << c.input << "' -> " << c.stored;
}

class CidrIpv4Mapped : public testing::TestWithParam<MappedCase> {};

TEST_P(CidrIpv4Mapped, IsStoredAsTheIpv4PrefixItMeans) {
    const MappedCase& c = GetParam();
    const ParsedCidr result = parse_cidr(c.input);
    EXPECT_EQ(result.cidr.family, Family::V4);
    EXPECT_EQ(format_cidr(result.cidr), c.stored);
    EXPECT_EQ(result.cidr, parsed(c.stored));
    EXPECT_NE(result.note.find(c.input), std::string::npos) << result.note;
    EXPECT_NE(result.note.find("IPv4-mapped"), std::string::npos) << result.note;
    EXPECT_NE(result.note.find("stored as " + c.stored), std::string::npos) << result.note;
}

INSTANTIATE_TEST_SUITE_P(Forms, CidrIpv4Mapped,
                         testing::Values(MappedCase{"::ffff:203.0.113.0/120", "203.0.113.0/24"},
                                         MappedCase{"::ffff:cb00:7100/120", "203.0.113.0/24"},
                                         MappedCase{"::FFFF:CB00:7100/120", "203.0.113.0/24"},
                                         MappedCase{"0:0:0:0:0:ffff:cb00:7100/120", "203.0.113.0/24"},
                                         MappedCase{"::ffff:0:0/96", "0.0.0.0/0"},
                                         MappedCase{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
                                         MappedCase{"::ffff:203.0.113.7/128", "203.0.113.7/32"},
                                         MappedCase{"::ffff:203.0.113.7", "203.0.113.7/32"},
                                         MappedCase{"::ffff:192.0.2.128/121", "192.0.2.128/25"}));

TEST_P(CidrIpv4Mapped, FastPathAgrees) {
    expect_fast_path_agrees(GetParam().input);
}

TEST(CidrIpv4Mapped, NoteExplainsWhy) {
    EXPECT_EQ(parse_cidr("::ffff:203.0.113.0/120").note,
              "::ffff:203.0.113.0/120 is an IPv4-mapped prefix: stored as 203.0.113.0/24, "
              "because such senders arrive as IPv4");
    EXPECT_EQ(parse_cidr("::ffff:203.0.113.7").note,
              "::ffff:203.0.113.7 is an IPv4-mapped address: stored as 203.0.113.7/32, "
              "because such senders arrive as IPv4");
}

TEST(CidrIpv4Mapped, HostBitsAreReportedInTheFormTyped) {
    const std::string message = usage_error_of("::ffff:203.0.113.7/120");
    EXPECT_NE(message.find("host bits"), std::string::npos) << message;
    EXPECT_NE(message.find("::ffff:203.0.113.0/120 (the network)"), std::string::npos) << message;
    EXPECT_NE(message.find("::ffff:203.0.113.7/128 (the host)"), std::string::npos) << message;
}

TEST(CidrIpv4Mapped, ShorterThanSlash96StaysIpv6) {
    // Every ::ffff:x/95-or-shorter has bit 95 set as a host bit.
    const std::string message = usage_error_of("::ffff:0:0/95");
    EXPECT_NE(message.find("::fffe:0:0/95 (the network)"), std::string::npos) << message;

    const ParsedCidr covering = parse_cidr("::fffe:0:0/95");
    EXPECT_EQ(covering.cidr.family, Family::V6);
    EXPECT_EQ(covering.note, "");
    EXPECT_FALSE(covering.cidr.contains(parsed("::ffff:0:0/96")))
        << "a mapped /96 is stored as IPv4, so no IPv6 rule contains it";
}

TEST(CidrParse, RejectsAnEmbeddedNul) {
    // inet_pton would stop at the NUL and accept the address before it.
    EXPECT_THROW(parse_cidr(std::string("1.2.3.4\0junk", 12)), UsageError);
    EXPECT_THROW(parse_cidr(std::string("1.2.3.0/24\0", 11)), UsageError);
}

TEST(CidrParse, StoresNetworkByteOrderWithZeroedTail) {
    const Cidr v4 = parsed("203.0.113.0/24");
    const std::array<uint8_t, 16> expected_v4{203, 0, 113, 0};
    EXPECT_EQ(v4.addr, expected_v4);
    EXPECT_EQ(v4.prefixlen, 24);

    const Cidr v6 = parsed("2001:db8::1");
    const std::array<uint8_t, 16> expected_v6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    EXPECT_EQ(v6.addr, expected_v6);
    EXPECT_EQ(v6.prefixlen, 128);

    const Cidr mapped = parsed("::ffff:203.0.113.0/120");
    EXPECT_EQ(mapped.addr, expected_v4);
    EXPECT_EQ(mapped.prefixlen, 24);
}

struct RejectedCase {
    std::string input;
    // A part of the message that tells the admin what to change.
    std::string message_part;
};

std::ostream& operator<<(std::ostream& out, const RejectedCase& c) {
    return out << "'" << c.input << "'";
}

class CidrRejected : public testing::TestWithParam<RejectedCase> {};

TEST_P(CidrRejected, ThrowsUsageErrorSayingWhatIsWrong) {
    const RejectedCase& c = GetParam();
    EXPECT_THROW(parse_cidr(c.input), UsageError);
    const std::string message = usage_error_of(c.input);
    EXPECT_NE(message.find(c.message_part), std::string::npos) << "input: '" << c.input << "'\nmessage: " << message;
}

TEST_P(CidrRejected, FastPathAgrees) {
    expect_fast_path_agrees(GetParam().input);
}

TEST_P(CidrRejected, ShowsAValidExampleOrSuggestion) {
    const std::string message = usage_error_of(GetParam().input);
    const bool has_example = message.find("e.g. ") != std::string::npos ||
                             message.find("did you mean ") != std::string::npos;
    EXPECT_TRUE(has_example) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Addresses, CidrRejected,
    testing::Values(
        RejectedCase{"", "empty prefix"}, RejectedCase{"garbage", "'garbage' is not an IP address"},
        RejectedCase{"mail.example.com", "host names are not resolved"},
        RejectedCase{"300.1.2.3", "'300.1.2.3' is not a valid IPv4 address"},
        RejectedCase{"300.1.2.3/24", "'300.1.2.3' is not a valid IPv4 address"},
        RejectedCase{"1.2.3.256", "not a valid IPv4 address"}, RejectedCase{"10/8", "'10' is not a valid IPv4 address"},
        RejectedCase{"10.1/16", "four numbers from 0 to 255"}, RejectedCase{"10.1.2/24", "not a valid IPv4 address"},
        RejectedCase{"1.2.3.4.5", "not a valid IPv4 address"}, RejectedCase{"010.1.2.3", "without leading zeros"},
        RejectedCase{"1.2.3.4 ", "'1.2.3.4 ' is not an IP address"}, RejectedCase{" 1.2.3.4", "is not an IP address"},
        RejectedCase{"0x0a.0.0.0/8", "is not an IP address"},
        RejectedCase{"2001:db8:::1", "'2001:db8:::1' is not a valid IPv6 address"},
        RejectedCase{"2001:db8::g/32", "not a valid IPv6 address"},
        RejectedCase{"1:2:3:4:5:6:7:8:9", "not a valid IPv6 address"},
        RejectedCase{"2001:db8::1::2", "not a valid IPv6 address"},
        RejectedCase{"::ffff:300.1.2.3", "not a valid IPv6 address"},
        RejectedCase{"[2001:db8::1]", "not a valid IPv6 address"}, RejectedCase{"fe80::1%eth0", "zone id (%eth0)"},
        RejectedCase{"fe80::%eth0/64", "zone id (%eth0)"}, RejectedCase{"/24", "has no address before the '/'"},
        RejectedCase{"/", "has no address before the '/'"}));

INSTANTIATE_TEST_SUITE_P(PrefixLengths, CidrRejected,
                         testing::Values(RejectedCase{"203.0.113.0/33", "IPv4 prefixes go from /0 to /32"},
                                         RejectedCase{"203.0.113.0/255", "prefix length 255"},
                                         RejectedCase{"203.0.113.0/4294967329", "prefix length 4294967329"},
                                         RejectedCase{"2001:db8::/129", "IPv6 prefixes go from /0 to /128"},
                                         RejectedCase{"2001:db8::/256", "e.g. 2001:db8::/32"},
                                         RejectedCase{"1.2.3.4/", "has no prefix length after the '/'"},
                                         RejectedCase{"2001:db8::/", "e.g. 2001:db8::/32"},
                                         RejectedCase{"1.2.3.4/+5", "malformed prefix length '+5'"},
                                         RejectedCase{"1.2.3.4/-5", "malformed prefix length '-5'"},
                                         RejectedCase{"1.2.3.4/ 5", "malformed prefix length ' 5'"},
                                         RejectedCase{"1.2.3.4/5 ", "malformed prefix length '5 '"},
                                         RejectedCase{"1.2.3.4/08", "without sign, spaces or leading zeros"},
                                         RejectedCase{"1.2.3.0/024", "leading zeros"},
                                         RejectedCase{"0.0.0.0/00", "leading zeros"},
                                         RejectedCase{"1.2.3.4/0x18", "malformed prefix length"},
                                         RejectedCase{"1.2.3.4/24/8", "malformed prefix length '24/8'"},
                                         RejectedCase{"1.2.3.4/a", "malformed prefix length 'a'"}));

INSTANTIATE_TEST_SUITE_P(
    HostBits, CidrRejected,
    testing::Values(RejectedCase{"203.0.113.7/24",
                                 "'203.0.113.7/24' has host bits set: did you mean 203.0.113.0/24 (the "
                                 "network) or 203.0.113.7/32 (the host)?"},
                    RejectedCase{"10.1.2.3/8", "10.0.0.0/8 (the network)"},
                    RejectedCase{"192.0.2.129/25", "192.0.2.128/25 (the network)"},
                    RejectedCase{"1.2.3.4/0", "0.0.0.0/0 (the network) or 1.2.3.4/32 (the host)"},
                    RejectedCase{"255.255.255.255/31", "255.255.255.254/31 (the network)"},
                    RejectedCase{"2001:db8::1/64", "2001:db8::/64 (the network) or 2001:db8::1/128 (the host)"},
                    RejectedCase{"2001:db8:ffff::/33", "2001:db8:8000::/33 (the network)"},
                    RejectedCase{"::1/0", "::/0 (the network)"},
                    RejectedCase{"2001:db8::8001:0/97", "2001:db8::8000:0/97 (the network)"}));

TEST(CidrFastPath, AgreesOnEdgeCases) {
    const std::string nul_inside("1.2.3.4\0junk", 12), nul_after("10.0.0.0/8\0", 11), nul_in_length("10.0.0.0/\08", 11);
    for (std::string_view text : {"0.0.0.0",
                                  "0.0.0.0/0",
                                  "255.255.255.255/32",
                                  "1.2.3.4/32",
                                  "1.2.3.4/033",
                                  "1.2.3.4//24",
                                  "1.2.3",
                                  "1.2.3.",
                                  ".1.2.3.4",
                                  "1..2.3",
                                  "1.2.3.4/99999999999999999999999",
                                  "1.2.3.0/0024",
                                  "::",
                                  "::/0",
                                  "::/128",
                                  "::/00",
                                  ":",
                                  ":::",
                                  "1:",
                                  ":1",
                                  "::1/129",
                                  "1::2::3",
                                  "12345::",
                                  "1:2:3:4:5:6:7::",
                                  "::1:2:3:4:5:6:7",
                                  "1:2:3:4:5:6:7:8/128",
                                  "::ffff:0:0/96",
                                  "::ffff:0:0/95",
                                  "::ffff:0:0/97",
                                  "::ffff:1.2.3.4/127",
                                  "::ffff:1.2.3.4/128",
                                  "::1.2.3.4",
                                  "1.2.3.4::",
                                  "0000:0000:0000:0000:0000:0000:255.255.255.255",
                                  "0000:0000:0000:0000:0000:0000:255.255.255.255/128",
                                  "00000::",
                                  "2001:DB8::/32",
                                  "%",
                                  "1.2.3.4%",
                                  "/0",
                                  "/",
                                  "1.2.3.4/0x1",
                                  "1.2.3.4/1e1",
                                  "10.1.2.3/8",
                                  "10.0.0.0/8\r",
                                  "\t10.0.0.0/8"}) {
        expect_fast_path_agrees(text);
    }
    expect_fast_path_agrees(nul_inside);
    expect_fast_path_agrees(nul_after);
    expect_fast_path_agrees(nul_in_length);
}

TEST(CidrFastPath, AgreesOnAddressesAroundItsStackBuffer) {
    // The fast path copies addresses shorter than 64 bytes to the stack and
    // longer ones to the heap; inet_pton's valid texts are at most 45.
    for (size_t length = 40; length <= 70; ++length) {
        std::string zeros_then_v4 = std::string(length - 9, '0');
        for (size_t i = 4; i < zeros_then_v4.size(); i += 5) zeros_then_v4[i] = ':';
        expect_fast_path_agrees(zeros_then_v4 + ":1.2.3.4");
        expect_fast_path_agrees(std::string(length, ':'));
        expect_fast_path_agrees(std::string(length, '1') + "/24");
        expect_fast_path_agrees("::" + std::string(length, 'f'));
    }
}

TEST(CidrFastPath, AgreesOnRandomPrefixes) {
    std::mt19937_64 random(20261125);
    const auto below = [&](unsigned n) { return static_cast<unsigned>(random() % n); };
    for (int i = 0; i < 20000; ++i) {
        std::array<uint8_t, 16> bytes{};
        for (auto& b : bytes) b = below(4) == 0 ? 0 : static_cast<uint8_t>(random());
        const bool v4 = below(2) == 0;
        if (!v4 && below(4) == 0) {  // IPv4-mapped
            std::fill(bytes.begin(), bytes.begin() + 10, 0);
            bytes[10] = bytes[11] = 0xff;
        }
        const unsigned prefixlen = v4 ? below(34) : (below(2) == 0 ? 90 + below(40) : below(130));
        if (below(2) == 0) {  // half without host bits, so that many are valid
            const unsigned kept = std::min(prefixlen, v4 ? 32u : 128u);
            for (unsigned bit = kept; bit < 128; ++bit) bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
        }
        const std::string address = format_address(v4 ? Family::V4 : Family::V6, bytes);
        expect_fast_path_agrees(address);
        expect_fast_path_agrees(address + "/" + std::to_string(prefixlen));
    }
}

TEST(CidrFastPath, AgreesOnRandomText) {
    // Short words of the characters prefixes are made of, and of a few that
    // must not be in them.
    using namespace std::string_view_literals;
    constexpr std::string_view kAlphabet = "0123456789abcdefABCDEF:::...///%x -+\0"sv;
    std::mt19937_64 random(7);
    for (int i = 0; i < 50000; ++i) {
        std::string text(random() % 16, ' ');
        for (char& c : text) c = kAlphabet[random() % kAlphabet.size()];
        expect_fast_path_agrees(text);
    }
}

TEST(CidrFastPath, AgreesOnMutatedPrefixes) {
    // Valid prefixes with one character replaced, inserted or removed: the
    // near misses a typo makes.
    constexpr std::string_view kCharacters = "0123456789af:./ %x";
    const std::vector<std::string> seeds = {"203.0.113.0/24",     "10.0.0.0/8",        "192.0.2.1", "2001:db8::/32",
                                            "::ffff:1.2.3.0/120", "fe80::1:2:3:4/128", "::/0",      "1:2:3:4:5:6:7:8"};
    std::mt19937_64 random(11);
    for (int i = 0; i < 30000; ++i) {
        std::string text = seeds[random() % seeds.size()];
        const size_t at = random() % (text.size() + 1);
        const char c = kCharacters[random() % kCharacters.size()];
        switch (random() % 3) {
        case 0:
            if (at < text.size()) text[at] = c;
            break;
        case 1: text.insert(at, 1, c); break;
        default:
            if (at < text.size()) text.erase(at, 1);
            break;
        }
        expect_fast_path_agrees(text);
    }
}

TEST(CidrFormat, UsesTheCompressedCanonicalForm) {
    Cidr v6;
    v6.family = Family::V6;
    v6.addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    v6.prefixlen = 80;
    EXPECT_EQ(format_cidr(v6), "2001:db8:0:0:1::/80");

    Cidr v4;
    v4.addr = {198, 51, 100, 0};
    v4.prefixlen = 24;
    EXPECT_EQ(format_cidr(v4), "198.51.100.0/24");
}

TEST(CidrFormat, AddressAlone) {
    EXPECT_EQ(format_address(Family::V4, {192, 0, 2, 1}), "192.0.2.1");
    EXPECT_EQ(format_address(Family::V6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), "2001:db8::1");
    EXPECT_EQ(format_address(Family::V6, {}), "::");
    EXPECT_EQ(format_address(Family::V6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}), "::ffff:1.2.3.4");
}

TEST(CidrFormat, IsTheTextParseAccepts) {
    for (const char* text :
         {"0.0.0.0/0", "203.0.113.0/24", "203.0.113.7/32", "::/0", "2001:db8::/32", "2001:db8::1/128", "fe80::/10"}) {
        EXPECT_EQ(format_cidr(parsed(text)), text);
    }
}

struct ContainsCase {
    std::string outer;
    std::string inner;
    bool contains;
};

std::ostream& operator<<(std::ostream& out, const ContainsCase& c) {
    return out << c.outer << (c.contains ? " contains " : " does not contain ") << c.inner;
}

class CidrContains : public testing::TestWithParam<ContainsCase> {};

TEST_P(CidrContains, MatchesEveryAddressOfTheInnerPrefix) {
    const ContainsCase& c = GetParam();
    EXPECT_EQ(parsed(c.outer).contains(parsed(c.inner)), c.contains) << c.outer << " contains " << c.inner;
}

INSTANTIATE_TEST_SUITE_P(
    Table, CidrContains,
    testing::Values(
        ContainsCase{"203.0.113.0/24", "203.0.113.0/24", true}, ContainsCase{"203.0.113.0/24", "203.0.113.7", true},
        ContainsCase{"203.0.113.0/24", "203.0.113.255", true}, ContainsCase{"203.0.113.0/24", "203.0.113.128/25", true},
        ContainsCase{"203.0.113.0/24", "203.0.114.0", false}, ContainsCase{"203.0.113.0/24", "203.0.112.0/23", false},
        ContainsCase{"203.0.113.128/25", "203.0.113.0/24", false},
        ContainsCase{"203.0.113.128/25", "203.0.113.127", false}, ContainsCase{"0.0.0.0/0", "255.255.255.255", true},
        ContainsCase{"0.0.0.0/0", "0.0.0.0/0", true}, ContainsCase{"10.0.0.0/7", "11.255.0.0/16", true},
        ContainsCase{"2001:db8::/32", "2001:db8:1::/48", true}, ContainsCase{"2001:db8::/32", "2001:db9::1", false},
        ContainsCase{"2001:db8::/33", "2001:db8:8000::1", false}, ContainsCase{"2001:db8::1", "2001:db8::1", true},
        ContainsCase{"2001:db8::1", "2001:db8::2", false}, ContainsCase{"::/0", "2001:db8::1", true},
        ContainsCase{"::/0", "::ffff:0:0/96", false}, ContainsCase{"0.0.0.0/0", "::/0", false},
        ContainsCase{"::/0", "0.0.0.0/0", false}, ContainsCase{"203.0.113.0/24", "::ffff:203.0.113.7", true}));

TEST(CidrOrder, V4BeforeV6ThenAddressThenPrefixLength) {
    std::vector<Cidr> rules;
    for (const char* text : {"2001:db8::/32", "203.0.113.0/24", "10.0.0.0/8", "::/0", "203.0.113.0/25", "10.0.0.0/16",
                             "2001:db8::/48", "0.0.0.0/0", "203.0.113.128/25"}) {
        rules.push_back(parsed(text));
    }
    std::sort(rules.begin(), rules.end());
    std::vector<std::string> order;
    for (const Cidr& rule : rules) {
        order.push_back(format_cidr(rule));
    }
    EXPECT_EQ(order,
              (std::vector<std::string>{"0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16", "203.0.113.0/24", "203.0.113.0/25",
                                        "203.0.113.128/25", "::/0", "2001:db8::/32", "2001:db8::/48"}));
}

TEST(CidrOrder, EqualityComparesFamilyAddressAndLength) {
    EXPECT_EQ(parsed("203.0.113.0/24"), parsed("203.0.113.0/24"));
    EXPECT_NE(parsed("203.0.113.0/24"), parsed("203.0.113.0/25"));
    EXPECT_NE(parsed("0.0.0.0/0"), parsed("::/0"));
    EXPECT_EQ(parsed("2001:DB8:0::/32"), parsed("2001:db8::/32"));
}

TEST(DescribeErrno, NamesTheContextAndTheSystemError) {
    EXPECT_EQ(describe_errno("opening /sys/fs/bpf/smtpfence/rules_v4", ENOENT),
              "opening /sys/fs/bpf/smtpfence/rules_v4: No such file or directory");
}

TEST(DescribeErrno, HintsAtPrivilegesForPermissionErrors) {
    for (const int err : {EPERM, EACCES}) {
        const std::string text = describe_errno("loading the XDP program", err);
        EXPECT_EQ(text.rfind("loading the XDP program: ", 0), 0u) << text;
        EXPECT_NE(text.find("(run as root, or with CAP_BPF and CAP_NET_ADMIN)"), std::string::npos) << text;
    }
    EXPECT_EQ(describe_errno("x", EPERM),
              "x: Operation not permitted (run as root, or with "
              "CAP_BPF and CAP_NET_ADMIN)");
}

TEST(DescribeErrno, NoHintForOtherErrors) {
    EXPECT_EQ(describe_errno("attaching to eth9", ENODEV).find("CAP_BPF"), std::string::npos);
}

}  // namespace
}  // namespace smtpfence
