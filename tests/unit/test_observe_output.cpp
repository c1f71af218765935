// stats, top and events without a kernel: rates between snapshots, the
// ranking and naming of `top`, and the exact text and JSON of each.
#include <gtest/gtest.h>

#include <cstring>

#include "fence/observe.h"
#include "output/observe_output.h"

namespace smtpfence {
namespace {

constexpr uint64_t kSecond = 1000000000ull;
// Boot at 2026-11-25T22:18:21Z: boot time t shows as that plus t.
constexpr int64_t kOffset = 1795645101ll * 1000000000ll;

Rule make_rule(const char* cidr, Action action, rule_counters counters, uint32_t rule_id) {
    Rule r;
    r.cidr = parse_cidr(cidr).cidr;
    r.action = action;
    r.counters = counters;
    r.rule_id = rule_id;
    return r;
}

SourceEntry entry(const char* addr, uint16_t port, uint64_t attempts, uint64_t passed, uint64_t blocked,
                  uint64_t first_seen_ns, uint64_t last_seen_ns, uint8_t verdict = FENCE_VERDICT_PASSED,
                  uint32_t rule_id = 0, uint8_t action = 0, uint8_t prefixlen = 0) {
    Cidr c = parse_cidr(addr).cidr;
    SourceEntry e;
    e.key.family = static_cast<uint8_t>(c.family);
    e.key.port = port;
    std::memcpy(e.key.addr, c.addr.data(), 16);
    e.stats.attempts = attempts;
    e.stats.syn_packets = attempts;  // no retransmissions unless a test says so
    e.stats.passed = passed;
    e.stats.blocked = blocked;
    e.stats.first_seen_ns = first_seen_ns;
    e.stats.last_seen_ns = last_seen_ns;
    e.stats.last_verdict = verdict;
    e.stats.last_rule_id = rule_id;
    e.stats.last_action = action;
    e.stats.last_prefixlen = prefixlen;
    return e;
}

SourceSnapshot snapshot(uint64_t taken_ns, std::vector<SourceEntry> entries) {
    return {taken_ns, std::move(entries)};
}

fence_event make_event(const char* source, uint16_t port, uint8_t verdict, uint8_t action, uint8_t prefixlen,
                       uint32_t rule_id, uint64_t time_ns) {
    Cidr c = parse_cidr(source).cidr;
    fence_event e{};
    e.time_ns = time_ns;
    e.rule_id = rule_id;
    e.family = static_cast<uint8_t>(c.family);
    e.verdict = verdict;
    e.action = action;
    e.prefixlen = prefixlen;
    e.port = port;
    std::memcpy(e.addr, c.addr.data(), 16);
    return e;
}

}  // namespace

TEST(RatePerSecond, DeltaOverSecondsAndResetCountsFromZero) {
    EXPECT_DOUBLE_EQ(rate_per_second(10, 30, 2.0), 10.0);
    EXPECT_DOUBLE_EQ(rate_per_second(30, 30, 2.0), 0.0);
    EXPECT_DOUBLE_EQ(rate_per_second(30, 6, 2.0), 3.0);  // reset: 6 since
    EXPECT_DOUBLE_EQ(rate_per_second(1, 9, 0.0), 0.0);   // no interval, no rate
}

TEST(MaskedCidr, KeepsThePrefixBitsOnly) {
    Cidr c = parse_cidr("203.0.113.77").cidr;
    EXPECT_EQ(format_cidr(masked_cidr(Family::V4, c.addr.data(), 24)), "203.0.113.0/24");
    EXPECT_EQ(format_cidr(masked_cidr(Family::V4, c.addr.data(), 27)), "203.0.113.64/27");
    EXPECT_EQ(format_cidr(masked_cidr(Family::V4, c.addr.data(), 0)), "0.0.0.0/0");
    Cidr v6 = parse_cidr("2001:db8:bad:1::5").cidr;
    EXPECT_EQ(format_cidr(masked_cidr(Family::V6, v6.addr.data(), 48)), "2001:db8:bad::/48");
}

TEST(StatsRates, GlobalAndPerRuleMatchedByPrefix) {
    StatsSnapshot before, after;
    before.taken_ns = 10 * kSecond;
    after.taken_ns = 12 * kSecond;
    before.global.seen = 100;
    after.global.seen = 300;
    before.global.dropped = 50;
    after.global.dropped = 10;  // went down: reset, counts from zero
    before.rules = {make_rule("203.0.113.0/24", Action::Block, {4, 4, 0, 0, 0}, 1),
                    make_rule("198.51.100.0/24", Action::Allow, {2, 0, 0, 0, 0}, 2)};
    after.rules = {make_rule("192.168.0.0/16", Action::Block, {8, 8, 0, 0, 0}, 3),
                   make_rule("203.0.113.0/24", Action::Block, {24, 24, 0, 0, 0}, 1)};
    StatsRates rates = stats_rates(before, after);
    EXPECT_DOUBLE_EQ(rates.interval_s, 2.0);
    EXPECT_DOUBLE_EQ(rates.global[0], 100.0);  // seen
    EXPECT_DOUBLE_EQ(rates.global[2], 5.0);    // dropped
    ASSERT_EQ(rates.rules.size(), 2u);
    EXPECT_FALSE(rates.rules[0].has_value());  // new rule: no rate yet
    ASSERT_TRUE(rates.rules[1].has_value());
    EXPECT_DOUBLE_EQ(rates.rules[1]->per_second[0], 10.0);  // matched
    EXPECT_DOUBLE_EQ(rates.rules[1]->per_second[1], 0.0);   // attempts
    EXPECT_DOUBLE_EQ(rates.rules[1]->per_second[2], 10.0);  // dropped
}

TEST(StatsText, TableWithoutAndWithRates) {
    StatsSnapshot before, after;
    before.taken_ns = 10 * kSecond;
    after.taken_ns = 11 * kSecond;
    after.global = {.seen = 60,
                    .passed = 20,
                    .dropped = 40,
                    .smtp = 50,
                    .smtp_syn = 50,
                    .smtp_attempts = 15,
                    .dropped_attempts = 5,
                    .fragments = 0,
                    .malformed = 0,
                    .would_drop = 0,
                    .events = 1,
                    .events_suppressed = 0,
                    .untracked_syns = 0};
    // 40 SYN packets dropped: 5 attempts, each sent 8 times.
    Rule block = make_rule("203.0.113.0/24", Action::Block, {40, 40, 0, 0, 0, 5, 5, 0}, 7);
    before.rules = {make_rule("203.0.113.0/24", Action::Block, {30, 30, 0, 0, 0, 4, 4, 0}, 7)};
    after.rules = {block};
    EXPECT_EQ(stats_text(after, nullptr, kOffset),
              "smtpfence stats  2026-11-25T22:18:32Z\n"
              "COUNTER            TOTAL\n"
              "seen                  60\n"
              "passed                20\n"
              "dropped               40\n"
              "smtp                  50\n"
              "smtp_syn              50\n"
              "smtp_attempts         15\n"
              "dropped_attempts       5\n"
              "fragments              0\n"
              "malformed              0\n"
              "would_drop             0\n"
              "events                 1\n"
              "events_suppressed      0\n"
              "untracked_syns         0\n"
              "\n"
              "RULE            ACTION  MATCHED  ATTEMPTS  DROPPED  DROPPED-ATTEMPTS  RATE-DROPPED  CONNS-DROPPED  "
              "WOULD-DROP  WOULD-DROP-ATTEMPTS\n"
              "203.0.113.0/24  block        40         5       40                 5             0              0  "
              "         0                    0\n");
    StatsRates rates = stats_rates(before, after);
    std::string text = stats_text(after, &rates, kOffset);
    EXPECT_NE(text.find("smtpfence stats  2026-11-25T22:18:32Z  rates over 1.0 s\n"), std::string::npos) << text;
    EXPECT_NE(text.find("COUNTER            TOTAL    /S\n"), std::string::npos) << text;
    EXPECT_NE(text.find("dropped               40  40.0\n"), std::string::npos) << text;
    EXPECT_NE(text.find("203.0.113.0/24  block        40         5       40                 5             0  "
                        "            0           0                    0\n"
                        "                /s         10.0       1.0     10.0               1.0           0.0  "
                        "          0.0         0.0                  0.0\n"),
              std::string::npos)
        << text;
}

TEST(StatsLine, OneLineWithTotalsAndRates) {
    StatsSnapshot before, after;
    before.taken_ns = 10 * kSecond;
    after.taken_ns = 12 * kSecond;
    after.global.dropped = 40;
    before.rules = {make_rule("203.0.113.0/24", Action::Block, {0, 0, 0, 0, 0}, 7)};
    after.rules = {make_rule("203.0.113.0/24", Action::Block, {40, 40, 0, 0, 0, 6, 6, 0}, 7)};
    StatsRates rates = stats_rates(before, after);
    std::string line = stats_line(after, rates, kOffset);
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
    EXPECT_EQ(line.rfind("2026-11-25T22:18:33Z seen=0 (0.0/s) passed=0 (0.0/s) dropped=40 (20.0/s)", 0), 0u) << line;
    EXPECT_NE(line.find("; block 203.0.113.0/24 matched=40 (20.0/s) attempts=6 (3.0/s) dropped=40 (20.0/s) "
                        "dropped_attempts=6 (3.0/s) rate_dropped=0 (0.0/s)"),
              std::string::npos)
        << line;
}

TEST(StatsJson, OneSnapshotHasNullRates) {
    StatsSnapshot snap;
    snap.taken_ns = 5 * kSecond;
    snap.global.smtp_syn = 50;
    snap.rules = {make_rule("203.0.113.0/24", Action::Block, {40, 40, 0, 0, 0}, 7)};
    auto j = stats_json(snap, nullptr, kOffset);
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"time", "interval_s", "counters", "rates", "rules"}));
    EXPECT_EQ(j["time"], "2026-11-25T22:18:26Z");
    EXPECT_TRUE(j["interval_s"].is_null());
    EXPECT_TRUE(j["rates"].is_null());
    EXPECT_EQ(j["counters"]["smtp_syn"], 50);
    EXPECT_EQ(j["counters"].size(), std::size(kGlobalCounters));
    EXPECT_TRUE(j["counters"].contains("events_suppressed"));
    ASSERT_EQ(j["rules"].size(), 1u);
    EXPECT_EQ(j["rules"][0]["cidr"], "203.0.113.0/24");
    EXPECT_EQ(j["rules"][0]["action"], "block");
    EXPECT_EQ(j["rules"][0]["dry_run"], false);
    EXPECT_EQ(j["rules"][0]["rule_id"], 7);
    EXPECT_EQ(j["rules"][0]["counters"]["dropped"], 40);
    EXPECT_EQ(j["rules"][0]["counters"].size(), std::size(kRuleCounters));
    EXPECT_TRUE(j["rules"][0]["rates"].is_null());
}

