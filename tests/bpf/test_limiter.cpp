// The XDP program's `limit` action on crafted frames, through
// bpf_prog_test_run_opts: GCRA bursts and refill, limiter keys (per source, per
// rule, per prefix; IPv6 sources as /64), what a limit never meters
// (established segments, other ports, fragments), --max-conns against
// conn_counts entries written directly, and what happens to limiter state when
// a rule changes. Every test gets fresh pinned maps, so the global and
// per-rule counters are asserted as exact totals. Precedence against allow and
// block is in test_rules.cpp. Needs root; skipped otherwise.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "bpf_test_support.h"
#include "fence/rule_store.h"
#include "limit_fixture.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"
#include "text/limit_options.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;

namespace {

// ---------------------------------------------------------------------------
// GCRA with uncertain clocks: the program reads bpf_ktime_get_ns() (CLOCK_MONOTONIC)
// somewhere inside each run, and the test knows only that it lies between
// clock_gettime(CLOCK_MONOTONIC) before and after the run. The model keeps the
// TAT as an interval and predicts a verdict only when every possible `now`
// gives the same one; otherwise it answers '?' and knows nothing from then on.

class UncertainGcra {
public:
    UncertainGcra(uint64_t interval, uint64_t tolerance) : interval_(interval), tolerance_(tolerance) {}

    char step(uint64_t now_lo, uint64_t now_hi) {
        if (lost_) return '?';
        if (!known_) {
            // First sight: TAT = now, admitted (now - now <= tolerance), TAT = now + interval.
            known_ = true;
            tat_lo_ = now_lo + interval_;
            tat_hi_ = now_hi + interval_;
            return 'P';
        }
        // Admitted iff max(tat, now) - now <= tolerance, i.e. now + tolerance >= tat.
        if (now_lo + tolerance_ >= tat_hi_) {
            tat_lo_ = std::max(tat_lo_, now_lo) + interval_;
            tat_hi_ = std::max(tat_hi_, now_hi) + interval_;
            return 'P';
        }
        if (now_hi + tolerance_ < tat_lo_) return 'D';
        lost_ = true;
        return '?';
    }

private:
    uint64_t interval_, tolerance_;
    bool known_ = false, lost_ = false;
    uint64_t tat_lo_ = 0, tat_hi_ = 0;
};

// ---------------------------------------------------------------------------
// Bursts: a fresh key may open `burst` connections at once, then none until
// the rate refills it. The intervals are long enough that no token comes back
// while the test runs (asserted from the measured time).

struct BurstCase {
    std::string rate;
    uint32_t burst;
    size_t syns;
};

class LimitBursts : public LimitVerdicts, public ::testing::WithParamInterface<BurstCase> {};

TEST_P(LimitBursts, ExactlyBurstPassThenAllDrop) {
    const BurstCase& c = GetParam();
    const LimitSpec s = spec(kNet4, c.rate, c.burst);
    add_limit(kNet4, c.rate, c.burst);
    ASSERT_TRUE(rule(kNet4));
    EXPECT_EQ(rule(kNet4)->action, Action::Limit);
    EXPECT_EQ(rule(kNet4)->limit, s) << "the rule reads back as it was written";
    EXPECT_EQ(counts(kNet4), RuleCounts{}) << "no state before the first SYN";

    const uint64_t start = monotonic_ns();
    const std::string got = syns("203.0.113.10", c.syns);
    const uint64_t elapsed = monotonic_ns() - start;
    ASSERT_LT(elapsed, s.interval_ns) << "the SYNs took longer than one interval: a token may have come back";

    const uint64_t dropped = c.syns - c.burst;
    EXPECT_EQ(got, repeat('P', c.burst) + repeat('D', dropped));
    EXPECT_EQ(counts(kNet4),
              (RuleCounts{.matched = c.syns, .dropped = dropped, .rate_dropped = dropped, .tracked_keys = 1}));
    EXPECT_EQ(
        global(),
        (GlobalCounts{.seen = c.syns, .passed = c.burst, .dropped = dropped, .smtp = c.syns, .smtp_syn = c.syns}));

    // The key is the rule's id, family 4 and the whole source (--per source = /32).
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE), Keys{expected_key(rule_id(kNet4), "203.0.113.10", 32)});
    EXPECT_EQ(keys_of(FENCE_MAP_CONN_COUNTS), Keys{}) << "a rate alone counts no connections";
}

INSTANTIATE_TEST_SUITE_P(Rates, LimitBursts,
                         ::testing::Values(BurstCase{"5/s", 5, 20},        // interval 200 ms
                                           BurstCase{"5/s", 1, 20},        // burst 1: one, then nothing
                                           BurstCase{"100/h", 100, 130}),  // interval 36 s
                         [](const ::testing::TestParamInfo<BurstCase>& info) {
                             return "burst" + std::to_string(info.param.burst);
                         });

