// What the XDP program does with rules that step aside, and what it records
// about sources, through bpf_prog_test_run_opts on crafted frames:
// - an expired rule (its deadline is in the kernel: no smtpfence process has to
//   run) and a dry-run rule let the next broader rule decide;
// - a dry-run rule counts the attempts it would drop, drops none;
// - per-source accounting in the `sources` LRU (attempts and verdicts per
//   source and port, the deciding rule);
// - drop events: one per source's first drop by a rule, the stream held to its
//   kernel rate limit.
// Rules are written straight into the tries, so that each test states every
// field the data path reads. Needs root; skipped otherwise.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bpf/map.h"
#include "bpf/pin_dir.h"
#include "bpf_test_support.h"
#include "text/cidr.h"
#include "smtpfence_abi.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;

namespace {

uint64_t boot_ns() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint64_t kHour = 3600ull * 1000000000ull;

struct RuleFields {
    Action action = Action::Block;
    uint8_t flags = 0;
    uint64_t expires_ns = 0;
    uint64_t interval_ns = 0;  // limit
    uint32_t burst = 1;        // limit
};

class LayerTest : public PinnedFenceTest {
protected:
    void SetUp() override {
        PinnedFenceTest::SetUp();
        if (IsSkipped()) return;
        auto map = [&](const char* name) { return MapRef(open_pinned(pin_dir() + "/" + name), name); };
        rules_v4_ = map(FENCE_MAP_RULES_V4);
        rules_v6_ = map(FENCE_MAP_RULES_V6);
        counters_ = map(FENCE_MAP_RULE_COUNTERS);
        sources_ = map(FENCE_MAP_SOURCES);
        events_ = map(FENCE_MAP_EVENTS);
    }

    // Writes a rule as the data path sees it; returns its rule id (= slot + 1).
    uint32_t put(const std::string& text, const RuleFields& f) {
        Cidr cidr = parse_cidr(text).cidr;
        rule_value v{};
        v.slot = next_slot_++;
        v.rule_id = v.slot + 1;
        v.action = static_cast<uint8_t>(f.action);
        v.prefixlen = cidr.prefixlen;
        v.key_prefixlen = cidr.family == Family::V4 ? 32 : 64;
        v.flags = f.flags;
        v.expires_ns = f.expires_ns;
        if (f.action == Action::Limit) {
            v.interval_ns = f.interval_ns;
            v.tolerance_ns = f.interval_ns * (f.burst - 1);
        }
        std::vector<rule_counters> zeros(possible_cpus());
        counters_.update(&v.slot, zeros.data());
        if (cidr.family == Family::V4) {
            rule_key_v4 key{cidr.prefixlen, {}};
            std::memcpy(key.addr, cidr.addr.data(), 4);
            rules_v4_.update(&key, &v);
        } else {
            rule_key_v6 key{cidr.prefixlen, {}};
            std::memcpy(key.addr, cidr.addr.data(), 16);
            rules_v6_.update(&key, &v);
        }
        return v.rule_id;
    }

    rule_counters counts(uint32_t rule_id) const {
        uint32_t slot = rule_id - 1;
        std::vector<rule_counters> per_cpu(possible_cpus());
        rule_counters sum{};
        if (!counters_.lookup(&slot, per_cpu.data())) return sum;
        for (const auto& c : per_cpu) {
            sum.matched += c.matched;
            sum.dropped += c.dropped;
            sum.rate_dropped += c.rate_dropped;
            sum.conns_dropped += c.conns_dropped;
            sum.would_drop += c.would_drop;
            sum.attempts += c.attempts;
            sum.dropped_attempts += c.dropped_attempts;
            sum.would_drop_attempts += c.would_drop_attempts;
        }
        return sum;
    }

    // "P" or "D" per SYN from `src`.
    std::string syns(const std::string& src, int n, uint16_t port = 25) {
        std::string out;
        for (int i = 0; i < n; ++i) out += run_raw(syn_from(src, port)) == XDP_DROP ? 'D' : 'P';
        return out;
    }