TEST(StatsJson, WithRates) {
    StatsSnapshot before, after;
    before.taken_ns = 10 * kSecond;
    after.taken_ns = 14 * kSecond;
    after.global.seen = 8;
    after.rules = {make_rule("203.0.113.0/24", Action::Block, {4, 4, 0, 0, 0}, 7)};
    before.rules = after.rules;
    StatsRates rates = stats_rates(before, after);
    auto j = stats_json(after, &rates, kOffset);
    EXPECT_DOUBLE_EQ(j["interval_s"].get<double>(), 4.0);
    EXPECT_DOUBLE_EQ(j["rates"]["seen"].get<double>(), 2.0);
    EXPECT_DOUBLE_EQ(j["rules"][0]["rates"]["matched"].get<double>(), 0.0);
}

TEST(ComputeTop, RanksByRateThenTotalThenAddress) {
    // A: many attempts long ago, none now. B: few, but 10 in the interval.
    // C and D: idle with equal totals: by address.
    auto before = snapshot(10 * kSecond, {entry("203.0.113.10", 25, 40, 0, 40, 1 * kSecond, 2 * kSecond),
                                          entry("198.51.100.10", 25, 2, 2, 0, 1 * kSecond, 2 * kSecond),
                                          entry("198.51.100.30", 25, 5, 5, 0, 1 * kSecond, 2 * kSecond),
                                          entry("198.51.100.20", 25, 5, 5, 0, 1 * kSecond, 2 * kSecond)});
    auto after = snapshot(12 * kSecond, {entry("203.0.113.10", 25, 40, 0, 40, 1 * kSecond, 2 * kSecond),
                                         entry("198.51.100.10", 25, 12, 12, 0, 1 * kSecond, 11 * kSecond),
                                         entry("198.51.100.30", 25, 5, 5, 0, 1 * kSecond, 2 * kSecond),
                                         entry("198.51.100.20", 25, 5, 5, 0, 1 * kSecond, 2 * kSecond)});
    TopView view = compute_top(before, after, {}, {}, 65536);
    EXPECT_DOUBLE_EQ(view.interval_s, 2.0);
    EXPECT_EQ(view.sources_tracked, 4u);
    ASSERT_EQ(view.rows.size(), 4u);
    EXPECT_EQ(format_address(view.rows[0].family, view.rows[0].addr), "198.51.100.10");
    EXPECT_DOUBLE_EQ(view.rows[0].attempts_per_s, 5.0);
    EXPECT_EQ(format_address(view.rows[1].family, view.rows[1].addr), "203.0.113.10");
    EXPECT_EQ(format_address(view.rows[2].family, view.rows[2].addr), "198.51.100.20");
    EXPECT_EQ(format_address(view.rows[3].family, view.rows[3].addr), "198.51.100.30");

    TopQuery two;
    two.limit = 2;
    EXPECT_EQ(compute_top(before, after, {}, two, 65536).rows.size(), 2u);
}