// ---------------------------------------------------------------------------
// Refill

TEST_F(LimitVerdicts, BucketRefillsOneTokenPerInterval) {
    // 1000/s: one token per millisecond, burst 5. A key is drained (5 pass, the
    // 6th drops); 3.5 intervals after its first SYN it has earned back 3.5
    // tokens, i.e. 3 whole ones: 3 SYNs pass, the 4th drops, as long as they
    // all land before the 4th token (4 intervals after the first SYN).
    //
    // Every verdict is checked against a GCRA model fed with the clock read
    // before and after each run (widened by 1 us: bpf_ktime_get_ns() is the
    // NMI-safe fast reader of the same CLOCK_MONOTONIC, which can differ from
    // the vDSO's reading by the few ns of an NTP adjustment, never by 1 us).
    // When the machine stalls the test for the better part of a millisecond,
    // the timing no longer says "exactly 3" (the model then predicts what
    // the program must do instead, or cannot tell at a token boundary); that
    // attempt still checks what it can, and the test retries with a fresh
    // source, up to 8 times.
    const uint64_t interval = parse_rate("1000/s");
    ASSERT_EQ(interval, 1'000'000u);
    const uint32_t burst = 5;
    const uint64_t tolerance = (burst - 1) * interval;
    const uint64_t slack = 1'000;
    add_limit(kNet4, "1000/s", burst);

    const std::string wanted =
        "PPPPPD"
        "PPPD";
    std::string all;  // every verdict of every attempt, for the counters
    int attempts = 0;
    bool undisturbed = false;
    for (; attempts < 8 && !undisturbed; ++attempts) {
        const std::string src = "203.0.113." + std::to_string(100 + attempts);
        SCOPED_TRACE("attempt " + std::to_string(attempts) + ", source " + src);
        const Bytes syn = syn_from(src);
        UncertainGcra model(interval, tolerance);
        std::string got, predicted;
        uint64_t first_after = 0;
        auto timed_syn = [&] {
            const uint64_t before = monotonic_ns();
            got += run(syn);
            const uint64_t after = monotonic_ns();
            predicted += model.step(before - slack, after + slack);
            if (first_after == 0) first_after = after;
        };
        for (uint32_t i = 0; i < burst + 1; ++i) timed_syn();
        const uint64_t wake = first_after + 3 * interval + interval / 2;
        while (monotonic_ns() < wake) {
        }
        for (int i = 0; i < 4; ++i) timed_syn();
        all += got;

        for (size_t i = 0; i < got.size(); ++i) {
            if (predicted[i] != '?') {
                EXPECT_EQ(got[i], predicted[i]) << "SYN " << i << ": got " << got << ", model " << predicted;
            }
        }
        undisturbed = predicted == wanted;
        if (undisturbed) {
            EXPECT_EQ(got, wanted);
        }
    }
    RecordProperty("attempts", attempts);
    ASSERT_TRUE(undisturbed) << "every attempt was stalled at the wrong moment; the machine is too busy";

    const uint64_t passed = static_cast<uint64_t>(std::count(all.begin(), all.end(), 'P'));
    const uint64_t dropped = all.size() - passed;
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = all.size(),
                                         .dropped = dropped,
                                         .rate_dropped = dropped,
                                         .tracked_keys = static_cast<uint64_t>(attempts)}));
    EXPECT_EQ(
        global(),
        (GlobalCounts{
            .seen = all.size(), .passed = passed, .dropped = dropped, .smtp = all.size(), .smtp_syn = all.size()}));
}

TEST_F(LimitVerdicts, TatIsNowPlusIntervalsAfterABurst) {
    // The clock itself: created at `now`, each admission moves it one interval.
    const uint64_t interval = parse_rate("5/s");
    add_limit(kNet4, "5/s", 3);
    const uint64_t before = monotonic_ns();
    EXPECT_EQ(syns("203.0.113.10", 1), "P");
    const uint64_t after = monotonic_ns();
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD");
    const auto tat = tat_of(expected_key(rule_id(kNet4), "203.0.113.10", 32));
    ASSERT_TRUE(tat);
    EXPECT_GE(*tat + 1'000, before + 3 * interval);
    EXPECT_LE(*tat, after + 1'000 + 3 * interval);
}

// ---------------------------------------------------------------------------
// Keys

TEST_F(LimitVerdicts, PerSourceGivesEverySourceItsOwnBurst) {
    add_limit(kNet4, "5/s", 2, "source");
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD");
    EXPECT_EQ(syns("203.0.113.11", 3), "PPD");
    EXPECT_EQ(syns("203.0.113.10", 1), "D");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 7, .dropped = 3, .rate_dropped = 3, .tracked_keys = 2}));
    const uint32_t id = rule_id(kNet4);
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE),
              sorted(Keys{expected_key(id, "203.0.113.10", 32), expected_key(id, "203.0.113.11", 32)}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 7, .passed = 4, .dropped = 3, .smtp = 7, .smtp_syn = 7}));
}

