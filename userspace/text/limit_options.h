// The vocabulary of `limit`: rates as admins write them (5/s, 30/min, 100/h),
// bursts, connection caps and the key a limit is counted per.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "text/cidr.h"

namespace smtpfence {

inline constexpr uint64_t kNanosPerSecond = 1'000'000'000;
// Bounds that keep the limiter's integer arithmetic exact (see bpf/gcra.h).
inline constexpr uint64_t kMaxRatePerSecond = 1'000'000;
inline constexpr uint32_t kMaxBurst = 1'000'000;
inline constexpr uint32_t kMaxConns = 1'000'000;

// Parses "N/s", "N/min" or "N/h" (N a positive whole number, at most 1,000,000
// per second) into the interval between connections, in nanoseconds, rounded
// down: a rate that does not divide its unit evenly runs at most 1 ns per
// connection fast. Throws UsageError with an example of a valid rate.
// `option` names the option in errors.
uint64_t parse_rate(std::string_view text, std::string_view option = "--rate");

// --messages: a rate from 6/min (FENCE_PACE_MAX_INTERVAL_NS) to 1000/s.
uint64_t parse_message_rate(std::string_view text);
inline constexpr uint64_t kMaxMessagesPerSecond = 1000;

// The shortest exact "N/unit" for an interval made by parse_rate ("5/s" for
// 300/min), else "N/s" rounded.
std::string format_rate(uint64_t interval_ns);

// A whole number from 1 to `max`, for --burst and --max-conns; `option` names
// it in the error.
uint32_t parse_count(std::string_view option, std::string_view text, uint32_t max);

// The burst used when --burst is not given: one second's worth of the rate,
// at least 1.
uint32_t default_burst(uint64_t interval_ns);

// What --per says: "source", "rule" or "/LEN".
struct KeyScope {
    enum class Kind { Source, Rule, Prefix } kind = Kind::Source;
    uint8_t prefixlen = 0;  // Kind::Prefix
};

KeyScope parse_key_scope(std::string_view text);

// The key length a scope means for a rule's prefix: a source is /32 for IPv4
// and /64 for IPv6 (a host owns a /64 and rotates inside it), or the rule's
// own length when the rule is narrower than that. Throws
// UsageError when /LEN does not fit the rule (wider than it, or longer than
// the family's addresses).
uint8_t key_prefixlen_for(const KeyScope& scope, const Cidr& rule);

// "source", "rule" or "/LEN" for a rule's key length.
std::string describe_key(uint8_t key_prefixlen, const Cidr& rule);

}  // namespace smtpfence