TEST(ComputeTop, RanksByAttemptsNotSynPackets) {
    // A retransmits every attempt 8 times; B makes more attempts, each once.
    auto before = snapshot(0, {entry("203.0.113.10", 25, 0, 0, 0, 1, 1), entry("198.51.100.10", 25, 0, 0, 0, 1, 1)});
    auto after = snapshot(kSecond,
                          {entry("203.0.113.10", 25, 5, 0, 40, 1, 9), entry("198.51.100.10", 25, 6, 6, 0, 1, 9)});
    after.entries[0].stats.syn_packets = 40;
    TopView view = compute_top(before, after, {}, {}, 65536);
    ASSERT_EQ(view.rows.size(), 2u);
    EXPECT_EQ(format_address(view.rows[0].family, view.rows[0].addr), "198.51.100.10");
    EXPECT_DOUBLE_EQ(view.rows[0].attempts_per_s, 6.0);
    EXPECT_DOUBLE_EQ(view.rows[1].attempts_per_s, 5.0);
    EXPECT_DOUBLE_EQ(view.rows[1].syn_packets_per_s, 40.0);
    EXPECT_EQ(view.rows[1].syn_packets, 40u);
}

TEST(ComputeTop, AddsUpPortsUnlessOneIsAskedFor) {
    auto before = snapshot(0, {});
    auto after = snapshot(
        kSecond, {entry("203.0.113.10", 25, 6, 6, 0, 100, 500),
                  entry("203.0.113.10", 587, 4, 0, 4, 200, 900, FENCE_VERDICT_BLOCKED, 3, FENCE_ACTION_BLOCK, 24),
                  entry("198.51.100.10", 587, 1, 1, 0, 100, 100)});
    std::vector<Rule> rules{make_rule("203.0.113.0/24", Action::Block, {}, 3)};
    TopView all = compute_top(before, after, rules, {}, 65536);
    ASSERT_EQ(all.rows.size(), 2u);
    const TopRow& a = all.rows[0];
    EXPECT_EQ(a.ports, (std::vector<uint16_t>{25, 587}));
    EXPECT_EQ(a.attempts, 10u);
    EXPECT_EQ(a.passed, 6u);
    EXPECT_EQ(a.blocked, 4u);
    EXPECT_DOUBLE_EQ(a.attempts_per_s, 10.0);  // not in the first sample: all of it is new
    EXPECT_EQ(a.first_seen_ns, 100u);
    // "Last" is the port with the latest attempt.
    EXPECT_EQ(a.last_seen_ns, 900u);
    EXPECT_EQ(a.last_verdict, FENCE_VERDICT_BLOCKED);
    ASSERT_TRUE(a.last_rule.has_value());
    EXPECT_EQ(describe_rule_ref(*a.last_rule), "block 203.0.113.0/24");

    TopQuery port25;
    port25.port = 25;
    TopView only25 = compute_top(before, after, rules, port25, 65536);
    ASSERT_EQ(only25.rows.size(), 1u);
    EXPECT_EQ(only25.rows[0].ports, (std::vector<uint16_t>{25}));
    EXPECT_EQ(only25.rows[0].attempts, 6u);
    EXPECT_FALSE(only25.rows[0].last_rule.has_value());
    EXPECT_EQ(only25.port, std::optional<uint16_t>(25));
}