TEST_F(LimitVerdicts, PerRuleSharesOneBurst) {
    add_limit(kNet4, "5/s", 2, "rule");
    EXPECT_EQ(rule(kNet4)->limit.key_prefixlen, 24);
    EXPECT_EQ(syns("203.0.113.10", 1), "P");
    EXPECT_EQ(syns("203.0.113.11", 1), "P");
    EXPECT_EQ(syns("203.0.113.11", 1), "D");
    EXPECT_EQ(syns("203.0.113.10", 1), "D");
    EXPECT_EQ(syns("203.0.113.250", 1), "D");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 5, .dropped = 3, .rate_dropped = 3, .tracked_keys = 1}));
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE), Keys{expected_key(rule_id(kNet4), "203.0.113.10", 24)});
    EXPECT_EQ(global(), (GlobalCounts{.seen = 5, .passed = 2, .dropped = 3, .smtp = 5, .smtp_syn = 5}));
}

// README "How the rate is kept": several CPUs update a key's TAT with
// compare-and-swap, so no admission is lost or counted twice. One thread per
// CPU, each pinned to its CPU, released together, runs the same SYN of one
// `--per rule` key at 1/h (no token comes back) `kRepeat` times in the kernel;
// each alone could take the whole burst. Exactly `burst` pass. A plain
// read-modify-write of the TAT admits more: two CPUs read the same TAT and
// both admit. A round counts as a race only when every CPU admitted some of
// the burst (the per-CPU `passed` counters); the scheduler may run the threads
// one after the other on a loaded machine, so up to 3 rounds, on fresh keys.
TEST_F(LimitVerdicts, CpusRacingForOnePerRuleKeyAdmitExactlyTheBurst) {
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &allowed_cpus())) cpus.push_back(cpu);
    }
    if (cpus.size() < 2) SMTPFENCE_SKIP("needs two CPUs");
    constexpr uint32_t kBurst = 200'000;
    constexpr uint32_t kRepeat = 300'000;
    const uint64_t total = uint64_t{kRepeat} * cpus.size();
    const int possible = libbpf_num_possible_cpus();
    ASSERT_GT(possible, 0);
    UniqueFd stats = pinned(FENCE_MAP_STATS);
    auto passed_per_cpu = [&] {
        std::vector<fence_stats> per_cpu(static_cast<size_t>(possible));
        const uint32_t key = 0;
        EXPECT_EQ(bpf_map_lookup_elem(stats.get(), &key, per_cpu.data()), 0) << std::strerror(errno);
        std::vector<uint64_t> out;
        for (const fence_stats& s : per_cpu) out.push_back(s.passed);
        return out;
    };

    bool raced = false;
    for (int round = 0; round < 3 && !raced; ++round) {
        const std::string net = "203.0.113." + std::to_string(64 * round) + "/26";
        const std::string src = "203.0.113." + std::to_string(64 * round + 10);
        add_limit(net, "1/h", kBurst, "rule");
        const Bytes frame = syn_from(src);
        const std::vector<uint64_t> passed_before = passed_per_cpu();
        const GlobalCounts before = global();

        std::latch start(static_cast<std::ptrdiff_t>(cpus.size()));
        std::vector<int> results(cpus.size(), 0);
        std::vector<std::thread> threads;
        for (size_t i = 0; i < cpus.size(); ++i) {
            threads.emplace_back([&, i] {
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(cpus[i], &one);
                if (sched_setaffinity(0, sizeof one, &one) != 0) {
                    results[i] = -errno;
                    start.count_down();
                    return;
                }
                start.arrive_and_wait();
                results[i] = run_raw(frame, kRepeat);
            });
        }
        for (std::thread& t : threads) t.join();
        for (size_t i = 0; i < cpus.size(); ++i) {
            ASSERT_EQ(results[i], XDP_DROP) << "cpu " << cpus[i] << ": the last of its runs (or -errno)";
        }

        const GlobalCounts got = global() - before;
        EXPECT_EQ(got.passed, kBurst) << "round " << round << ": allowed == burst";
        EXPECT_EQ(got.dropped, total - kBurst) << "round " << round;
        EXPECT_EQ(got.seen, total) << "round " << round;
        EXPECT_EQ(counts(net),
                  (RuleCounts{
                      .matched = total, .dropped = total - kBurst, .rate_dropped = total - kBurst, .tracked_keys = 1}))
            << "round " << round << ": allowed + rate_dropped == total";
        const std::vector<uint64_t> passed_after = passed_per_cpu();
        std::string share;
        raced = true;
        for (int cpu : cpus) {
            const uint64_t admitted = passed_after[cpu] - passed_before[cpu];
            share += " cpu" + std::to_string(cpu) + "=" + std::to_string(admitted);
            raced = raced && admitted > 0;
        }
        std::cout << "round " << round << ": admissions per CPU" << share << "\n";
    }
    EXPECT_TRUE(raced) << "in no round did every CPU take part of the burst: nothing raced";
}

