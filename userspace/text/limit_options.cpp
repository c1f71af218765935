#include "text/limit_options.h"

#include <algorithm>
#include <charconv>

#include "base/errors.h"
#include "smtpfence_abi.h"

namespace smtpfence {

namespace {

struct RateUnit {
    std::string_view name;
    uint64_t period_ns;
};

constexpr RateUnit kUnits[] = {{"s", kNanosPerSecond}, {"min", 60 * kNanosPerSecond}, {"h", 3600 * kNanosPerSecond}};

constexpr std::string_view kRateExample = "e.g. 5/s, 30/min or 100/h";

// Digits only, no sign, no leading zero, fits in uint64_t.
bool parse_whole(std::string_view text, uint64_t& value) {
    if (text.empty() || (text.size() > 1 && text.front() == '0')) return false;
    if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    return std::from_chars(text.data(), text.data() + text.size(), value).ec == std::errc{};
}

uint8_t source_prefixlen(Family family) {
    return family == Family::V4 ? 32 : 64;
}

}  // namespace

uint64_t parse_rate(std::string_view text, std::string_view option_name) {
    const std::string option(option_name);
    const std::string quoted = "'" + std::string(text) + "'";
    auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        throw UsageError(option + " " + quoted + " is not a rate: write how many per unit, " +
                         std::string(kRateExample));
    }
    std::string_view unit_text = text.substr(slash + 1);
    auto unit = std::find_if(std::begin(kUnits), std::end(kUnits),
                             [&](const RateUnit& u) { return u.name == unit_text; });
    if (unit == std::end(kUnits)) {
        throw UsageError(option + " " + quoted + " has unit '" + std::string(unit_text) +
                         "': the units are s, min and h, " + std::string(kRateExample));
    }
    uint64_t count = 0;
    if (!parse_whole(text.substr(0, slash), count) || count == 0) {
        throw UsageError(option + " " + quoted + " needs a whole number of at least 1 before the '/', " +
                         std::string(kRateExample) + " (to refuse a source, use `block`)");
    }
    if (count > kMaxRatePerSecond * (unit->period_ns / kNanosPerSecond)) {
        throw UsageError(option + " " + quoted + " is faster than the highest rate, 1000000/s; " +
                         std::string(kRateExample));
    }
    return unit->period_ns / count;
}

uint64_t parse_message_rate(std::string_view text) {
    uint64_t interval = parse_rate(text, "--messages");
    if (interval > FENCE_PACE_MAX_INTERVAL_NS) {
        throw UsageError("--messages '" + std::string(text) +
                         "' is slower than the slowest pace, 6/min: a reply held longer would approach senders' "
                         "data timeouts (and a timed-out message arrives twice); to stop a sender, use `block`");
    }
    if (interval < kNanosPerSecond / kMaxMessagesPerSecond) {
        throw UsageError("--messages '" + std::string(text) + "' is faster than the fastest pace, " +
                         std::to_string(kMaxMessagesPerSecond) + "/s");
    }
    return interval;
}

std::string format_rate(uint64_t interval_ns) {
    for (const auto& unit : kUnits) {
        uint64_t count = unit.period_ns / interval_ns;
        if (count > 0 && unit.period_ns / count == interval_ns)
            return std::to_string(count) + "/" + std::string(unit.name);
    }
    return std::to_string(std::max<uint64_t>(1, kNanosPerSecond / interval_ns)) + "/s";
}

uint32_t parse_count(std::string_view option, std::string_view text, uint32_t max) {
    uint64_t value = 0;
    if (!parse_whole(text, value) || value == 0 || value > max) {
        throw UsageError(std::string(option) + " '" + std::string(text) + "' must be a whole number from 1 to " +
                         std::to_string(max) + ", e.g. " + std::string(option) + " 5");
    }
    return static_cast<uint32_t>(value);
}

uint32_t default_burst(uint64_t interval_ns) {
    return static_cast<uint32_t>(std::clamp<uint64_t>(kNanosPerSecond / interval_ns, 1, kMaxBurst));
}

KeyScope parse_key_scope(std::string_view text) {
    if (text == "source") return {KeyScope::Kind::Source, 0};
    if (text == "rule") return {KeyScope::Kind::Rule, 0};
    uint64_t len = 0;
    if (text.size() > 1 && text.front() == '/' && parse_whole(text.substr(1), len) && len <= 128) {
        return {KeyScope::Kind::Prefix, static_cast<uint8_t>(len)};
    }
    throw UsageError("--per '" + std::string(text) +
                     "' is not a key: use source (every address its own), rule (the whole prefix shares one) or "
                     "/LEN (one per prefix of that length inside the rule), e.g. --per /24");
}

uint8_t key_prefixlen_for(const KeyScope& scope, const Cidr& rule) {
    switch (scope.kind) {
    case KeyScope::Kind::Source: return std::max(source_prefixlen(rule.family), rule.prefixlen);
    case KeyScope::Kind::Rule: return rule.prefixlen;
    case KeyScope::Kind::Prefix: break;
    }
    const unsigned max = rule.family == Family::V4 ? 32 : 128;
    const std::string len = "/" + std::to_string(scope.prefixlen);
    if (scope.prefixlen > max) {
        throw UsageError("--per " + len + " is longer than an " + (rule.family == Family::V4 ? "IPv4" : "IPv6") +
                         " address (/" + std::to_string(max) + ") for " + format_cidr(rule));
    }
    if (scope.prefixlen < rule.prefixlen) {
        throw UsageError("--per " + len + " is wider than the rule " + format_cidr(rule) +
                         ": a key cannot cover more than its rule (use --per rule for one shared key)");
    }
    return scope.prefixlen;
}

std::string describe_key(uint8_t key_prefixlen, const Cidr& rule) {
    if (key_prefixlen == source_prefixlen(rule.family)) return "source";
    if (key_prefixlen == rule.prefixlen) return "rule";
    return "/" + std::to_string(key_prefixlen);
}

}  // namespace smtpfence