TEST(ComputeTop, ASourceTheLruForgotCountsFromZero) {
    auto before = snapshot(0, {entry("203.0.113.10", 25, 100, 100, 0, 1, 2)});
    auto after = snapshot(2 * kSecond, {entry("203.0.113.10", 25, 3, 3, 0, 5, 6)});
    EXPECT_DOUBLE_EQ(compute_top(before, after, {}, {}, 65536).rows[0].attempts_per_s, 1.5);
}

TEST(ComputeTop, NamesARemovedRuleByTheMaskedSource) {
    auto after = snapshot(kSecond,
                          {entry("203.0.113.77", 25, 1, 0, 1, 1, 2, FENCE_VERDICT_BLOCKED, 9, FENCE_ACTION_BLOCK, 24)});
    TopView view = compute_top(snapshot(0, {}), after, {}, {}, 65536);
    ASSERT_TRUE(view.rows[0].last_rule.has_value());
    EXPECT_TRUE(view.rows[0].last_rule->removed);
    EXPECT_EQ(describe_rule_ref(*view.rows[0].last_rule), "block 203.0.113.0/24 (removed)");
}

TEST(ComputeTop, NamesTheListWhoseEntryDecided) {
    // A list's rule is no rule of the table; its entry's length comes with
    // the source (here a /20 of list "drop", rule id 1000).
    auto after = snapshot(kSecond, {entry("203.0.113.77", 25, 1, 0, 1, 1, 2, FENCE_VERDICT_BLOCKED, 1000,
                                          FENCE_ACTION_BLOCK, 20)});
    TopView view = compute_top(snapshot(0, {}), after, {}, {}, 65536, {{1000, "drop"}});
    ASSERT_TRUE(view.rows[0].last_rule.has_value());
    EXPECT_FALSE(view.rows[0].last_rule->removed);
    EXPECT_EQ(view.rows[0].last_rule->list, "drop");
    EXPECT_EQ(describe_rule_ref(*view.rows[0].last_rule), "block 203.0.112.0/20 (list drop)");
    EXPECT_EQ(top_json(view, kOffset)["sources"][0]["rule"]["list"], "drop");
}