    bool source(const std::string& src, uint16_t port, source_stats& out) const {
        Cidr host = parse_cidr(src).cidr;
        source_key key{};
        key.family = host.family == Family::V4 ? 4 : 6;
        key.port = port;
        std::memcpy(key.addr, host.addr.data(), host.family == Family::V4 ? 4 : 16);
        return sources_.lookup(&key, &out);
    }

    // Every event pending in the ring buffer, consumed.
    std::vector<fence_event> drain_events() const {
        std::vector<fence_event> got;
        auto on_event = [](void* ctx, void* data, size_t size) -> int {
            auto* out = static_cast<std::vector<fence_event>*>(ctx);
            fence_event ev{};
            std::memcpy(&ev, data, std::min(size, sizeof ev));
            out->push_back(ev);
            return 0;
        };
        ring_buffer* rb = ring_buffer__new(events_.fd(), on_event, &got, nullptr);
        EXPECT_NE(rb, nullptr);
        if (!rb) return got;
        ring_buffer__consume(rb);
        ring_buffer__free(rb);
        return got;
    }

    MapRef rules_v4_, rules_v6_, counters_, sources_, events_;
    uint32_t next_slot_ = 0;
};

using Expiry = LayerTest;

TEST_F(Expiry, ARuleAppliesUntilItsDeadlineOnly) {
    put("203.0.113.0/24", {.expires_ns = boot_ns() + kHour});
    put("198.51.100.0/24", {.expires_ns = boot_ns() - 1});
    EXPECT_EQ(syns("203.0.113.7", 2), "DD");
    EXPECT_EQ(syns("198.51.100.7", 2), "PP") << "an expired block drops nothing";
}

TEST_F(Expiry, TheDeadlinePassesInTheKernel) {
    // Nothing in userspace acts at the deadline: the program's own clock ends the block.
    const uint64_t deadline = boot_ns() + 300'000'000;
    put("203.0.113.0/24", {.expires_ns = deadline});
    EXPECT_EQ(syns("203.0.113.7", 1), "D");
    while (boot_ns() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(syns("203.0.113.7", 1), "P");
}

TEST_F(Expiry, AnExpiredAllowFallsBackToTheBlockAroundIt) {
    put("203.0.113.0/24", {});
    uint32_t allow = put("203.0.113.7/32", {.action = Action::Allow, .expires_ns = boot_ns() - 1});
    uint32_t live_allow = put("203.0.113.8/32", {.action = Action::Allow, .expires_ns = boot_ns() + kHour});
    EXPECT_EQ(syns("203.0.113.7", 2), "DD");
    EXPECT_EQ(syns("203.0.113.8", 2), "PP");
    EXPECT_EQ(counts(allow).matched, 0u) << "an expired rule counts nothing";
    EXPECT_EQ(counts(live_allow).matched, 2u);
}

TEST_F(Expiry, LayersOfExpiredRulesAreSkippedToTheLiveOne) {
    uint32_t block = put("2001:db8:bad::/48", {});
    for (const char* allow : {"2001:db8:bad::/64", "2001:db8:bad::/96", "2001:db8:bad::1/128"}) {
        put(allow, {.action = Action::Allow, .expires_ns = boot_ns() - 1});
    }
    EXPECT_EQ(syns("2001:db8:bad::1", 1), "D");
    EXPECT_EQ(counts(block).dropped, 1u);
}

TEST_F(Expiry, AChainDeeperThanTheWalkFailsOpen) {
    // Documented bound: past FENCE_MAX_RULE_LAYERS rules that step aside, the
    // source is judged as if no rule covered it (never a drop).
    put("203.0.113.0/24", {});
    for (int len = 32; len > 32 - FENCE_MAX_RULE_LAYERS; --len) {
        Cidr c = parse_cidr("203.0.113.0/" + std::to_string(len)).cidr;
        put(format_cidr(c), {.action = Action::Block, .expires_ns = boot_ns() - 1});
    }
    EXPECT_EQ(syns("203.0.113.0", 1), "P");
}

using DryRun = LayerTest;

TEST_F(DryRun, CountsWhatItWouldDropAndDropsNothing) {
    uint32_t dry = put("203.0.113.0/24", {.flags = FENCE_RULE_DRY_RUN});
    EXPECT_EQ(syns("203.0.113.7", 3), "PPP");
    rule_counters c = counts(dry);
    EXPECT_EQ(c.matched, 3u);
    EXPECT_EQ(c.would_drop, 3u);
    EXPECT_EQ(c.dropped, 0u);
    EXPECT_EQ(fence().counters().would_drop, 3u);
    EXPECT_EQ(fence().counters().dropped, 0u);
}

TEST_F(DryRun, TheBroaderLiveRuleStillDecides) {
    // A dry-run rule inside a live block must not act as a hole in it.
    uint32_t live = put("203.0.113.0/24", {});
    uint32_t dry = put("203.0.113.0/28", {.flags = FENCE_RULE_DRY_RUN});
    EXPECT_EQ(syns("203.0.113.7", 2), "DD");
    EXPECT_EQ(counts(live).dropped, 2u);
    EXPECT_EQ(counts(dry).would_drop, 2u);
}

TEST_F(DryRun, InsideAnAllowOnlyCounts) {
    put("203.0.113.0/24", {.action = Action::Allow});
    uint32_t dry = put("203.0.113.0/28", {.flags = FENCE_RULE_DRY_RUN});
    EXPECT_EQ(syns("203.0.113.7", 2), "PP");
    EXPECT_EQ(counts(dry).would_drop, 2u);
}

TEST_F(DryRun, ADryRunLimitCountsTheAttemptsOverItsRate) {
    uint32_t dry = put("198.51.100.0/24",
                       {.action = Action::Limit, .flags = FENCE_RULE_DRY_RUN, .interval_ns = kHour, .burst = 2});
    EXPECT_EQ(syns("198.51.100.7", 5), "PPPPP");
    rule_counters c = counts(dry);
    EXPECT_EQ(c.matched, 5u);
    EXPECT_EQ(c.would_drop, 3u) << "burst 2 admits two, the rest would have been dropped";
    EXPECT_EQ(c.rate_dropped, 0u);
    EXPECT_EQ(c.attempts, 1u) << "five identical SYNs are one attempt";
    EXPECT_EQ(c.would_drop_attempts, 0u) << "whose first SYN the limit would have admitted";
}

using Sources = LayerTest;

TEST_F(Sources, AttemptsAndVerdictsPerSourceAndPort) {
    uint32_t block = put("203.0.113.0/24", {});
    EXPECT_EQ(syns("203.0.113.10", 4, 25), "DDDD");
    EXPECT_EQ(syns("198.51.100.20", 3, 587), "PPP");
    EXPECT_EQ(syns("198.51.100.20", 1, 25), "P");
    run_raw(segment_from("203.0.113.10", kAck, 25));  // not an attempt
    run_raw(syn_from("203.0.113.10", 22));            // not SMTP

    // The frames of syns() are identical (same source port and sequence
    // number): one connection attempt and its retransmissions.
    source_stats a{};
    ASSERT_TRUE(source("203.0.113.10", 25, a));
    EXPECT_EQ(a.syn_packets, 4u);
    EXPECT_EQ(a.attempts, 1u);
    EXPECT_EQ(a.dropped_attempts, 1u);
    EXPECT_EQ(a.blocked, 4u);
    EXPECT_EQ(a.passed, 0u);
    EXPECT_EQ(a.last_verdict, FENCE_VERDICT_BLOCKED);
    EXPECT_EQ(a.last_rule_id, block);
    EXPECT_EQ(a.last_action, FENCE_ACTION_BLOCK);
    EXPECT_EQ(a.last_prefixlen, 24);
    EXPECT_LE(a.first_seen_ns, a.last_seen_ns);
    EXPECT_GT(a.first_seen_ns, 0u);

    source_stats b{};
    ASSERT_TRUE(source("198.51.100.20", 587, b));
    EXPECT_EQ(b.syn_packets, 3u);
    EXPECT_EQ(b.attempts, 1u);
    EXPECT_EQ(b.dropped_attempts, 0u);
    EXPECT_EQ(b.passed, 3u);
    EXPECT_EQ(b.last_rule_id, 0u) << "no rule covers it";
    ASSERT_TRUE(source("198.51.100.20", 25, b));
    EXPECT_EQ(b.syn_packets, 1u);
    EXPECT_EQ(b.attempts, 1u) << "another destination port is another attempt";

    source_stats none{};
    EXPECT_FALSE(source("203.0.113.10", 22, none)) << "only SMTP ports are accounted";
    EXPECT_EQ(sources_.keys(sizeof(source_key)).size(), 3u);
}

TEST_F(Sources, Ipv6AndRateDrops) {
    uint32_t limit = put("2001:db8:1::/48", {.action = Action::Limit, .interval_ns = kHour, .burst = 1});
    EXPECT_EQ(syns("2001:db8:1::5", 3), "PDD");
    source_stats s{};
    ASSERT_TRUE(source("2001:db8:1::5", 25, s));
    EXPECT_EQ(s.syn_packets, 3u);
    EXPECT_EQ(s.attempts, 1u);
    EXPECT_EQ(s.dropped_attempts, 0u) << "the attempt's first SYN was admitted";
    EXPECT_EQ(s.passed, 1u);
    EXPECT_EQ(s.limited, 2u);
    EXPECT_EQ(s.last_verdict, FENCE_VERDICT_RATE);
    EXPECT_EQ(s.last_rule_id, limit);
}

using Events = LayerTest;

TEST_F(Events, OneEventForASourcesFirstDropNotOnePerSyn) {
    uint32_t block = put("203.0.113.0/24", {});
    EXPECT_EQ(syns("203.0.113.10", 40), std::string(40, 'D'));
    EXPECT_EQ(syns("198.51.100.20", 10), std::string(10, 'P'));
    auto events = drain_events();
    ASSERT_EQ(events.size(), 1u);
    const fence_event& ev = events[0];
    EXPECT_EQ(ev.rule_id, block);
    EXPECT_EQ(ev.family, 4);
    EXPECT_EQ(ev.verdict, FENCE_VERDICT_BLOCKED);
    EXPECT_EQ(ev.action, FENCE_ACTION_BLOCK);
    EXPECT_EQ(ev.prefixlen, 24);
    EXPECT_EQ(ev.port, 25);
    EXPECT_EQ(format_address(Family::V4, {ev.addr[0], ev.addr[1], ev.addr[2], ev.addr[3]}), "203.0.113.10");
    EXPECT_EQ(fence().counters().events, 1u);
}

TEST_F(Events, ANewRuleGivesTheSourceANewEvent) {
    put("203.0.113.0/24", {});
    syns("203.0.113.10", 3);
    // Block turned into a limit: a new rule id, so its first drop is news.
    uint32_t limit = put("203.0.113.0/24", {.action = Action::Limit, .interval_ns = kHour, .burst = 1});
    EXPECT_EQ(syns("203.0.113.10", 3), "PDD");
    auto events = drain_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].rule_id, limit);
    EXPECT_EQ(events[1].verdict, FENCE_VERDICT_RATE);
}

