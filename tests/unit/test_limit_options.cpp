// The vocabulary of `limit`: rates, bursts, connection caps and keys.
#include "text/limit_options.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/errors.h"
#include "text/cidr.h"

namespace smtpfence {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 3600 * kSecond;

Cidr cidr(std::string_view text) {
    return parse_cidr(text).cidr;
}

// The message of the UsageError `fn` throws; fails the test if it throws
// nothing or something else.
std::string usage_error_of(const std::function<void()>& fn, const std::string& what) {
    try {
        fn();
        ADD_FAILURE() << what << " was accepted";
    } catch (const UsageError& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << what << " threw a non-UsageError: " << e.what();
    }
    return {};
}

std::string rate_error(const std::string& text) {
    return usage_error_of([&] { (void)parse_rate(text); }, "--rate '" + text + "'");
}

// ---------------------------------------------------------------- parse_rate

TEST(ParseRate, IntervalsOfTheThreeUnits) {
    EXPECT_EQ(parse_rate("5/s"), 200'000'000u);
    EXPECT_EQ(parse_rate("1/s"), 1'000'000'000u);
    EXPECT_EQ(parse_rate("30/min"), 2'000'000'000u);
    EXPECT_EQ(parse_rate("1/min"), 60'000'000'000u);
    EXPECT_EQ(parse_rate("100/h"), 36'000'000'000u);
    EXPECT_EQ(parse_rate("1/h"), 3'600'000'000'000u);
    EXPECT_EQ(parse_rate("1000000/s"), 1'000u);
    EXPECT_EQ(parse_rate("60000000/min"), 1'000u);  // the same top speed per minute
    EXPECT_EQ(parse_rate("3600000000/h"), 1'000u);  // and per hour
}

TEST(ParseRate, RoundsDownWhenTheRateDoesNotDivideItsUnit) {
    EXPECT_EQ(parse_rate("7/min"), 8'571'428'571u);  // 8571428571.43
    EXPECT_EQ(parse_rate("3/s"), 333'333'333u);      // 333333333.33
    EXPECT_EQ(parse_rate("7/h"), 514'285'714'285u);  // 514285714285.71
    EXPECT_EQ(parse_rate("999999/s"), 1'000u);       // 1000.001
    // At most 1 ns fast per connection, never slow.
    for (uint64_t n : {3u, 7u, 11u, 13u, 17u, 999u, 65537u, 999999u}) {
        for (uint64_t period : {kSecond, kMinute, kHour}) {
            const char* unit = period == kSecond ? "s" : period == kMinute ? "min" : "h";
            uint64_t interval = parse_rate(std::to_string(n) + "/" + unit);
            EXPECT_LE(interval * n, period) << n << "/" << unit;
            EXPECT_GT((interval + 1) * n, period) << n << "/" << unit;
        }
    }
}

class ParseRateRejects : public testing::TestWithParam<std::string> {};

TEST_P(ParseRateRejects, WithAUsageErrorQuotingItAndAnExample) {
    const std::string& text = GetParam();
    std::string msg = rate_error(text);
    EXPECT_NE(msg.find("'" + text + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("e.g. 5/s"), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(BadRates, ParseRateRejects,
                         testing::Values("0/s", "0/min", "0/h", "fast", "5", "5/", "/s", "/", "", "5/sec", "5/S", "5/m",
                                         "5/hour", "-5/s", "+5/s", "05/s", "00/s", "1000001/s", "60000001/min",
                                         "3600000001/h", " 5/s", "5/s ", "5 /s", "5/ s", "5.0/s", "1e3/s", "0x10/s",
                                         "5/s/s", "99999999999999999999/s"));

TEST(ParseRate, SaysWhatIsWrong) {
    EXPECT_NE(rate_error("fast").find("is not a rate"), std::string::npos);
    EXPECT_NE(rate_error("5/sec").find("unit 'sec'"), std::string::npos);
    EXPECT_NE(rate_error("0/s").find("at least 1"), std::string::npos);
    EXPECT_NE(rate_error("0/s").find("use `block`"), std::string::npos);
    EXPECT_NE(rate_error("1000001/s").find("faster than the highest rate, 1000000/s"), std::string::npos);
    EXPECT_NE(rate_error("60000001/min").find("faster than the highest rate, 1000000/s"), std::string::npos);
}

// --------------------------------------------------------------- format_rate

TEST(FormatRate, ShowsTheShortestExactForm) {
    EXPECT_EQ(format_rate(parse_rate("5/s")), "5/s");
    EXPECT_EQ(format_rate(parse_rate("300/min")), "5/s");
    EXPECT_EQ(format_rate(parse_rate("18000/h")), "5/s");
    EXPECT_EQ(format_rate(parse_rate("30/min")), "30/min");
    EXPECT_EQ(format_rate(parse_rate("60/min")), "1/s");
    EXPECT_EQ(format_rate(parse_rate("120/h")), "2/min");
    EXPECT_EQ(format_rate(parse_rate("90/h")), "90/h");
    EXPECT_EQ(format_rate(parse_rate("7/min")), "7/min");
    EXPECT_EQ(format_rate(parse_rate("1/h")), "1/h");
    EXPECT_EQ(format_rate(parse_rate("100/h")), "100/h");
    EXPECT_EQ(format_rate(parse_rate("1000000/s")), "1000000/s");
    EXPECT_EQ(format_rate(parse_rate("60000000/min")), "1000000/s");
    // 999999/s rounds to the same 1000 ns interval as 1000000/s: that is the rate enforced.
    EXPECT_EQ(format_rate(parse_rate("999999/s")), "1000000/s");
}

// The form format_rate must pick for N/unit when N is small enough that no
// other count shares its interval: N/s; N/min as /s when 60 divides it; N/h
// as /s or /min when 3600 or 60 divides it.
std::string canonical(uint64_t n, uint64_t period) {
    if (period == kHour && n % 60 == 0) return canonical(n / 60, kMinute);
    if (period == kMinute && n % 60 == 0) return canonical(n / 60, kSecond);
    return std::to_string(n) + (period == kSecond ? "/s" : period == kMinute ? "/min" : "/h");
}

TEST(FormatRate, RoundTripsTextForEveryRateUpToTenThousand) {
    for (uint64_t n = 1; n <= 10'000; ++n) {
        for (uint64_t period : {kSecond, kMinute, kHour}) {
            std::string text = std::to_string(n) + (period == kSecond ? "/s" : period == kMinute ? "/min" : "/h");
            uint64_t interval = parse_rate(text);
            std::string shown = format_rate(interval);
            ASSERT_EQ(shown, canonical(n, period)) << text;
            ASSERT_EQ(parse_rate(shown), interval) << text << " shown as " << shown;
        }
    }
}

TEST(FormatRate, RoundTripsTextForPerSecondRatesWithDistinctIntervals) {
    // Up to 31622/s (n * (n + 1) <= 1e9) every count has its own interval.
    for (uint64_t n = 1; n <= 31'622; ++n) {
        std::string text = std::to_string(n) + "/s";
        ASSERT_EQ(format_rate(parse_rate(text)), text);
    }
}

TEST(FormatRate, RoundTripsTheIntervalOfEveryPerSecondRate) {
    for (uint64_t n = 1; n <= kMaxRatePerSecond; ++n) {
        uint64_t interval = parse_rate(std::to_string(n) + "/s");
        ASSERT_EQ(parse_rate(format_rate(interval)), interval) << n << "/s";
    }
}

TEST(FormatRate, RoundTripsTheIntervalOfSampledPerMinuteAndPerHourRates) {
    std::mt19937_64 rng(20261125);
    for (int i = 0; i < 200'000; ++i) {
        bool hours = i % 2;
        uint64_t max = hours ? 3'600'000'000ull : 60'000'000ull;
        uint64_t n = std::uniform_int_distribution<uint64_t>(1, max)(rng);
        std::string text = std::to_string(n) + (hours ? "/h" : "/min");
        uint64_t interval = parse_rate(text);
        std::string shown = format_rate(interval);
        ASSERT_EQ(parse_rate(shown), interval) << text << " shown as " << shown;
        // The shown count of its unit is exact for the interval.
        auto slash = shown.find('/');
        uint64_t count = std::stoull(shown.substr(0, slash));
        std::string unit = shown.substr(slash + 1);
        uint64_t period = unit == "s" ? kSecond : unit == "min" ? kMinute : kHour;
        ASSERT_EQ(period / count, interval) << text << " shown as " << shown;
    }
}

// --------------------------------------------------------------- parse_count

TEST(ParseCount, AcceptsOneToMax) {
    EXPECT_EQ(parse_count("--burst", "1", kMaxBurst), 1u);
    EXPECT_EQ(parse_count("--burst", "5", kMaxBurst), 5u);
    EXPECT_EQ(parse_count("--burst", "1000000", kMaxBurst), 1'000'000u);
    EXPECT_EQ(parse_count("--max-conns", "3", kMaxConns), 3u);
    EXPECT_EQ(parse_count("--max-conns", "1000000", kMaxConns), 1'000'000u);
    EXPECT_EQ(parse_count("--x", "10", 10), 10u);
    EXPECT_EQ(parse_count("--x", "4294967295", 4294967295u), 4294967295u);
}

struct BadCount {
    std::string text;
    uint32_t max;
};

std::ostream& operator<<(std::ostream& out, const BadCount& c) {
    return out << "'" << c.text << "' max " << c.max;
}

class ParseCountRejects : public testing::TestWithParam<BadCount> {};

TEST_P(ParseCountRejects, NamingTheOptionAndTheRange) {
    const BadCount& c = GetParam();
    std::string msg = usage_error_of([&] { (void)parse_count("--burst", c.text, c.max); }, c.text);
    EXPECT_NE(msg.find("--burst '" + c.text + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("from 1 to " + std::to_string(c.max)), std::string::npos) << msg;
    EXPECT_NE(msg.find("e.g. --burst 5"), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(BadCounts, ParseCountRejects,
                         testing::Values(BadCount{"0", kMaxBurst}, BadCount{"-1", kMaxBurst}, BadCount{"01", kMaxBurst},
                                         BadCount{"1.5", kMaxBurst}, BadCount{"", kMaxBurst},
                                         BadCount{"1000001", kMaxBurst}, BadCount{"11", 10}, BadCount{"+1", kMaxBurst},
                                         BadCount{" 1", kMaxBurst}, BadCount{"1 ", kMaxBurst},
                                         BadCount{"1e3", kMaxBurst}, BadCount{"five", kMaxBurst},
                                         BadCount{"4294967296", 4294967295u},
                                         BadCount{"18446744073709551616", 4294967295u}));

// ------------------------------------------------------------- default_burst

TEST(DefaultBurst, IsOneSecondsWorthAtLeastOne) {
    EXPECT_EQ(default_burst(parse_rate("5/s")), 5u);
    EXPECT_EQ(default_burst(parse_rate("1/s")), 1u);
    EXPECT_EQ(default_burst(parse_rate("3/s")), 3u);
    EXPECT_EQ(default_burst(parse_rate("600/min")), 10u);
    EXPECT_EQ(default_burst(parse_rate("30/min")), 1u);
    EXPECT_EQ(default_burst(parse_rate("1/min")), 1u);
    EXPECT_EQ(default_burst(parse_rate("1000000/s")), 1'000'000u);
    EXPECT_EQ(default_burst(parse_rate("1/h")), 1u);
    EXPECT_EQ(default_burst(parse_rate("100/h")), 1u);
}

// ----------------------------------------------------------- parse_key_scope

TEST(ParseKeyScope, SourceRuleAndEveryLength) {
    EXPECT_EQ(parse_key_scope("source").kind, KeyScope::Kind::Source);
    EXPECT_EQ(parse_key_scope("rule").kind, KeyScope::Kind::Rule);
    for (unsigned len = 0; len <= 128; ++len) {
        KeyScope s = parse_key_scope("/" + std::to_string(len));
        EXPECT_EQ(s.kind, KeyScope::Kind::Prefix) << len;
        EXPECT_EQ(s.prefixlen, len);
    }
}

class ParseKeyScopeRejects : public testing::TestWithParam<std::string> {};

TEST_P(ParseKeyScopeRejects, WithTheChoicesAndAnExample) {
    const std::string& text = GetParam();
    std::string msg = usage_error_of([&] { (void)parse_key_scope(text); }, "--per '" + text + "'");
    EXPECT_NE(msg.find("--per '" + text + "' is not a key"), std::string::npos) << msg;
    EXPECT_NE(msg.find("use source"), std::string::npos) << msg;
    EXPECT_NE(msg.find("e.g. --per /24"), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(BadScopes, ParseKeyScopeRejects,
                         testing::Values("/", "/129", "/256", "/300", "24", "sources", "Source", "RULE", "/-1", "/024",
                                         "/00", "/+1", "/ 24", "/24 ", " source", "", "//24", "/24/",
                                         "/99999999999999999999"));

// --------------------------------------------------------- key_prefixlen_for

KeyScope per(std::string_view text) {
    return parse_key_scope(text);
}

std::string key_error(std::string_view scope, std::string_view rule) {
    return usage_error_of([&] { (void)key_prefixlen_for(per(scope), cidr(rule)); },
                          "--per " + std::string(scope) + " on " + std::string(rule));
}

TEST(KeyPrefixlenFor, SourceIsAHostForIpv4AndASlash64ForIpv6) {
    EXPECT_EQ(key_prefixlen_for(per("source"), cidr("203.0.113.0/24")), 32);
    EXPECT_EQ(key_prefixlen_for(per("source"), cidr("0.0.0.0/0")), 32);
    EXPECT_EQ(key_prefixlen_for(per("source"), cidr("203.0.113.7")), 32);
    EXPECT_EQ(key_prefixlen_for(per("source"), cidr("2001:db8:bad::/48")), 64);
    EXPECT_EQ(key_prefixlen_for(per("source"), cidr("::/0")), 64);
    // A rule narrower than a source keys on its own length: a key never
    // covers more than its rule.
    EXPECT_EQ(key_prefixlen_for(per("source"), cidr("2001:db8::1")), 128);
    EXPECT_EQ(key_prefixlen_for(per("source"), cidr("2001:db8::/96")), 96);
}

TEST(KeyPrefixlenFor, RuleIsTheRulesOwnLength) {
    EXPECT_EQ(key_prefixlen_for(per("rule"), cidr("198.51.100.0/22")), 22);
    EXPECT_EQ(key_prefixlen_for(per("rule"), cidr("0.0.0.0/0")), 0);
    EXPECT_EQ(key_prefixlen_for(per("rule"), cidr("198.51.100.7")), 32);
    EXPECT_EQ(key_prefixlen_for(per("rule"), cidr("2001:db8:bad::/48")), 48);
    EXPECT_EQ(key_prefixlen_for(per("rule"), cidr("2001:db8::1")), 128);
}

TEST(KeyPrefixlenFor, LengthInsideTheRule) {
    EXPECT_EQ(key_prefixlen_for(per("/24"), cidr("198.51.100.0/22")), 24);
    EXPECT_EQ(key_prefixlen_for(per("/22"), cidr("198.51.100.0/22")), 22);
    EXPECT_EQ(key_prefixlen_for(per("/32"), cidr("198.51.100.0/22")), 32);
    EXPECT_EQ(key_prefixlen_for(per("/0"), cidr("0.0.0.0/0")), 0);
    EXPECT_EQ(key_prefixlen_for(per("/64"), cidr("2001:db8:bad::/48")), 64);
    EXPECT_EQ(key_prefixlen_for(per("/56"), cidr("2001:db8:bad::/48")), 56);
    EXPECT_EQ(key_prefixlen_for(per("/128"), cidr("2001:db8:bad::/48")), 128);
}

TEST(KeyPrefixlenFor, RejectsAKeyWiderThanTheRule) {
    std::string msg = key_error("/20", "198.51.100.0/22");
    EXPECT_NE(msg.find("--per /20 is wider than the rule 198.51.100.0/22"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--per rule"), std::string::npos) << msg;
    msg = key_error("/21", "198.51.100.0/22");
    EXPECT_NE(msg.find("--per /21 is wider than the rule 198.51.100.0/22"), std::string::npos) << msg;
    msg = key_error("/0", "203.0.113.7");
    EXPECT_NE(msg.find("--per /0 is wider than the rule 203.0.113.7/32"), std::string::npos) << msg;
    msg = key_error("/40", "2001:db8:bad::/48");
    EXPECT_NE(msg.find("--per /40 is wider than the rule 2001:db8:bad::/48"), std::string::npos) << msg;
}

TEST(KeyPrefixlenFor, RejectsAKeyLongerThanTheFamilysAddresses) {
    std::string msg = key_error("/33", "203.0.113.0/24");
    EXPECT_NE(msg.find("--per /33 is longer than an IPv4 address (/32) for 203.0.113.0/24"), std::string::npos) << msg;
    msg = key_error("/128", "203.0.113.0/24");
    EXPECT_NE(msg.find("--per /128 is longer than an IPv4 address (/32)"), std::string::npos) << msg;
    // Not reachable through parse_key_scope, but the check stands on its own.
    msg = usage_error_of(
        [] {
            (void)key_prefixlen_for({KeyScope::Kind::Prefix, 129}, cidr("2001:db8::/32"));
        },
        "/129 on 2001:db8::/32");
    EXPECT_NE(msg.find("--per /129 is longer than an IPv6 address (/128) for 2001:db8::/32"), std::string::npos) << msg;
}

// -------------------------------------------------------------- describe_key

TEST(DescribeKey, NamesSourceRuleOrLength) {
    EXPECT_EQ(describe_key(32, cidr("203.0.113.0/24")), "source");
    EXPECT_EQ(describe_key(24, cidr("203.0.113.0/24")), "rule");
    EXPECT_EQ(describe_key(28, cidr("203.0.113.0/24")), "/28");
    EXPECT_EQ(describe_key(22, cidr("198.51.100.0/22")), "rule");
    EXPECT_EQ(describe_key(24, cidr("198.51.100.0/22")), "/24");
    EXPECT_EQ(describe_key(0, cidr("0.0.0.0/0")), "rule");
    EXPECT_EQ(describe_key(64, cidr("2001:db8:bad::/48")), "source");
    EXPECT_EQ(describe_key(48, cidr("2001:db8:bad::/48")), "rule");
    EXPECT_EQ(describe_key(56, cidr("2001:db8:bad::/48")), "/56");
    EXPECT_EQ(describe_key(128, cidr("2001:db8:bad::/48")), "/128");
    EXPECT_EQ(describe_key(32, cidr("2001:db8:bad::/48")), "/32");  // 32 is a source only for IPv4
    // Where source and rule coincide (a v4 host, a v6 /64), "source" is shown.
    EXPECT_EQ(describe_key(32, cidr("203.0.113.7")), "source");
    EXPECT_EQ(describe_key(64, cidr("2001:db8:1:2::/64")), "source");
}

TEST(DescribeKey, RoundTripsThroughParseKeyScope) {
    for (const char* rule : {"203.0.113.0/24", "198.51.100.0/22", "0.0.0.0/0", "2001:db8:bad::/48", "::/0"}) {
        Cidr c = cidr(rule);
        for (const char* scope : {"source", "rule", "/26", "/30", "/56", "/96"}) {
            KeyScope s = per(scope);
            if (s.kind == KeyScope::Kind::Prefix &&
                ((c.family == Family::V4 && s.prefixlen > 32) || s.prefixlen < c.prefixlen)) {
                continue;
            }
            uint8_t len = key_prefixlen_for(s, c);
            EXPECT_EQ(key_prefixlen_for(per(describe_key(len, c)), c), len) << rule << " --per " << scope;
        }
    }
}

}  // namespace
}  // namespace smtpfence