TEST(TopOutput, TextLineAndJsonHaveTheSameFields) {
    auto before = snapshot(10 * kSecond, {entry("203.0.113.10", 25, 30, 0, 30, 1 * kSecond, 9 * kSecond,
                                                FENCE_VERDICT_BLOCKED, 3, FENCE_ACTION_BLOCK, 24)});
    auto after = snapshot(11 * kSecond, {entry("203.0.113.10", 25, 40, 0, 40, 1 * kSecond, 11 * kSecond,
                                               FENCE_VERDICT_BLOCKED, 3, FENCE_ACTION_BLOCK, 24),
                                         entry("2001:db8:1::10", 25, 10, 10, 0, 3 * kSecond, 8 * kSecond)});
    // A retransmits: 40 attempts in 200 SYN packets (50 of them in the interval).
    before.entries[0].stats.syn_packets = 150;
    after.entries[0].stats.syn_packets = 200;
    after.entries[0].stats.dropped_attempts = 40;
    std::vector<Rule> rules{make_rule("203.0.113.0/24", Action::Block, {}, 3)};
    TopView view = compute_top(before, after, rules, {}, 65536);

    EXPECT_EQ(top_text(view, kOffset),
              "smtpfence top  2026-11-25T22:18:32Z  rates over 1.0 s  2 of 65536 source entries tracked\n"
              "SOURCE          PORTS  ATTEMPTS/S  ATTEMPTS  DROPPED-ATTEMPTS  SYN-PACKETS/S  SYN-PACKETS  PASSED  "
              "BLOCKED  LIMITED  WOULD-DROP  FIRST-SEEN  LAST-SEEN  LAST     RULE\n"
              "203.0.113.10    25           10.0        40                40           50.0          200       0  "
              "     40        0           0     10s ago     0s ago  blocked  block 203.0.113.0/24\n"
              "2001:db8:1::10  25           10.0        10                 0           10.0           10      10  "
              "      0        0           0      8s ago     3s ago  passed   -\n");
    // Equal rates (10/s): the bigger total comes first.
    EXPECT_EQ(format_address(view.rows[0].family, view.rows[0].addr), "203.0.113.10");

    EXPECT_EQ(top_line(view, kOffset),
              "2026-11-25T22:18:32Z 2/65536 tracked: 203.0.113.10 ports=25 10.0/s attempts=40 dropped_attempts=40 "
              "syn_packets=200 (50.0/s) passed=0 blocked=40 limited=0 would_drop=0 last=blocked "
              "rule=block:203.0.113.0/24; 2001:db8:1::10 ports=25 10.0/s attempts=10 dropped_attempts=0 "
              "syn_packets=10 (10.0/s) passed=10 blocked=0 limited=0 would_drop=0 last=passed\n");

    auto j = top_json(view, kOffset);
    EXPECT_EQ(j["time"], "2026-11-25T22:18:32Z");
    EXPECT_DOUBLE_EQ(j["interval_s"].get<double>(), 1.0);
    EXPECT_TRUE(j["port"].is_null());
    EXPECT_EQ(j["sources_tracked"], 2);
    EXPECT_EQ(j["sources_capacity"], 65536);
    ASSERT_EQ(j["sources"].size(), 2u);
    const auto& s = j["sources"][0];
    std::vector<std::string> keys;
    for (auto it = s.begin(); it != s.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys,
              (std::vector<std::string>{"source", "family", "ports", "attempts_per_s", "attempts", "dropped_attempts",
                                        "syn_packets_per_s", "syn_packets", "passed", "blocked", "limited",
                                        "would_drop", "first_seen", "last_seen", "last_verdict", "rule"}));
    EXPECT_EQ(s["source"], "203.0.113.10");
    EXPECT_EQ(s["family"], "ipv4");
    EXPECT_EQ(s["ports"], nlohmann::ordered_json::array({25}));
    EXPECT_EQ(s["attempts"], 40);
    EXPECT_EQ(s["dropped_attempts"], 40);
    EXPECT_EQ(s["syn_packets"], 200);
    EXPECT_DOUBLE_EQ(s["syn_packets_per_s"].get<double>(), 50.0);
    EXPECT_EQ(s["blocked"], 40);
    EXPECT_EQ(s["first_seen"], "2026-11-25T22:18:22Z");
    EXPECT_EQ(s["last_seen"], "2026-11-25T22:18:32Z");
    EXPECT_EQ(s["last_verdict"], "blocked");
    EXPECT_EQ(s["rule"]["id"], 3);
    EXPECT_EQ(s["rule"]["cidr"], "203.0.113.0/24");
    EXPECT_EQ(s["rule"]["action"], "block");
    EXPECT_EQ(s["rule"]["dry_run"], false);
    EXPECT_EQ(s["rule"]["removed"], false);
    EXPECT_TRUE(s["rule"]["list"].is_null());
    EXPECT_TRUE(j["sources"][1]["rule"].is_null());
    EXPECT_EQ(j["sources"][1]["family"], "ipv6");
}

