// The reference classifier (reference_classifier.h) on hand-written cases
// taken from the README's examples and rules, so that a disagreement in
// test_model.cpp can be trusted to point at the program or the README, not at
// the model. Plain C++: no privileges, no kernel.
#include "reference_classifier.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "frames.h"

using namespace smtpfence::model;
namespace fr = smtpfence::frames;

namespace {

Address addr(const std::string& text) {
    const fr::Bytes b = fr::address_bytes(text);
    Address a{};
    std::copy(b.begin(), b.end(), a.begin());
    return a;
}

ModelRule rule(const std::string& text, unsigned len, RuleAction action) {
    return {.family = fr::is_v6(text) ? 6 : 4, .addr = masked(addr(text), len), .prefixlen = len, .action = action};
}

ModelRule limit(const std::string& text, unsigned len, uint32_t burst, unsigned key_len) {
    ModelRule r = rule(text, len, RuleAction::Limit);
    r.burst = burst;
    r.key_prefixlen = key_len;
    return r;
}

ModelRule dry(ModelRule r) {
    r.dry_run = true;
    return r;
}

ModelRule expired(ModelRule r) {
    r.expired = true;
    return r;
}

std::string verdicts(ReferenceClassifier& m, const std::vector<fr::Bytes>& frames) {
    std::string out;
    for (const auto& f : frames) {
        const Verdict v = m.classify(f);
        out += v == Verdict::Drop ? 'D' : v == Verdict::Pass ? 'P' : 'N';
    }
    return out;
}

// A SYN from `src` with its own source port: a new connection attempt each.
fr::Bytes attempt(const std::string& src, uint16_t sport, uint16_t dport = 25) {
    const fr::Bytes l4 = fr::tcp({.dport = dport, .sport = sport});
    return fr::is_v6(src) ? fr::v6({.src = src}, l4) : fr::v4({.src = src}, l4);
}

// "smtpfence block 203.0.113.0/24; smtpfence allow 203.0.113.25": an allow
// inside a block wins for the addresses it covers.
TEST(ReferenceClassifier, TheLongestPrefixDecides) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block), rule("203.0.113.25", 32, RuleAction::Allow),
                           rule("2001:db8:bad::", 48, RuleAction::Block)});
    EXPECT_EQ(verdicts(m, {fr::syn4("203.0.113.7"), fr::syn4("203.0.113.25"), fr::syn4("198.51.100.1"),
                           fr::syn6("2001:db8:bad::1"), fr::syn6("2001:db8:bae::1")}),
              "DPPDP");
    EXPECT_EQ(m.counts(0), (RuleCounts{.matched = 1, .dropped = 1, .attempts = 1, .dropped_attempts = 1}));
    EXPECT_EQ(m.counts(1), (RuleCounts{.matched = 1, .attempts = 1}));
    EXPECT_EQ(m.global(), (GlobalCounts{.seen = 5, .passed = 3, .dropped = 2, .smtp = 5, .smtp_syn = 5,
                                        .smtp_attempts = 5, .dropped_attempts = 2}));
}

// "Only TCP to the SMTP ports (25, 465 and 587 unless you change them) is ever
// judged"; established sessions are not cut.
TEST(ReferenceClassifier, OnlyNewSmtpConnectionsAreJudged) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block)});
    EXPECT_EQ(verdicts(m, {fr::syn4("203.0.113.7", 465), fr::syn4("203.0.113.7", 587), fr::syn4("203.0.113.7", 22),
                           fr::segment_from("203.0.113.7", fr::kAck), fr::segment_from("203.0.113.7", fr::kSyn | fr::kAck),
                           fr::v4({.src = "203.0.113.7", .proto = IPPROTO_UDP}, fr::udp(25))}),
              "DDPPPP");
    EXPECT_EQ(m.global(), (GlobalCounts{.seen = 6, .passed = 4, .dropped = 2, .smtp = 4, .smtp_syn = 2,
                                        .smtp_attempts = 2, .dropped_attempts = 2}));
}