TEST_F(Events, DryRunDropsAreEventsToo) {
    uint32_t dry = put("203.0.113.0/24", {.flags = FENCE_RULE_DRY_RUN});
    EXPECT_EQ(syns("203.0.113.10", 5), "PPPPP");
    auto events = drain_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].rule_id, dry);
    EXPECT_EQ(events[0].verdict, FENCE_VERDICT_WOULD_DROP);
}

TEST_F(Events, AFloodOfSourcesCannotFloodTheStream) {
    put("203.0.113.0/24", {});
    put("198.51.100.0/24", {});
    constexpr int kSources = 500;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kSources; ++i) {
        std::string src = (i < 250 ? "203.0.113." : "198.51.100.") + std::to_string(i % 250 + 1);
        ASSERT_EQ(syns(src, 1), "D");
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto events = drain_events();
    fence_stats st = fence().counters();
    EXPECT_EQ(st.events, events.size());
    EXPECT_EQ(st.events + st.events_suppressed, static_cast<uint64_t>(kSources))
        << "every first drop is either an event or counted as held back";
    EXPECT_LE(events.size(), FENCE_EVENT_BURST + FENCE_EVENT_RATE * elapsed + 1)
        << "the stream's burst plus its refill over " << elapsed << " s";
    EXPECT_GE(events.size(), static_cast<size_t>(FENCE_EVENT_BURST));
}

}  // namespace