TEST(TopText, NothingSeen) {
    TopView view;
    view.sources_capacity = 65536;
    EXPECT_EQ(top_text(view, kOffset),
              "smtpfence top  2026-11-25T22:18:21Z  rates over 0.0 s  0 of 65536 source entries tracked\n"
              "no SMTP connection attempts seen\n");
}

TEST(Verdicts, Names) {
    EXPECT_STREQ(verdict_name(FENCE_VERDICT_PASSED), "passed");
    EXPECT_STREQ(verdict_name(FENCE_VERDICT_BLOCKED), "blocked");
    EXPECT_STREQ(verdict_name(FENCE_VERDICT_RATE), "rate_dropped");
    EXPECT_STREQ(verdict_name(FENCE_VERDICT_CONNS), "conns_dropped");
    EXPECT_STREQ(verdict_name(FENCE_VERDICT_WOULD_DROP), "would_drop");
}

TEST(Events, TextNamesSourcePortAndRule) {
    EXPECT_EQ(event_text(make_event("203.0.113.10", 25, FENCE_VERDICT_BLOCKED, FENCE_ACTION_BLOCK, 24, 7, 99 * kSecond),
                         kOffset),
              "2026-11-25T22:20:00Z first drop: 203.0.113.10 -> port 25 by block 203.0.113.0/24 (rule 7)\n");
    EXPECT_EQ(event_text(make_event("2001:db8:bad::1", 587, FENCE_VERDICT_RATE, FENCE_ACTION_LIMIT, 48, 8, 0), kOffset),
              "2026-11-25T22:18:21Z first drop (rate): 2001:db8:bad::1 -> port 587 by limit 2001:db8:bad::/48 "
              "(rule 8)\n");
    EXPECT_EQ(
        event_text(make_event("198.51.100.7", 25, FENCE_VERDICT_WOULD_DROP, FENCE_ACTION_BLOCK, 32, 9, 0), kOffset),
        "2026-11-25T22:18:21Z would drop (dry run): 198.51.100.7 -> port 25 by block 198.51.100.7/32 "
        "(rule 9)\n");
}