// "ports 25,587,2525: from the next packet on, these are the SMTP ports".
TEST(ReferenceClassifier, TheSmtpPortsAreConfigurable) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block)}, {25, 587, 2525});
    EXPECT_EQ(verdicts(m, {fr::syn4("203.0.113.7", 2525), fr::syn4("203.0.113.7", 465)}), "DP");
}

// "Attempts, not packets": a retransmitted SYN (same source, ports, sequence
// number) is judged again but counted as the same attempt.
TEST(ReferenceClassifier, ARetransmittedSynIsOneAttempt) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block)});
    const fr::Bytes syn = fr::syn4("203.0.113.7");
    EXPECT_EQ(verdicts(m, {syn, syn, syn, attempt("203.0.113.7", 40001)}), "DDDD");
    EXPECT_EQ(m.counts(0), (RuleCounts{.matched = 4, .dropped = 4, .attempts = 2, .dropped_attempts = 2}));
    EXPECT_EQ(m.global().smtp_attempts, 2u);
    EXPECT_EQ(m.global().dropped_attempts, 2u);
}

// "limit ... --rate 5/s --per rule" and the README's list line: SYN packets
// allowed, dropped by rate; attempts and dropped attempts.
TEST(ReferenceClassifier, ALimitAdmitsItsBurstPerKey) {
    ReferenceClassifier m({limit("198.51.100.0", 22, 2, 32), limit("203.0.113.0", 24, 2, 24)});
    EXPECT_EQ(verdicts(m, {attempt("198.51.100.7", 1), attempt("198.51.100.7", 2), attempt("198.51.100.7", 3),
                           attempt("198.51.100.8", 4)}),
              "PPDP")
        << "--per source: every address its own key";
    EXPECT_EQ(verdicts(m, {attempt("203.0.113.1", 1), attempt("203.0.113.2", 2), attempt("203.0.113.3", 3)}), "PPD")
        << "--per rule: one key";
    EXPECT_EQ(m.counts(0), (RuleCounts{.matched = 4, .dropped = 1, .rate_dropped = 1, .attempts = 4,
                                       .dropped_attempts = 1}));
}

TEST(ReferenceClassifier, Ipv6SourcesShareAKeyPerSlash64) {
    ReferenceClassifier m({limit("2001:db8:bad::", 48, 1, 64)});
    EXPECT_EQ(verdicts(m, {attempt("2001:db8:bad::1", 1), attempt("2001:db8:bad::2", 2),
                           attempt("2001:db8:bad:1::1", 3)}),
              "PDP");
}

// "--max-conns N: at most N concurrent SMTP connections per key".
TEST(ReferenceClassifier, MaxConnsRefusesWhileTheKeyIsFull) {
    ModelRule r = limit("203.0.113.0", 24, 1, 32);
    r.max_conns = 2;
    ReferenceClassifier m({r});
    m.set_open_connections(0, addr("203.0.113.7"), 2);
    EXPECT_EQ(verdicts(m, {attempt("203.0.113.7", 1), attempt("203.0.113.8", 2), attempt("203.0.113.8", 3)}), "DPD");
    EXPECT_EQ(m.counts(0), (RuleCounts{.matched = 3, .dropped = 2, .rate_dropped = 1, .conns_dropped = 1,
                                       .attempts = 3, .dropped_attempts = 2}));
}

// "an expiring allow inside a permanent block falls back to the block".
TEST(ReferenceClassifier, AnExpiredRuleStepsAside) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block),
                           expired(rule("203.0.113.25", 32, RuleAction::Allow)),
                           expired(rule("198.51.100.0", 24, RuleAction::Block))});
    EXPECT_EQ(verdicts(m, {fr::syn4("203.0.113.25"), fr::syn4("198.51.100.1")}), "DP");
    EXPECT_EQ(m.counts(1), RuleCounts{});
    EXPECT_EQ(m.counts(2), RuleCounts{});
}