TEST_F(LimitVerdicts, PerPrefixSharesInsideThePrefixOnly) {
    add_limit(kNet4, "5/s", 2, "/28");
    EXPECT_EQ(rule(kNet4)->limit.key_prefixlen, 28);
    EXPECT_EQ(syns("203.0.113.10", 1), "P");
    EXPECT_EQ(syns("203.0.113.11", 2), "PD") << ".10 and .11 share 203.0.113.0/28";
    EXPECT_EQ(syns("203.0.113.15", 1), "D") << ".15 is the last of 203.0.113.0/28";
    EXPECT_EQ(syns("203.0.113.30", 3), "PPD") << ".30 is in 203.0.113.16/28";
    EXPECT_EQ(syns("203.0.113.16", 1), "D");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 8, .dropped = 4, .rate_dropped = 4, .tracked_keys = 2}));
    const uint32_t id = rule_id(kNet4);
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE),
              sorted(Keys{expected_key(id, "203.0.113.10", 28), expected_key(id, "203.0.113.30", 28)}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 8, .passed = 4, .dropped = 4, .smtp = 8, .smtp_syn = 8}));
}

TEST_F(LimitVerdicts, Ipv6SourceIsItsSlash64) {
    add_limit(kNet6, "5/s", 2, "source");
    EXPECT_EQ(rule(kNet6)->limit.key_prefixlen, 64);
    EXPECT_EQ(syns("2001:db8:1::10", 2), "PP");
    EXPECT_EQ(syns("2001:db8:1::ffff", 1), "D") << "same /64 as 2001:db8:1::10";
    EXPECT_EQ(syns("2001:db8:1:0:ffff:ffff:ffff:ffff", 1), "D") << "same /64, last address";
    EXPECT_EQ(syns("2001:db8:1:1::10", 3), "PPD") << "another /64";
    EXPECT_EQ(counts(kNet6), (RuleCounts{.matched = 7, .dropped = 3, .rate_dropped = 3, .tracked_keys = 2}));
    const uint32_t id = rule_id(kNet6);
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE),
              sorted(Keys{expected_key(id, "2001:db8:1::10", 64), expected_key(id, "2001:db8:1:1::10", 64)}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 7, .passed = 4, .dropped = 3, .smtp = 7, .smtp_syn = 7}));
}

TEST_F(LimitVerdicts, Ipv6PerSlash128SeparatesAddresses) {
    add_limit(kNet6, "5/s", 2, "/128");
    EXPECT_EQ(rule(kNet6)->limit.key_prefixlen, 128);
    EXPECT_EQ(syns("2001:db8:1::10", 3), "PPD");
    EXPECT_EQ(syns("2001:db8:1::ffff", 3), "PPD");
    EXPECT_EQ(syns("2001:db8:1:1::10", 3), "PPD");
    EXPECT_EQ(counts(kNet6), (RuleCounts{.matched = 9, .dropped = 3, .rate_dropped = 3, .tracked_keys = 3}));
    const uint32_t id = rule_id(kNet6);
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE),
              sorted(Keys{expected_key(id, "2001:db8:1::10", 128), expected_key(id, "2001:db8:1::ffff", 128),
                          expected_key(id, "2001:db8:1:1::10", 128)}));
}

TEST_F(LimitVerdicts, Ipv4AndIpv6RulesKeepSeparateKeys) {
    add_limit(kNet4, "5/s", 1, "rule");
    add_limit(kNet6, "5/s", 1, "rule");
    EXPECT_EQ(syns("203.0.113.10", 2), "PD");
    EXPECT_EQ(syns("2001:db8:1::10", 2), "PD");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 2, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));
    EXPECT_EQ(counts(kNet6), (RuleCounts{.matched = 2, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));
    EXPECT_NE(rule_id(kNet4), rule_id(kNet6));
}

