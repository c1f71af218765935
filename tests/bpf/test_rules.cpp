// How the XDP program finds the rule that judges a source, on crafted frames
// through bpf_prog_test_run_opts: the lookup (block, allow inside it,
// unlisted), the longest prefix deciding between block, allow and limit, and
// the rules that step aside for the next broader one: an expired rule (its
// deadline is in the kernel: no smtpfence process has to run) and a dry-run
// rule, which counts what it would drop and drops nothing. Needs root;
// skipped otherwise.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "bpf_test_support.h"
#include "limit_fixture.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"
#include "trie_rule_fixture.h"
#include "verdict_fixture.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;

namespace {

// ---------------------------------------------------------------------------
// Lookup: a SYN to an SMTP port is judged by its source

TEST_F(Verdicts, Ipv4SynToEverySmtpPortIsJudgedBySource) {
    for (uint16_t port : {25, 465, 587}) {
        SCOPED_TRACE("port " + std::to_string(port));
        expect_all({
            {"blocked 203.0.113.5", syn4("203.0.113.5", port), kDrop, kSynDropped, blocked_by(kBlock4)},
            {"blocked 203.0.113.0", syn4("203.0.113.0", port), kDrop, kSynDropped, blocked_by(kBlock4)},
            {"blocked 203.0.113.255", syn4("203.0.113.255", port), kDrop, kSynDropped, blocked_by(kBlock4)},
            {"allowed inside the block", syn4("203.0.113.20", port), kPass, kSynPassed, allowed_by(kAllow4)},
            {"unlisted 198.51.100.1", syn4("198.51.100.1", port), kPass, kSynPassed},
            {"unlisted neighbour 203.0.114.5", syn4("203.0.114.5", port), kPass, kSynPassed},
        });
    }
}

TEST_F(Verdicts, Ipv6SynIsJudgedBySource) {
    for (uint16_t port : {25, 465, 587}) {
        SCOPED_TRACE("port " + std::to_string(port));
        expect_all({
            {"blocked", syn6("2001:db8:bad::5", port), kDrop, kSynDropped, blocked_by(kBlock6)},
            {"blocked, far end of the /48", syn6("2001:db8:bad:ffff:ffff:ffff:ffff:ffff", port), kDrop, kSynDropped,
             blocked_by(kBlock6)},
            {"allowed inside the block", syn6("2001:db8:bad::20", port), kPass, kSynPassed, allowed_by(kAllow6)},
            {"unlisted", syn6("2001:db8:1::1", port), kPass, kSynPassed},
            {"unlisted neighbour /48", syn6("2001:db8:bae::5", port), kPass, kSynPassed},
        });
    }
    expect({"blocked to 22", syn6("2001:db8:bad::5", 22), kPass, kIgnored});
}

// ---------------------------------------------------------------------------
// Precedence: the longest prefix decides between block, allow and limit.

TEST_F(Verdicts, LongestPrefixDecides) {
    add("198.51.100.0/24", Action::Block);
    add("198.51.100.0/25", Action::Allow);
    add("198.51.100.64/26", Action::Block);
    expect_all({
        {".70 (block /26)", syn4("198.51.100.70"), kDrop, kSynDropped, blocked_by("198.51.100.64/26")},
        {".10 (allow /25)", syn4("198.51.100.10"), kPass, kSynPassed, allowed_by("198.51.100.0/25")},
        {".200 (block /24)", syn4("198.51.100.200"), kDrop, kSynDropped, blocked_by("198.51.100.0/24")},
        {".127 (block /26, last address)", syn4("198.51.100.127"), kDrop, kSynDropped, blocked_by("198.51.100.64/26")},
        {".128 (block /24)", syn4("198.51.100.128"), kDrop, kSynDropped, blocked_by("198.51.100.0/24")},
        {".63 (allow /25)", syn4("198.51.100.63"), kPass, kSynPassed, allowed_by("198.51.100.0/25")},
    });

    ASSERT_TRUE(fence().remove_rule(parse_cidr("198.51.100.64/26").cidr));
    expect({".70 after removing the /26", syn4("198.51.100.70"), kPass, kSynPassed, allowed_by("198.51.100.0/25")});

    fence().add_rule(parse_cidr("198.51.100.0/25").cidr, Action::Block, "now blocked", "gtest");
    expect(
        {".10 after the /25 became block", syn4("198.51.100.10"), kDrop, kSynDropped, blocked_by("198.51.100.0/25")});
    expect(
        {".70 after the /25 became block", syn4("198.51.100.70"), kDrop, kSynDropped, blocked_by("198.51.100.0/25")});
    // Changing the action reset the /25's counters: only the two drops since.
    EXPECT_EQ(rule_counters()["198.51.100.0/25"], (RuleHits{2, 2}));
    EXPECT_EQ(rule_counters()["198.51.100.0/24"], (RuleHits{2, 2}));
}

TEST_F(Verdicts, Ipv6LongestPrefixDecides) {
    add("2001:db8:bad:1::/64", Action::Allow);
    add("2001:db8:bad:1:ff00::/72", Action::Block);
    expect_all({
        {"in the /72 block", syn6("2001:db8:bad:1:ff00::5"), kDrop, kSynDropped,
         blocked_by("2001:db8:bad:1:ff00::/72")},
        {"in the /64 allow", syn6("2001:db8:bad:1::5"), kPass, kSynPassed, allowed_by("2001:db8:bad:1::/64")},
        {"in the /48 block", syn6("2001:db8:bad:2::5"), kDrop, kSynDropped, blocked_by(kBlock6)},
    });
}

TEST_F(LimitVerdicts, AllowInsideALimitIsNeverMetered) {
    add_limit(kNet4, "5/s", 1);
    add("203.0.113.20/32", Action::Allow);
    EXPECT_EQ(syns("203.0.113.20", 10), repeat('P', 10));
    EXPECT_EQ(syns("203.0.113.10", 3), "PDD");
    EXPECT_EQ(syns("203.0.113.20", 2), "PP");
    EXPECT_EQ(counts("203.0.113.20/32"), (RuleCounts{.matched = 12}));
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 3, .dropped = 2, .rate_dropped = 2, .tracked_keys = 1}));
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE), Keys{expected_key(rule_id(kNet4), "203.0.113.10", 32)});
    EXPECT_EQ(global(), (GlobalCounts{.seen = 15, .passed = 13, .dropped = 2, .smtp = 15, .smtp_syn = 15}));
}

