#include "text/durations.h"

#include <charconv>
#include <chrono>
#include <ctime>

#include "base/errors.h"

namespace smtpfence {

namespace {

constexpr std::string_view kDurationExample = "e.g. --for 90m, --for 2h, --for 1d12h or --for 45s";
constexpr std::string_view kDeadlineExample =
    "write YYYY-MM-DDTHH:MM[:SS] in local time, or with Z or +HH:MM for another zone, e.g. --until 2026-12-01T08:00";

constexpr uint64_t kNanos = 1'000'000'000;

uint64_t unit_seconds(char unit) {
    switch (unit) {
    case 'd': return 86400;
    case 'h': return 3600;
    case 'm': return 60;
    case 's': return 1;
    }
    return 0;
}

// Reads exactly `digits` decimal digits at `pos`, advancing it.
bool read_fixed(std::string_view text, size_t& pos, size_t digits, int& value) {
    if (pos + digits > text.size()) return false;
    for (size_t i = 0; i < digits; ++i) {
        if (text[pos + i] < '0' || text[pos + i] > '9') return false;
    }
    std::from_chars(text.data() + pos, text.data() + pos + digits, value);
    pos += digits;
    return true;
}

bool expect_char(std::string_view text, size_t& pos, char c) {
    if (pos >= text.size() || text[pos] != c) return false;
    ++pos;
    return true;
}

uint64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * kNanos + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

uint64_t parse_duration(std::string_view text, std::string_view option) {
    const std::string quoted = std::string(option) + " '" + std::string(text) + "'";
    if (text.empty()) throw UsageError(std::string(option) + " needs a duration, " + std::string(kDurationExample));
    uint64_t total = 0;
    size_t pos = 0;
    std::string seen_units;
    while (pos < text.size()) {
        size_t start = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
        if (pos == start || pos == text.size() || pos - start > 9) {
            throw UsageError(quoted + " is not a duration: each number needs a unit (d, h, m or s), " +
                             std::string(kDurationExample));
        }
        uint64_t count = 0;
        std::from_chars(text.data() + start, text.data() + pos, count);
        char unit = text[pos++];
        uint64_t seconds = unit_seconds(unit);
        if (seconds == 0 || seen_units.find(unit) != std::string::npos) {
            throw UsageError(quoted + " has unit '" + std::string(1, unit) +
                             "': the units are d, h, m and s, each at most once, " + std::string(kDurationExample));
        }
        seen_units += unit;
        total += count * seconds;
        if (total > kMaxLifetimeSeconds) break;
    }
    if (total == 0) throw UsageError(quoted + " is no time at all: a rule must last at least 1s");
    if (total > kMaxLifetimeSeconds) {
        throw UsageError(quoted + " is longer than 10 years (3650d)" +
                         (option == "--for" ? ": a rule that stays takes --permanent" : ""));
    }
    return total;
}

uint64_t parse_deadline(std::string_view text) {
    const std::string quoted = "--until '" + std::string(text) + "'";
    std::tm tm{};
    size_t pos = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    bool ok = read_fixed(text, pos, 4, year) && expect_char(text, pos, '-') && read_fixed(text, pos, 2, month) &&
              expect_char(text, pos, '-') && read_fixed(text, pos, 2, day) &&
              (expect_char(text, pos, 'T') || expect_char(text, pos, ' ')) && read_fixed(text, pos, 2, hour) &&
              expect_char(text, pos, ':') && read_fixed(text, pos, 2, minute);
    if (ok && pos < text.size() && text[pos] == ':')
        ok = expect_char(text, pos, ':') && read_fixed(text, pos, 2, second);
    if (!ok) throw UsageError(quoted + " is not a time: " + std::string(kDeadlineExample));
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
        throw UsageError(quoted + " is not a valid date and time: " + std::string(kDeadlineExample));
    }
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    std::time_t result;
    if (pos == text.size()) {
        tm.tm_isdst = -1;  // local time: let the zone rules say whether DST applies
        result = std::mktime(&tm);
    } else {
        long offset = 0;
        if (text[pos] == 'Z' && pos + 1 == text.size()) {
            ++pos;
        } else if (text[pos] == '+' || text[pos] == '-') {
            int sign = text[pos++] == '+' ? 1 : -1, zh = 0, zm = 0;
            if (!read_fixed(text, pos, 2, zh) || !expect_char(text, pos, ':') || !read_fixed(text, pos, 2, zm) ||
                pos != text.size() || zh > 23 || zm > 59) {
                throw UsageError(quoted + " has a malformed zone: " + std::string(kDeadlineExample));
            }
            offset = sign * (zh * 3600L + zm * 60L);
        } else {
            throw UsageError(quoted + " has trailing text: " + std::string(kDeadlineExample));
        }
        result = timegm(&tm) - offset;
    }
    // mktime and timegm normalise 31 February into March: a date that does
    // not exist is a typo.
    if (tm.tm_mday != day || tm.tm_mon != month - 1) {
        throw UsageError(quoted + " is not a date that exists: " + std::string(kDeadlineExample));
    }
    if (result < 0) throw UsageError(quoted + " is before 1970: " + std::string(kDeadlineExample));
    return static_cast<uint64_t>(result);
}

uint64_t rule_deadline(const std::string& for_text, const std::string& until_text, uint64_t now_unix) {
    if (!for_text.empty() && !until_text.empty()) {
        throw UsageError("give --for or --until, not both: --for is a duration from now, --until a deadline");
    }
    if (!for_text.empty()) return now_unix + parse_duration(for_text);
    if (until_text.empty()) return 0;
    uint64_t deadline = parse_deadline(until_text);
    if (deadline <= now_unix) {
        throw UsageError("--until " + until_text + " (" + format_utc(deadline) + ") is in the past; it is now " +
                         format_utc(now_unix));
    }
    if (deadline - now_unix > kMaxLifetimeSeconds) {
        throw UsageError("--until " + until_text +
                         " is more than 10 years (3650 days) away: a rule that stays takes --permanent");
    }
    return deadline;
}

std::string format_time_left(uint64_t expires_unix, uint64_t now_unix) {
    if (expires_unix == 0) return "never";
    if (expires_unix <= now_unix) return "expired";
    return "in " + format_age(expires_unix - now_unix);
}

uint64_t unix_now() {
    return static_cast<uint64_t>(std::time(nullptr));
}

int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

uint64_t boottime_now_ns() {
    return clock_ns(CLOCK_BOOTTIME);
}

uint64_t monotonic_now_ns() {
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t monotonic_to_unix_offset_ns() {
    return static_cast<int64_t>(clock_ns(CLOCK_REALTIME)) - static_cast<int64_t>(clock_ns(CLOCK_MONOTONIC));
}

std::string format_age(uint64_t seconds) {
    constexpr uint64_t kMinute = 60, kHour = 60 * kMinute, kDay = 24 * kHour;
    auto two = [](uint64_t big, const char* big_unit, uint64_t small, const char* small_unit) {
        std::string s = std::to_string(big) + big_unit;
        if (small) s += std::to_string(small) + small_unit;
        return s;
    };
    if (seconds < kMinute) return std::to_string(seconds) + "s";
    if (seconds < kHour) return std::to_string(seconds / kMinute) + "m";
    if (seconds < kDay) return two(seconds / kHour, "h", seconds % kHour / kMinute, "m");
    return two(seconds / kDay, "d", seconds % kDay / kHour, "h");
}

std::string format_utc(uint64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

uint64_t boottime_deadline_ns(uint64_t expires_unix) {
    uint64_t wall_ns = clock_ns(CLOCK_REALTIME);
    uint64_t boot_ns = clock_ns(CLOCK_BOOTTIME);
    uint64_t deadline_wall_ns = expires_unix * kNanos;
    return deadline_wall_ns > wall_ns ? boot_ns + (deadline_wall_ns - wall_ns) : boot_ns;
}

}  // namespace smtpfence
