// How `stats`, `top` and `events` look: a redrawn screen for terminals, one
// line per interval for pipes and logs, and JSON with the same fields.
// Timestamps of the data path are CLOCK_MONOTONIC; every function here takes
// the offset to wall-clock time (monotonic_to_unix_offset_ns()) so that output is
// reproducible.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fence/observe.h"

namespace smtpfence {

// "passed", "blocked", "rate_dropped", "conns_dropped", "would_drop".
const char* verdict_name(uint8_t verdict);

// "2026-11-26T02:10:00Z" for a CLOCK_MONOTONIC timestamp.
std::string format_monotonic(uint64_t monotonic_ns, int64_t unix_offset_ns);
// "12.0".
std::string format_per_second(double rate);

// `stats`: the table (rates when `rates` is given), one line for a pipe, JSON.
std::string stats_text(const StatsSnapshot& snap, const StatsRates* rates, int64_t unix_offset_ns);
std::string stats_line(const StatsSnapshot& snap, const StatsRates& rates, int64_t unix_offset_ns);
nlohmann::ordered_json stats_json(const StatsSnapshot& snap, const StatsRates* rates, int64_t unix_offset_ns);

// "block 203.0.113.0/24", with " (dry run)" or " (removed)".
std::string describe_rule_ref(const RuleRef& rule);

std::string top_text(const TopView& view, int64_t unix_offset_ns);
std::string top_line(const TopView& view, int64_t unix_offset_ns);
nlohmann::ordered_json top_json(const TopView& view, int64_t unix_offset_ns);

// "2026-11-26T02:10:00Z first drop: 203.0.113.10 -> port 25 by block 203.0.113.0/24 (rule 7)".
// `list`: the name of the imported list whose entry dropped it, or empty (a rule).
std::string event_text(const fence_event& event, int64_t unix_offset_ns, std::string_view list = {});
nlohmann::ordered_json event_json(const fence_event& event, int64_t unix_offset_ns, std::string_view list = {});
// Events the kernel held back since the last report (`count`) and ever (`total`).
std::string suppressed_text(uint64_t count, uint64_t total, uint64_t now_unix_ns);
nlohmann::ordered_json suppressed_json(uint64_t count, uint64_t total, uint64_t now_unix_ns);

}  // namespace smtpfence
