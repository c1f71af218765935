// The fence's counters, named once. `stats`, `stats --json`, `status --json`,
// `list --json`, the Prometheus metrics and the tests iterate these tables, so
// a counter added to fence_stats or rule_counters (smtpfence_abi.h) is added
// here and appears everywhere, under one name.
#pragma once

#include <iterator>

#include "smtpfence_abi.h"

namespace smtpfence {

template <typename Counters>
struct CounterField {
    const char* name;  // in `stats`, every --json and the tests
    __u64 Counters::*member;
    // Prometheus family, and the value of its `result` label when several
    // counters share one family (nullptr: a family of its own). A counter with
    // no metric is derived from others (seen = passed + dropped).
    const char* metric;
    const char* result;
    const char* help;
};

// fence_stats in the order `stats` shows them.
inline constexpr CounterField<fence_stats> kGlobalCounters[] = {
    {"seen", &fence_stats::seen, nullptr, nullptr, "Packets the XDP program ran on."},
    {"passed", &fence_stats::passed, "smtpfence_packets_total", "passed", "Packets the XDP program judged, by result."},
    {"dropped", &fence_stats::dropped, "smtpfence_packets_total", "dropped",
     "Packets the XDP program judged, by result."},
    {"smtp", &fence_stats::smtp, "smtpfence_smtp_segments_total", nullptr, "TCP segments to an SMTP port."},
    {"smtp_syn", &fence_stats::smtp_syn, "smtpfence_syn_packets_total", nullptr,
     "SYN packets (SYN without ACK) to an SMTP port, retransmissions included."},
    {"smtp_attempts", &fence_stats::smtp_attempts, "smtpfence_connection_attempts_total", nullptr,
     "SMTP connection attempts: SYNs to an SMTP port, a retransmitted SYN (same source, ports and sequence "
     "number) counted once."},
    {"dropped_attempts", &fence_stats::dropped_attempts, "smtpfence_dropped_attempts_total", nullptr,
     "SMTP connection attempts whose first SYN was dropped."},
    {"fragments", &fence_stats::fragments, "smtpfence_fragments_total", nullptr,
     "TCP fragments judged by source alone (no port visible)."},
    {"malformed", &fence_stats::malformed, "smtpfence_malformed_total", nullptr,
     "Packets with truncated or invalid headers (always passed)."},
    {"would_drop", &fence_stats::would_drop, "smtpfence_would_drop_total", nullptr,
     "Packets a dry-run rule would have dropped."},
    {"events", &fence_stats::events, "smtpfence_events_total", nullptr,
     "Drop events written to the events ring buffer."},
    {"events_suppressed", &fence_stats::events_suppressed, "smtpfence_events_suppressed_total", nullptr,
     "Drop events held back by the stream's rate limit or lost to a full ring buffer."},
    {"untracked_syns", &fence_stats::untracked_syns, "smtpfence_untracked_syn_packets_total", nullptr,
     "SMTP SYN packets of sources due a per-source entry that the flood guard refused: missing from `top`."},
};

// rule_counters in the order `stats` shows them: each packet count next to
// its count of connection attempts.
inline constexpr CounterField<rule_counters> kRuleCounters[] = {
    {"matched", &rule_counters::matched, "smtpfence_rule_matched_total", nullptr,
     "SMTP SYN packets (retransmissions included) and port-less fragments the rule decided."},
    {"attempts", &rule_counters::attempts, "smtpfence_rule_connection_attempts_total", nullptr,
     "SMTP connection attempts the rule decided (a retransmitted SYN counts once)."},
    {"dropped", &rule_counters::dropped, "smtpfence_rule_dropped_total", nullptr,
     "Packets the rule dropped, for any reason."},
    {"dropped_attempts", &rule_counters::dropped_attempts, "smtpfence_rule_dropped_attempts_total", nullptr,
     "Connection attempts whose first SYN the rule dropped."},
    {"rate_dropped", &rule_counters::rate_dropped, "smtpfence_rule_rate_dropped_total", nullptr,
     "SYN packets a limit rule dropped because the key exceeded its rate."},
    {"conns_dropped", &rule_counters::conns_dropped, "smtpfence_rule_conns_dropped_total", nullptr,
     "SYN packets a limit rule dropped because the key had its maximum of open connections."},
    {"would_drop", &rule_counters::would_drop, "smtpfence_rule_would_drop_total", nullptr,
     "Packets a dry-run rule would have dropped (none were)."},
    {"would_drop_attempts", &rule_counters::would_drop_attempts, "smtpfence_rule_would_drop_attempts_total", nullptr,
     "Connection attempts whose first SYN a dry-run rule would have dropped (none were)."},
};

// Every member of the two structs is in its table: a counter added to the ABI
// and forgotten here fails to build.
static_assert(std::size(kGlobalCounters) * sizeof(__u64) == sizeof(fence_stats));
static_assert(std::size(kRuleCounters) * sizeof(__u64) == sizeof(rule_counters));

}  // namespace smtpfence