TEST_F(LimitVerdicts, CatchAllPerRuleAndIpv6PerSlash56) {
    // The README's examples: a catch-all is one key of length 0 (the whole
    // address masked away), and --per /56 in a /48 masks mid-byte-pair.
    add_limit("0.0.0.0/0", "5/s", 2, "rule");
    add("198.51.100.25/32", Action::Allow);
    add_limit("2001:db8:bad::/48", "5/s", 2, "/56");
    EXPECT_EQ(rule("0.0.0.0/0")->limit.key_prefixlen, 0);
    EXPECT_EQ(syns("203.0.113.1", 1), "P");
    EXPECT_EQ(syns("255.255.255.254", 1), "P");
    EXPECT_EQ(syns("10.0.0.1", 1), "D") << "the whole IPv4 internet shares one key";
    EXPECT_EQ(syns("198.51.100.25", 2), "PP") << "allow wins inside the catch-all";
    EXPECT_EQ(syns("2001:db8:bad:ff::1", 1), "P");
    EXPECT_EQ(syns("2001:db8:bad:1::1", 2), "PD") << "same /56 as 2001:db8:bad:ff::1";
    EXPECT_EQ(syns("2001:db8:bad:100::1", 3), "PPD") << "the next /56";
    EXPECT_EQ(counts("0.0.0.0/0"), (RuleCounts{.matched = 3, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));
    EXPECT_EQ(counts("2001:db8:bad::/48"),
              (RuleCounts{.matched = 6, .dropped = 2, .rate_dropped = 2, .tracked_keys = 2}));
    const uint32_t all = rule_id("0.0.0.0/0"), v6 = rule_id("2001:db8:bad::/48");
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE),
              sorted(Keys{expected_key(all, "0.0.0.0", 0), expected_key(v6, "2001:db8:bad::", 128),
                          expected_key(v6, "2001:db8:bad:100::", 128)}));
}

// ---------------------------------------------------------------------------
// What a limit never meters

TEST_F(LimitVerdicts, OnlyNewConnectionsToSmtpPortsAreMetered) {
    add_limit(kNet4, "100/h", 1);
    add_limit(kNet6, "100/h", 1);
    const std::string src4 = "203.0.113.10", src6 = "2001:db8:1::10";

    struct Probe {
        std::string what;
        Bytes frame;
    };
    const std::vector<Probe> established = {
        {"v4 ACK", segment_from(src4, kAck)},
        {"v4 SYN+ACK", segment_from(src4, kSyn | kAck)},
        {"v4 PSH+ACK with data", segment_from(src4, kPsh | kAck, 25, 100)},
        {"v4 FIN+ACK", segment_from(src4, kFin | kAck)},
        {"v4 RST", segment_from(src4, kRst)},
        {"v6 ACK", segment_from(src6, kAck)},
        {"v6 SYN+ACK", segment_from(src6, kSyn | kAck)},
    };
    const std::vector<Probe> other_ports = {
        {"v4 SYN to 22", syn_from(src4, 22)},
        {"v4 SYN to 80", syn_from(src4, 80)},
        {"v4 SYN to 2525", syn_from(src4, 2525)},
        {"v6 SYN to 22", syn_from(src6, 22)},
    };
    const Bytes short_tcp = truncated(tcp({}), 8);  // ports and sequence number: no flags to see
    const std::vector<Probe> fragments = {
        {"v4 later fragment", later_fragment_from(src4)},
        {"v4 first fragment too short for TCP flags", v4({.src = src4, .frag = kMoreFragments}, short_tcp)},
        {"v6 later fragment", later_fragment_from(src6)},
    };
    auto probe_all = [&](const char* when) {
        for (const auto* set : {&established, &other_ports, &fragments}) {
            for (const Probe& p : *set) EXPECT_EQ(run_n(p.frame, 3), "PPP") << p.what << ", " << when;
        }
    };

    probe_all("fresh bucket");
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE), Keys{}) << "nothing but a SYN creates limiter state";
    // Fragments from a limit's source count as matched by it (it decided them), never dropped.
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 6}));
    EXPECT_EQ(counts(kNet6), (RuleCounts{.matched = 3}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 42, .passed = 42, .smtp = 21, .fragments = 9}));

    // The burst of 1 is still whole: nothing above consumed it.
    EXPECT_EQ(syns(src4, 2), "PD");
    EXPECT_EQ(syns(src6, 2), "PD");

    probe_all("drained bucket");
    EXPECT_EQ(syns(src4, 1), "D");
    EXPECT_EQ(syns(src6, 1), "D");
    EXPECT_EQ(counts(kNet4),
              (RuleCounts{.matched = 6 + 2 + 6 + 1, .dropped = 2, .rate_dropped = 2, .tracked_keys = 1}));
    EXPECT_EQ(counts(kNet6),
              (RuleCounts{.matched = 3 + 2 + 3 + 1, .dropped = 2, .rate_dropped = 2, .tracked_keys = 1}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 42 + 4 + 42 + 2,
                                      .passed = 42 + 2 + 42,
                                      .dropped = 4,
                                      .smtp = 21 + 4 + 21 + 2,
                                      .smtp_syn = 4 + 2,
                                      .fragments = 18}));
}