// "a dry-run rule inside a block is never a hole in it", and only the
// longest dry run of the chain counts what it would drop.
TEST(ReferenceClassifier, DryRunsCountAndTheLiveRuleDecides) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block), dry(rule("203.0.113.0", 28, RuleAction::Block)),
                           dry(limit("203.0.113.0", 26, 1, 26))});
    EXPECT_EQ(verdicts(m, {attempt("203.0.113.7", 1), attempt("203.0.113.7", 2), attempt("203.0.113.40", 3),
                           attempt("203.0.113.40", 4)}),
              "DDDD");
    EXPECT_EQ(m.counts(0), (RuleCounts{.matched = 4, .dropped = 4, .attempts = 4, .dropped_attempts = 4}));
    EXPECT_EQ(m.counts(1), (RuleCounts{.matched = 2, .would_drop = 2, .attempts = 2, .would_drop_attempts = 2}));
    EXPECT_EQ(m.counts(2), (RuleCounts{.matched = 2, .would_drop = 1, .attempts = 2, .would_drop_attempts = 1}))
        << "only .40, which the /28 does not cover";
    EXPECT_EQ(m.global().would_drop, 3u);
    EXPECT_EQ(m.global().dropped, 4u);
}

TEST(ReferenceClassifier, ADryRunAloneDropsNothing) {
    ReferenceClassifier m({dry(rule("203.0.113.0", 24, RuleAction::Block))});
    EXPECT_EQ(verdicts(m, {fr::syn4("203.0.113.7"), fr::syn4("203.0.113.7")}), "PP");
    EXPECT_EQ(m.counts(0), (RuleCounts{.matched = 2, .would_drop = 2, .attempts = 1, .would_drop_attempts = 1}));
    EXPECT_EQ(m.global().would_drop, 2u);
    EXPECT_EQ(m.global().dropped, 0u);
}

// `top`: per source and port, SYN packets, attempts and verdicts, the last
// verdict and the rule that decided it (for a would-drop, the dry run).
TEST(ReferenceClassifier, SourcesAreAccountedPerPort) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Allow), dry(rule("203.0.113.0", 28, RuleAction::Block)),
                           rule("198.51.100.0", 24, RuleAction::Block)});
    const fr::Bytes syn = fr::syn4("203.0.113.7");
    EXPECT_EQ(verdicts(m, {syn, syn, fr::syn4("203.0.113.70", 587), fr::later_fragment_from("203.0.113.7"),
                           fr::syn4("198.51.100.1"), fr::segment_from("198.51.100.1", fr::kAck)}),
              "PPPPDP");
    EXPECT_EQ(m.sources().size(), 3u) << "a fragment and an established segment are no attempts";
    EXPECT_EQ(m.sources().at({4, addr("203.0.113.7"), 25}),
              (SourceCounts{.syn_packets = 2, .attempts = 1, .would_drop = 2, .last_verdict = SourceVerdict::WouldDrop,
                            .last_rule = 1}));
    EXPECT_EQ(m.sources().at({4, addr("203.0.113.70"), 587}),
              (SourceCounts{.syn_packets = 1, .attempts = 1, .passed = 1, .last_rule = 0}));
    EXPECT_EQ(m.sources().at({4, addr("198.51.100.1"), 25}),
              (SourceCounts{.syn_packets = 1, .attempts = 1, .dropped_attempts = 1, .blocked = 1,
                            .last_verdict = SourceVerdict::Blocked, .last_rule = 2}));
}

// "The program walks at most 8 rules of one source's prefix chain, the deciding
// rule included; past that it judges the source as if no rule covered it".
TEST(ReferenceClassifier, TheWalkEndsAfterEightRules) {
    std::vector<ModelRule> rules = {rule("203.0.113.0", 24, RuleAction::Block)};
    for (unsigned len = 32; len > 25; --len) rules.push_back(expired(rule("203.0.113.0", len, RuleAction::Allow)));
    ReferenceClassifier seven(rules);
    EXPECT_EQ(verdicts(seven, {fr::syn4("203.0.113.0")}), "D") << "seven expired rules, the block eighth";
    rules.push_back(expired(rule("203.0.113.0", 25, RuleAction::Allow)));
    ReferenceClassifier eight(rules);
    EXPECT_EQ(verdicts(eight, {fr::syn4("203.0.113.0")}), "P") << "eight expired rules, the block ninth";
}

