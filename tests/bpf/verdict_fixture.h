// The Verdicts fixture of the BPF tests: a block with an allow inside it per
// family, and a run's outcome (verdict, global and per-rule counter deltas)
// checked against a Case. Used by the parsing, rules and accounting tests.
#pragma once

#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "bpf_test_support.h"
#include "fence/rule_store.h"
#include "text/cidr.h"

namespace smtpfence::bpftest {

// ---------------------------------------------------------------------------
// What a run is expected to do

inline constexpr int kPass = XDP_PASS;
inline constexpr int kDrop = XDP_DROP;

// Deltas of the global counters.
inline constexpr GlobalCounts kSynDropped{.seen = 1, .dropped = 1, .smtp = 1, .smtp_syn = 1};
inline constexpr GlobalCounts kSynPassed{.seen = 1, .passed = 1, .smtp = 1, .smtp_syn = 1};
inline constexpr GlobalCounts kSmtpPassed{.seen = 1, .passed = 1, .smtp = 1};  // an established session's segment
inline constexpr GlobalCounts kIgnored{.seen = 1, .passed = 1};                // not TCP to an SMTP port
inline constexpr GlobalCounts kMalformed{.seen = 1, .passed = 1, .malformed = 1};
inline constexpr GlobalCounts kFragmentDropped{.seen = 1, .dropped = 1, .fragments = 1};
inline constexpr GlobalCounts kFragmentPassed{.seen = 1, .passed = 1, .fragments = 1};
inline constexpr GlobalCounts kNothing{};

// Per-rule counters (or their deltas), keyed by the rule's canonical CIDR.
struct RuleHits {
    uint64_t matched = 0, dropped = 0;
    bool operator==(const RuleHits&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const RuleHits& h) {
    return os << "{matched " << h.matched << ", dropped " << h.dropped << "}";
}

using Hits = std::map<std::string, RuleHits>;

inline const std::string kBlock4 = "203.0.113.0/24";
inline const std::string kAllow4 = "203.0.113.20/32";
inline const std::string kBlock6 = "2001:db8:bad::/48";
inline const std::string kAllow6 = "2001:db8:bad::20/128";

inline Hits blocked_by(const std::string& rule, uint64_t n = 1) {
    return {{rule, {n, n}}};
}
inline Hits allowed_by(const std::string& rule, uint64_t n = 1) {
    return {{rule, {n, 0}}};
}

struct Case {
    std::string what;
    Bytes frame;
    int verdict;
    GlobalCounts counts;
    Hits hits = {};  // the rules whose counters moved, and by how much
};

// ---------------------------------------------------------------------------
// Fixture: every test starts from a block with an allow inside it, per
// family, so that one source of each kind is at hand.

class Verdicts : public PinnedFenceTest {
protected:
    void SetUp() override {
        PinnedFenceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        add(kBlock4, Action::Block);
        add(kAllow4, Action::Allow);
        add(kBlock6, Action::Block);
        add(kAllow6, Action::Allow);
    }

    // Every rule's counters, summed over CPUs.
    Hits rule_counters() const {
        Hits out;
        for (const Rule& rule : fence().rules()) {
            out[format_cidr(rule.cidr)] = {rule.counters.matched, rule.counters.dropped};
        }
        return out;
    }

    struct Outcome {
        int verdict;
        GlobalCounts counts;
        Hits hits;  // rules whose counters moved
    };

    Outcome run(const Bytes& frame) const {
        const GlobalCounts stats_before = global();
        const Hits rules_before = rule_counters();
        Outcome out{run_raw(frame), global() - stats_before, {}};
        for (const auto& [cidr, after] : rule_counters()) {
            auto it = rules_before.find(cidr);
            RuleHits before = it == rules_before.end() ? RuleHits{} : it->second;
            if (after != before) out.hits[cidr] = {after.matched - before.matched, after.dropped - before.dropped};
        }
        return out;
    }

    void expect(const Case& c) const {
        SCOPED_TRACE(c.what);
        const Outcome out = run(c.frame);
        EXPECT_EQ(out.verdict, c.verdict) << "verdict (XDP_DROP=1, XDP_PASS=2)";
        EXPECT_EQ(out.counts, c.counts) << "global counter deltas";
        EXPECT_EQ(out.hits, c.hits) << "per-rule counter deltas";
    }

    void expect_all(const std::vector<Case>& cases) const {
        for (const Case& c : cases) expect(c);
    }

    // Runs every truncation of a blocked SYN `frame`, whose headers take its
    // first `headers_len` bytes and whose source `rule` blocks: below the
    // Ethernet header the kernel refuses to run the program at all; a cut in
    // the headers passes as malformed (no SYN to be seen); a cut in the
    // payload still leaves a complete SYN, which is dropped.
    void expect_truncations(const std::string& what, const Bytes& frame, size_t headers_len,
                            const std::string& rule) const {
        SCOPED_TRACE(what);
        ASSERT_LE(headers_len, frame.size());
        for (size_t len = 0; len <= frame.size(); ++len) {
            SCOPED_TRACE("truncated to " + std::to_string(len) + " of " + std::to_string(frame.size()) + " bytes");
            const Outcome out = run(truncated(frame, len));
            if (len < ETH_HLEN) {
                EXPECT_EQ(out.verdict, -EINVAL) << "test run below ETH_HLEN";
                EXPECT_EQ(out.counts, kNothing);
                EXPECT_EQ(out.hits, Hits{});
            } else if (len < headers_len) {
                EXPECT_EQ(out.verdict, kPass);
                EXPECT_EQ(out.counts, kMalformed);
                EXPECT_EQ(out.hits, Hits{});
            } else {
                EXPECT_EQ(out.verdict, kDrop);
                EXPECT_EQ(out.counts, kSynDropped);
                EXPECT_EQ(out.hits, blocked_by(rule));
            }
        }
    }
};

}  // namespace smtpfence::bpftest