TEST_F(LimitVerdicts, FirstFragmentWithACompleteSynIsMetered) {
    add_limit(kNet4, "100/h", 1);
    const Bytes first = v4({.src = "203.0.113.10", .frag = kMoreFragments}, tcp({}));
    EXPECT_EQ(run_n(first, 3), "PDD");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 3, .dropped = 2, .rate_dropped = 2, .tracked_keys = 1}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 3, .passed = 1, .dropped = 2, .smtp = 3, .smtp_syn = 3}));
}

TEST_F(LimitVerdicts, EverySmtpPortShareOneKey) {
    add_limit(kNet4, "100/h", 3);
    EXPECT_EQ(run(syn_from("203.0.113.10", 25)), 'P');
    EXPECT_EQ(run(syn_from("203.0.113.10", 465)), 'P');
    EXPECT_EQ(run(syn_from("203.0.113.10", 587)), 'P');
    EXPECT_EQ(run(syn_from("203.0.113.10", 465)), 'D');
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 4, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));
}

// ---------------------------------------------------------------------------
// --max-conns

TEST_F(LimitVerdicts, MaxConnsDropsAtTheCap) {
    add_limit(kNet4, "", 0, "source", 2);
    EXPECT_EQ(rule(kNet4)->limit, (LimitSpec{.interval_ns = 0, .burst = 0, .max_conns = 2, .key_prefixlen = 32}));
    const uint32_t id = rule_id(kNet4);
    const LimKey key10 = expected_key(id, "203.0.113.10", 32);

    EXPECT_EQ(syns("203.0.113.10", 5), "PPPPP") << "no count yet: nothing open";
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE), Keys{}) << "no rate: no GCRA clock";
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 5}));

    set_conn_count(key10, 2);
    EXPECT_EQ(syns("203.0.113.10", 2), "DD") << "2 open, cap 2";
    EXPECT_EQ(syns("203.0.113.11", 1), "P") << "another source, another key";
    set_conn_count(key10, 1);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPP") << "1 open, cap 2 (the count moves at establishment, not here)";
    set_conn_count(key10, 3);
    EXPECT_EQ(syns("203.0.113.10", 1), "D") << "over the cap";
    set_conn_count(key10, 0);
    EXPECT_EQ(syns("203.0.113.10", 1), "P");

    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 13, .dropped = 3, .conns_dropped = 3, .tracked_keys = 1}));
    EXPECT_EQ(conn_count(key10), 0u) << "the XDP program never writes a count";
    EXPECT_EQ(global(), (GlobalCounts{.seen = 13, .passed = 10, .dropped = 3, .smtp = 13, .smtp_syn = 13}));
}

TEST_F(LimitVerdicts, MaxConnsPerRuleAndIpv6KeysAreMasked) {
    add_limit(kNet4, "", 0, "rule", 1);
    add_limit(kNet6, "", 0, "source", 1);
    set_conn_count(expected_key(rule_id(kNet4), "203.0.113.0", 24), 1);
    set_conn_count(expected_key(rule_id(kNet6), "2001:db8:1:5::", 64), 1);
    EXPECT_EQ(syns("203.0.113.77", 1), "D");
    EXPECT_EQ(syns("2001:db8:1:5::1234", 1), "D") << "inside the counted /64";
    EXPECT_EQ(syns("2001:db8:1:6::1234", 1), "P") << "another /64";
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 1, .dropped = 1, .conns_dropped = 1, .tracked_keys = 1}));
    EXPECT_EQ(counts(kNet6), (RuleCounts{.matched = 2, .dropped = 1, .conns_dropped = 1, .tracked_keys = 1}));
}