// "Fragments": TCP whose port cannot be seen is dropped for a blocked source,
// whatever the port; passed otherwise (a limit meters connections).
TEST(ReferenceClassifier, PortlessFragmentsAreJudgedBySourceAlone) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block), limit("198.51.100.0", 24, 1, 24)});
    const fr::Bytes short_tcp = fr::truncated(fr::tcp({}), 8);
    EXPECT_EQ(verdicts(m, {fr::later_fragment_from("203.0.113.7"), fr::later_fragment_from("2001:db8::1"),
                           fr::v4({.src = "203.0.113.7", .frag = fr::kMoreFragments}, short_tcp),
                           fr::later_fragment_from("198.51.100.7"), fr::later_fragment_from("198.51.100.7"),
                           fr::v4({.src = "203.0.113.7", .proto = IPPROTO_UDP, .frag = 185}, fr::Bytes(16, 'x'))}),
              "DPDPPP");
    EXPECT_EQ(m.counts(0), (RuleCounts{.matched = 2, .dropped = 2}));
    EXPECT_EQ(m.counts(1), (RuleCounts{.matched = 2}));
    EXPECT_EQ(m.global().fragments, 5u);
}

// The parse: VLAN tags, IPv4 options, IPv6 extension headers, truncation.
TEST(ReferenceClassifier, HeadersAreWalked) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block), rule("2001:db8:bad::", 48, RuleAction::Block)});
    using fr::kAh, fr::kDestOpts, fr::kFragment, fr::kHopByHop, fr::kRouting;
    EXPECT_EQ(verdicts(m, {fr::v4({.src = "203.0.113.7", .ihl = 15}, fr::tcp({})),
                           fr::v4({.src = "203.0.113.7"}, fr::tcp({}), {fr::k8021AD, fr::k8021Q}),
                           fr::v4({.src = "203.0.113.7"}, fr::tcp({}), {fr::k8021AD, fr::k8021Q, fr::k8021Q}),
                           fr::v6({.src = "2001:db8:bad::1", .ext = {{kHopByHop}, {kAh}, {kDestOpts}, {kRouting}}},
                                  fr::tcp({})),
                           fr::v6({.src = "2001:db8:bad::1",
                                   .ext = {{kHopByHop}, {kDestOpts}, {kRouting}, {kAh}, {kDestOpts}, {kDestOpts},
                                           {kDestOpts}}},
                                  fr::tcp({.dport = 22})),
                           fr::v6({.src = "2001:db8:bad::1", .ext = {{kFragment, 0, true}}}, fr::tcp({.dport = 22}))}),
              "DDPDDP");
    EXPECT_EQ(m.global().fragments, 1u) << "the chain of seven";
    EXPECT_EQ(m.global().malformed, 0u);
}

TEST(ReferenceClassifier, TruncatedOrInvalidHeadersAreMalformed) {
    ReferenceClassifier m({rule("203.0.113.0", 24, RuleAction::Block), rule("2001:db8:bad::", 48, RuleAction::Block)});
    fr::Bytes wrong_version = fr::syn4("203.0.113.7");
    wrong_version[14] = 0x65;
    fr::Bytes zero_offset = fr::syn4("203.0.113.7");
    zero_offset[14 + 20 + 12] = 0x40;  // TCP data offset 4
    const fr::Bytes options = fr::v4({.src = "203.0.113.7", .ihl = 15, .frag = fr::kMoreFragments}, fr::tcp({}));
    const fr::Bytes hbh = fr::v6({.src = "2001:db8:bad::1", .proto = IPPROTO_UDP, .ext = {{fr::kDestOpts}}},
                                 fr::udp(25));
    EXPECT_EQ(verdicts(m, {fr::truncated(fr::syn4("203.0.113.7"), 13), fr::truncated(fr::syn4("203.0.113.7"), 33),
                           fr::v4({.src = "203.0.113.7", .ihl = 4}, fr::tcp({})), wrong_version, zero_offset,
                           fr::truncated(options, 14 + 40),
                           fr::truncated(hbh, 14 + 40 + 10),
                           fr::truncated(fr::syn6("2001:db8:bad::1"), 14 + 40 + 19)}),
              "NPPPPPPP");
    EXPECT_EQ(m.global().malformed, 7u);
    EXPECT_EQ(m.global().seen, 7u) << "the kernel runs no program on a frame shorter than Ethernet's header";
}

}  // namespace
