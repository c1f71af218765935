// Watching the fence work: snapshots of its counters and of the per-source
// accounting, rates between two snapshots, and the drop-event stream. Nothing
// here scans packets: the data path counts, userspace reads and subtracts.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "bpf/map.h"
#include "fence/counters.h"
#include "fence/rule_store.h"
#include "smtpfence_abi.h"
#include "text/durations.h"

struct ring_buffer;  // libbpf

namespace smtpfence {

// The prefix of length `prefixlen` that holds `addr` (network byte order):
// a rule, named by a source it matched and its prefix length.
Cidr masked_cidr(Family family, const uint8_t* addr, uint8_t prefixlen);

// Per second from `before` to `after` over `seconds`. A counter that went
// down was reset (its rule changed action, or the LRU forgot a source) and
// counts from zero.
double rate_per_second(uint64_t before, uint64_t after, double seconds);

// ------------------------------------------------------------------ stats

struct StatsSnapshot {
    uint64_t taken_ns = 0;  // CLOCK_MONOTONIC
    fence_stats global{};
    std::vector<Rule> rules;
};

StatsSnapshot take_stats(const Fence& fence);

// One rule's rates; empty when the rule was not in the earlier snapshot.
struct RuleRates {
    std::array<double, std::size(kRuleCounters)> per_second{};
};

// Rates between two snapshots, in the order of kGlobalCounters and of
// `after.rules` (a rule is matched by its prefix).
struct StatsRates {
    double interval_s = 0;
    std::array<double, std::size(kGlobalCounters)> global{};
    std::vector<std::optional<RuleRates>> rules;
};

StatsRates stats_rates(const StatsSnapshot& before, const StatsSnapshot& after);

// ------------------------------------------------------------------ sources

struct SourceEntry {
    source_key key{};
    source_stats stats{};
};

struct SourceSnapshot {
    uint64_t taken_ns = 0;  // CLOCK_MONOTONIC
    std::vector<SourceEntry> entries;
};

// The pinned per-source accounting (`sources`, an LRU map of (source, port)).
class SourceTable {
public:
    explicit SourceTable(const std::string& pin_dir);
    SourceSnapshot snapshot() const;
    uint32_t capacity() const { return map_.max_entries(); }

private:
    MapRef map_;
};

// What `top` shows of the rule that decided a source's last attempt.
struct RuleRef {
    uint32_t rule_id = 0;
    Action action = Action::Block;
    Cidr cidr;  // the rule's prefix (the source masked to it); a list's entry
    std::string list;  // the imported list whose entry this is, or empty
    bool dry_run = false;
    bool removed = false;  // no rule with this id exists any more
};

// One source: a (source, port) entry, or all ports of a source together.
struct TopRow {
    Family family = Family::V4;
    std::array<uint8_t, 16> addr{};
    std::vector<uint16_t> ports;    // ascending
    double attempts_per_s = 0;      // connection attempts, over the sampling interval
    double syn_packets_per_s = 0;   // SYN packets (retransmissions included), likewise
    uint64_t attempts = 0;          // totals since first seen (or forgotten by the LRU)
    uint64_t dropped_attempts = 0;  // attempts whose first SYN was dropped
    uint64_t syn_packets = 0;
    // The verdicts, per SYN packet:
    uint64_t passed = 0;
    uint64_t blocked = 0;
    uint64_t limited = 0;
    uint64_t would_drop = 0;
    uint64_t first_seen_ns = 0;  // CLOCK_MONOTONIC
    uint64_t last_seen_ns = 0;
    uint8_t last_verdict = FENCE_VERDICT_PASSED;  // enum fence_verdict
    std::optional<RuleRef> last_rule;             // none: no rule decided the last attempt
};

struct TopQuery {
    size_t limit = 10;             // rows shown
    std::optional<uint16_t> port;  // only this port; else a source's ports are added up
};

struct TopView {
    double interval_s = 0;
    uint64_t taken_ns = 0;  // CLOCK_MONOTONIC of the second sample
    std::optional<uint16_t> port;
    size_t sources_tracked = 0;  // entries in the map, all ports
    uint32_t sources_capacity = 0;
    std::vector<TopRow> rows;  // busiest first
};

// The busiest sources between two samples: by connection attempts (not SYN
// packets) per second over the interval, then by total attempts, then by
// address. `rules` are the rules in force and `list_names` the lists' names
// by rule id (FenceLists::names_by_rule_id), to name what decided each
// source's last attempt.
TopView compute_top(const SourceSnapshot& before, const SourceSnapshot& after, const std::vector<Rule>& rules,
                    const TopQuery& query, uint32_t capacity, const std::map<uint32_t, std::string>& list_names = {});

// ------------------------------------------------------------------ events

// The events ring buffer. It has one consumer position, shared by every
// reader: two readers at once split the stream between them.
class EventStream {
public:
    explicit EventStream(const std::string& pin_dir);
    ~EventStream();
    EventStream(const EventStream&) = delete;
    EventStream& operator=(const EventStream&) = delete;

    // Readable (for poll) when events are pending.
    int poll_fd() const;
    // Every event pending now, oldest first; consumes them.
    std::vector<fence_event> drain();

private:
    UniqueFd map_fd_;
    ::ring_buffer* ring_ = nullptr;
    std::vector<fence_event> pending_;
};

}  // namespace smtpfence