TEST_F(LimitVerdicts, MaxConnsDropConsumesNoRateToken) {
    add_limit(kNet4, "5/s", 3, "source", 2);
    const LimKey key10 = expected_key(rule_id(kNet4), "203.0.113.10", 32);
    set_conn_count(key10, 2);
    EXPECT_EQ(syns("203.0.113.10", 5), "DDDDD");
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE), Keys{}) << "refused before the rate was consulted";
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 5, .dropped = 5, .conns_dropped = 5, .tracked_keys = 1}));

    set_conn_count(key10, 1);
    EXPECT_EQ(syns("203.0.113.10", 4), "PPPD") << "the whole burst of 3 is still there";
    set_conn_count(key10, 2);
    EXPECT_EQ(syns("203.0.113.10", 1), "D");
    EXPECT_EQ(counts(kNet4),
              (RuleCounts{.matched = 10, .dropped = 7, .rate_dropped = 1, .conns_dropped = 6, .tracked_keys = 1}))
        << "the key has a clock and a count: tracked once";
    EXPECT_EQ(global(), (GlobalCounts{.seen = 10, .passed = 3, .dropped = 7, .smtp = 10, .smtp_syn = 10}));
}

// ---------------------------------------------------------------------------
// Changing a rule

TEST_F(LimitVerdicts, ReaddingWithTheSameKeyLengthKeepsState) {
    add_limit(kNet4, "5/s", 2);
    const uint32_t id = rule_id(kNet4);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD");
    const auto tat = tat_of(expected_key(id, "203.0.113.10", 32));

    EXPECT_EQ(add_limit(kNet4, "5/s", 2).change, RuleChange::Updated);
    EXPECT_EQ(rule_id(kNet4), id);
    EXPECT_EQ(syns("203.0.113.10", 1), "D") << "a drained bucket stays drained";
    // New terms, same key length (--per /32 is what --per source means for IPv4).
    EXPECT_EQ(add_limit(kNet4, "10/s", 3, "/32").change, RuleChange::Updated);
    EXPECT_EQ(rule_id(kNet4), id);
    EXPECT_EQ(syns("203.0.113.10", 1), "D") << "TAT 400 ms ahead, new tolerance 200 ms";
    EXPECT_EQ(tat_of(expected_key(id, "203.0.113.10", 32)), tat) << "no admission since: clock unchanged";
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 5, .dropped = 3, .rate_dropped = 3, .tracked_keys = 1}))
        << "same action: counters kept";
}

TEST_F(LimitVerdicts, ChangingTheKeyLengthStartsFresh) {
    add_limit(kNet4, "5/s", 2);
    const uint32_t id = rule_id(kNet4);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD");
    EXPECT_EQ(add_limit(kNet4, "5/s", 2, "/28").change, RuleChange::Updated);
    EXPECT_NE(rule_id(kNet4), id);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD") << "full burst again";
    EXPECT_EQ(add_limit(kNet4, "5/s", 2, "rule").change, RuleChange::Updated);
    EXPECT_EQ(syns("203.0.113.11", 3), "PPD") << "full burst again";
    EXPECT_EQ(add_limit(kNet4, "5/s", 2, "source").change, RuleChange::Updated);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD") << "back to per source: still a new key length, fresh state";
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 12, .dropped = 4, .rate_dropped = 4, .tracked_keys = 1}))
        << "counters kept (same action), only the current rule id's key tracked";
}

TEST_F(LimitVerdicts, ChangingTheActionStartsFresh) {
    add_limit(kNet4, "5/s", 2);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD");
    const uint32_t id = rule_id(kNet4);

    AddResult r = add(kNet4, Action::Block);
    EXPECT_EQ(r.change, RuleChange::Replaced);
    EXPECT_EQ(r.previous, Action::Limit);
    EXPECT_EQ(syns("203.0.113.10", 2), "DD");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 2, .dropped = 2})) << "block: counters restarted";

    r = add_limit(kNet4, "5/s", 2);
    EXPECT_EQ(r.change, RuleChange::Replaced);
    EXPECT_EQ(r.previous, Action::Block);
    EXPECT_NE(rule_id(kNet4), id);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD") << "limit again, same terms as before the block: fresh burst";
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 3, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));

    r = add(kNet4, Action::Allow);
    EXPECT_EQ(r.change, RuleChange::Replaced);
    EXPECT_EQ(syns("203.0.113.10", 2), "PP");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 2}));
    add_limit(kNet4, "5/s", 2);
    EXPECT_EQ(syns("203.0.113.10", 3), "PPD") << "allow -> limit: fresh burst";
}

TEST_F(LimitVerdicts, BlockBecomingLimitAdmitsAFullBurst) {
    add(kNet4, Action::Block);
    EXPECT_EQ(syns("203.0.113.10", 3), "DDD");
    add_limit(kNet4, "5/s", 4);
    EXPECT_EQ(syns("203.0.113.10", 5), "PPPPD");
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 5, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));
    EXPECT_EQ(global(), (GlobalCounts{.seen = 8, .passed = 4, .dropped = 4, .smtp = 8, .smtp_syn = 8}));
}

