// --for and --until as admins type them, and time left as `list` shows it.
#include <gtest/gtest.h>

#include <cstdlib>

#include "base/errors.h"
#include "text/defaults.h"
#include "text/durations.h"

namespace smtpfence {
namespace {

TEST(ParseDuration, UnitsCombine) {
    EXPECT_EQ(parse_duration("45s"), 45u);
    EXPECT_EQ(parse_duration("90m"), 5400u);
    EXPECT_EQ(parse_duration("2h"), 7200u);
    EXPECT_EQ(parse_duration("1h30m"), 5400u);
    EXPECT_EQ(parse_duration("1d12h"), 129600u);
}

TEST(ParseDuration, TheWarnBlockAgeDefaultSaysItsSeconds) {
    // The default is written as an admin writes it (for --help) and in
    // seconds (for the code that compares ages): the two must agree.
    EXPECT_EQ(parse_duration(kDefaultWarnBlockAge), kDefaultWarnBlockAgeSeconds);
}

TEST(ParseDuration, RejectsWithAnExample) {
    for (const char* bad : {"", "90", "m", "5x", "1h1h", "0s", "-5m", "1.5h", "4000d"}) {
        try {
            parse_duration(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find("--for"), std::string::npos) << e.what();
        }
    }
}

TEST(ParseDeadline, UtcAndZones) {
    EXPECT_EQ(parse_deadline("2026-12-01T08:00:00Z"), 1796112000u);
    EXPECT_EQ(parse_deadline("2026-12-01T08:00Z"), 1796112000u);
    EXPECT_EQ(parse_deadline("2026-12-01T09:00+01:00"), 1796112000u);
    EXPECT_EQ(parse_deadline("2026-12-01T03:00:00-05:00"), 1796112000u);
}

TEST(ParseDeadline, WithoutZoneIsLocalTime) {
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    EXPECT_EQ(parse_deadline("2026-12-01T09:00"), 1796112000u);  // CET is UTC+1 in December
    setenv("TZ", "UTC", 1);
    tzset();
    EXPECT_EQ(parse_deadline("2026-12-01T08:00"), 1796112000u);
}

TEST(ParseDeadline, RejectsMalformedAndImpossibleDates) {
    for (const char* bad : {"tomorrow", "2026-12-01", "2026-12-01T8:00", "2026-13-01T08:00", "2026-02-31T08:00",
                            "2026-12-01T24:00", "2026-12-01T08:00:00+1", "2026-12-01T08:00Zx"}) {
        EXPECT_THROW(parse_deadline(bad), UsageError) << bad;
    }
}

TEST(RuleDeadline, ForUntilOrNeither) {
    EXPECT_EQ(rule_deadline("", "", 1000), 0u);
    EXPECT_EQ(rule_deadline("90m", "", 1000), 1000u + 5400);
    EXPECT_EQ(rule_deadline("", "2026-12-01T08:00Z", 1796112000 - 60), 1796112000u);
    EXPECT_THROW(rule_deadline("1h", "2026-12-01T08:00Z", 1000), UsageError);
    EXPECT_THROW(rule_deadline("", "2026-12-01T08:00Z", 1796112000), UsageError);  // not in the future
    EXPECT_THROW(rule_deadline("", "2040-12-01T08:00Z", 1796112000), UsageError);  // more than 10 years
}

TEST(FormatTimeLeft, NeverInAndExpired) {
    EXPECT_EQ(format_time_left(0, 1000), "never");
    EXPECT_EQ(format_time_left(1000 + 5340, 1000), "in 1h29m");
    EXPECT_EQ(format_time_left(1042, 1000), "in 42s");
    EXPECT_EQ(format_time_left(1000, 1000), "expired");
}

TEST(BoottimeDeadline, MapsTheWallClockDeadlineOntoBoottime) {
    uint64_t now_boot = boottime_now_ns();
    uint64_t deadline = boottime_deadline_ns(unix_now() + 100);
    EXPECT_GT(deadline, now_boot + 98'000'000'000ull);
    EXPECT_LE(deadline, now_boot + 101'000'000'000ull);
    uint64_t past = boottime_deadline_ns(1);  // long past: expired now
    EXPECT_LE(past, boottime_now_ns());
    EXPECT_GT(past, 0u);
}

}  // namespace
}  // namespace smtpfence