TEST(Events, NameTheListWhoseEntryDropped) {
    const fence_event e = make_event("203.0.113.10", 25, FENCE_VERDICT_BLOCKED, FENCE_ACTION_BLOCK, 20, 1000, 0);
    EXPECT_EQ(event_text(e, kOffset, "drop"),
              "2026-11-25T22:18:21Z first drop: 203.0.113.10 -> port 25 by block 203.0.112.0/20 (list drop)\n");
    EXPECT_EQ(event_json(e, kOffset, "drop")["list"], "drop");
    EXPECT_TRUE(event_json(e, kOffset)["list"].is_null());
}

TEST(Events, JsonFields) {
    auto j = event_json(make_event("203.0.113.10", 25, FENCE_VERDICT_CONNS, FENCE_ACTION_LIMIT, 24, 7, 2 * kSecond),
                        kOffset);
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"type", "time", "time_unix_ns", "source", "family", "port", "verdict",
                                              "rule_id", "rule", "list", "action"}));
    EXPECT_EQ(j["type"], "drop");
    EXPECT_EQ(j["time"], "2026-11-25T22:18:23Z");
    EXPECT_EQ(j["time_unix_ns"], 1795645103000000000ull);
    EXPECT_EQ(j["source"], "203.0.113.10");
    EXPECT_EQ(j["family"], "ipv4");
    EXPECT_EQ(j["port"], 25);
    EXPECT_EQ(j["verdict"], "conns_dropped");
    EXPECT_EQ(j["rule_id"], 7);
    EXPECT_EQ(j["rule"], "203.0.113.0/24");
    EXPECT_EQ(j["action"], "limit");
}

TEST(Events, SuppressedReport) {
    uint64_t now = 1795645101ull * kSecond;
    EXPECT_EQ(suppressed_text(3, 12, now),
              "2026-11-25T22:18:21Z 3 events held back by the kernel (stream rate limit or full ring buffer; 12 "
              "since the maps were created)\n");
    EXPECT_EQ(suppressed_text(1, 1, now).find("1 event held back"), 21u);
    auto j = suppressed_json(3, 12, now);
    EXPECT_EQ(j["type"], "suppressed");
    EXPECT_EQ(j["count"], 3);
    EXPECT_EQ(j["total"], 12);
    EXPECT_EQ(j["time_unix_ns"], now);
}

}  // namespace smtpfence