TEST_F(LimitVerdicts, ConnectionCountsFollowTheRuleId) {
    add_limit(kNet4, "", 0, "source", 2);
    add_limit("198.51.100.0/24", "", 0, "source", 2);
    const uint32_t id = rule_id(kNet4), other = rule_id("198.51.100.0/24");
    const LimKey other_key = expected_key(other, "198.51.100.5", 32);
    set_conn_count(expected_key(id, "203.0.113.10", 32), 2);
    set_conn_count(expected_key(id, "203.0.113.11", 32), 1);
    set_conn_count(other_key, 2);
    EXPECT_EQ(counts(kNet4).tracked_keys, 2u);

    // Same key length: the counts stay, and still apply.
    add_limit(kNet4, "", 0, "source", 3);
    EXPECT_EQ(rule_id(kNet4), id);
    EXPECT_EQ(keys_of(FENCE_MAP_CONN_COUNTS),
              sorted(Keys{expected_key(id, "203.0.113.10", 32), expected_key(id, "203.0.113.11", 32), other_key}));
    add_limit(kNet4, "", 0, "source", 2);
    EXPECT_EQ(syns("203.0.113.10", 1), "D");
    EXPECT_EQ(syns("203.0.113.11", 1), "P");

    // New key length: the old rule id's counts go, the other rule's stay.
    add_limit(kNet4, "", 0, "/28", 2);
    const uint32_t id28 = rule_id(kNet4);
    EXPECT_NE(id28, id);
    EXPECT_EQ(keys_of(FENCE_MAP_CONN_COUNTS), Keys{other_key});
    EXPECT_EQ(syns("203.0.113.10", 1), "P");
    EXPECT_EQ(counts(kNet4).tracked_keys, 0u);

    // Removing the rule removes its counts.
    set_conn_count(expected_key(id28, "203.0.113.0", 28), 2);
    set_conn_count(expected_key(id28, "203.0.113.16", 28), 1);
    EXPECT_EQ(syns("203.0.113.10", 1), "D");
    EXPECT_EQ(counts(kNet4).tracked_keys, 2u);
    ASSERT_TRUE(fence().remove_rule(parse_cidr(kNet4).cidr));
    EXPECT_EQ(keys_of(FENCE_MAP_CONN_COUNTS), Keys{other_key});
    EXPECT_EQ(conn_count(other_key), 2u);
    EXPECT_EQ(syns("203.0.113.10", 1), "P") << "no rule any more";
    EXPECT_EQ(syns("198.51.100.5", 1), "D") << "the other rule still counts";

    // Replacing a limit by a block forgets its counts too.
    add("198.51.100.0/24", Action::Block);
    EXPECT_EQ(keys_of(FENCE_MAP_CONN_COUNTS), Keys{});
}

TEST_F(LimitVerdicts, RemovingALimitStopsMetering) {
    add_limit(kNet4, "5/s", 1);
    EXPECT_EQ(syns("203.0.113.10", 2), "PD");
    ASSERT_TRUE(fence().remove_rule(parse_cidr(kNet4).cidr));
    EXPECT_EQ(syns("203.0.113.10", 3), "PPP");
    add_limit(kNet4, "5/s", 1);
    EXPECT_EQ(syns("203.0.113.10", 2), "PD") << "a new rule is a new id: fresh state";
    EXPECT_EQ(counts(kNet4), (RuleCounts{.matched = 2, .dropped = 1, .rate_dropped = 1, .tracked_keys = 1}));
}

// ---------------------------------------------------------------------------
// Many keys

TEST_F(LimitVerdicts, ThousandSourcesGetAKeyEach) {
    const std::string net = "100.64.0.0/16";
    add_limit(net, "100/h", 1);
    std::vector<Bytes> frames;
    for (int i = 0; i < 1000; ++i) {
        frames.push_back(syn_from("100.64." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)));
    }
    std::string first, second;
    for (const Bytes& f : frames) first += run(f);
    for (const Bytes& f : frames) second += run(f);
    EXPECT_EQ(first, repeat('P', 1000));
    EXPECT_EQ(second, repeat('D', 1000));
    EXPECT_EQ(counts(net), (RuleCounts{.matched = 2000, .dropped = 1000, .rate_dropped = 1000, .tracked_keys = 1000}));
    EXPECT_EQ(keys_of(FENCE_MAP_LIMIT_STATE).size(), 1000u);
    EXPECT_EQ(global(), (GlobalCounts{.seen = 2000, .passed = 1000, .dropped = 1000, .smtp = 2000, .smtp_syn = 2000}));
}

}  // namespace