TEST_F(LimitVerdicts, BlockInsideALimitDrops) {
    add_limit(kNet4, "5/s", 2);
    add("203.0.113.64/26", Action::Block);
    EXPECT_EQ(syns("203.0.113.70", 3), "DDD");
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD");
    EXPECT_EQ(syns("203.0.113.127", 1), "D");
    EXPECT_EQ(syns("203.0.113.128", 3), "PPD");
    EXPECT_EQ(counts("203.0.113.64/26"), (RuleCounts{.matched = 4, .dropped = 4}));
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 6, .dropped = 2, .rate_dropped = 2, .tracked_keys = 2}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 10, .passed = 4, .dropped = 6, .smtp = 10, .smtp_syn = 10}));
}

TEST_F(LimitVerdicts, LimitInsideABlockMeters) {
    add("198.51.100.0/24", Action::Block);
    add_limit("198.51.100.0/28", "5/s", 2);
    EXPECT_EQ(syns("198.51.100.5", 3), "PPD");
    EXPECT_EQ(syns("198.51.100.15", 2), "PP");
    EXPECT_EQ(syns("198.51.100.16", 2), "DD");
    EXPECT_EQ(syns("198.51.100.200", 1), "D");
    EXPECT_EQ(counts("198.51.100.0/24"), (RuleCounts{.matched = 3, .dropped = 3}));
    EXPECT_EQ(counts("198.51.100.0/28"),
              (RuleCounts{.matched = 5, .dropped = 1, .rate_dropped = 1, .tracked_keys = 2}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 8, .passed = 4, .dropped = 4, .smtp = 8, .smtp_syn = 8}));
}

TEST_F(LimitVerdicts, Ipv6PrecedenceMatchesIpv4) {
    add_limit(kNet6, "5/s", 1);
    add("2001:db8:1:bad::/64", Action::Block);
    add("2001:db8:1:600d::25/128", Action::Allow);
    EXPECT_EQ(syns("2001:db8:1:bad::1", 2), "DD");
    EXPECT_EQ(syns("2001:db8:1:600d::25", 3), "PPP");
    EXPECT_EQ(syns("2001:db8:1:600d::26", 2), "PD") << "not the allowed host: metered by the /48";
    EXPECT_EQ(counts("2001:db8:1:bad::/64"), (RuleCounts{.matched = 2, .dropped = 2}));
    EXPECT_EQ(counts("2001:db8:1:600d::25/128"), (RuleCounts{.matched = 3}));
    EXPECT_EQ(counts(kNet6), (RuleCounts{.matched = 2, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));
}

// ---------------------------------------------------------------------------
// Expiry: an expired rule lets the next broader rule decide

using Expiry = TrieRuleTest;

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

// ---------------------------------------------------------------------------
// Dry run: counts what the rule would drop, and lets the next broader rule decide

using DryRun = TrieRuleTest;

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

TEST_F(DryRun, OnlyTheLongestDryRunCounts) {
    // A dry-run block inside a dry-run limit inside a live allow: the block
    // judges, the limit behind it counts nothing and charges no key, so once
    // enforced it starts the source with a full burst (README, "Dry run").
    const uint32_t allow = put("198.51.0.0/16", {.action = Action::Allow});
    const uint32_t limit = put("198.51.100.0/24", {.action = Action::Limit, .flags = FENCE_RULE_DRY_RUN,
                                                   .interval_ns = kHour, .burst = 2});
    const uint32_t block = put("198.51.100.0/28", {.flags = FENCE_RULE_DRY_RUN});
    EXPECT_EQ(syns("198.51.100.7", 3), "PPP");
    EXPECT_EQ(counts(allow).matched, 3u);
    EXPECT_EQ(counts(block).would_drop, 3u);
    EXPECT_EQ(counts(limit).matched, 0u);
    EXPECT_EQ(fence().counters().would_drop, 3u);

    // `enforce` the limit (one write, the same rule id) and remove the dry-run block.
    rule_key_v4 key{24, {198, 51, 100, 0}};
    rule_value value{};
    ASSERT_TRUE(rules_v4_.lookup(&key, &value));
    value.flags = 0;
    rules_v4_.update(&key, &value);
    rule_key_v4 block_key{28, {198, 51, 100, 0}};
    ASSERT_TRUE(rules_v4_.erase(&block_key));
    EXPECT_EQ(syns("198.51.100.7", 3), "PPD");
    EXPECT_EQ(counts(limit).rate_dropped, 1u);
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

}  // namespace
