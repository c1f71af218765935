// The XDP program's verdicts and counters, on crafted frames, through
// bpf_prog_test_run_opts: the real program against real (pinned) maps, driven
// by the same Fence that the CLI uses. Needs root; skipped otherwise.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "bpf_test_support.h"
#include "text/cidr.h"
#include "fence/rule_store.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;

namespace {

// ---------------------------------------------------------------------------
// What a run is expected to do

constexpr int kPass = XDP_PASS;
constexpr int kDrop = XDP_DROP;

// Deltas of the global counters.
constexpr GlobalCounts kSynDropped{.seen = 1, .dropped = 1, .smtp = 1, .smtp_syn = 1};
constexpr GlobalCounts kSynPassed{.seen = 1, .passed = 1, .smtp = 1, .smtp_syn = 1};
constexpr GlobalCounts kSmtpPassed{.seen = 1, .passed = 1, .smtp = 1};  // an established session's segment
constexpr GlobalCounts kIgnored{.seen = 1, .passed = 1};                // not TCP to an SMTP port
constexpr GlobalCounts kMalformed{.seen = 1, .passed = 1, .malformed = 1};
constexpr GlobalCounts kFragmentDropped{.seen = 1, .dropped = 1, .fragments = 1};
constexpr GlobalCounts kFragmentPassed{.seen = 1, .passed = 1, .fragments = 1};
constexpr GlobalCounts kNothing{};

// Per-rule counters (or their deltas), keyed by the rule's canonical CIDR.
struct RuleHits {
    uint64_t matched = 0, dropped = 0;
    bool operator==(const RuleHits&) const = default;
};

std::ostream& operator<<(std::ostream& os, const RuleHits& h) {
    return os << "{matched " << h.matched << ", dropped " << h.dropped << "}";
}

using Hits = std::map<std::string, RuleHits>;

const std::string kBlock4 = "203.0.113.0/24";
const std::string kAllow4 = "203.0.113.20/32";
const std::string kBlock6 = "2001:db8:bad::/48";
const std::string kAllow6 = "2001:db8:bad::20/128";

Hits blocked_by(const std::string& rule, uint64_t n = 1) { return {{rule, {n, n}}}; }
Hits allowed_by(const std::string& rule, uint64_t n = 1) { return {{rule, {n, 0}}}; }

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
        if (IsSkipped()) return;
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

// ---------------------------------------------------------------------------
// IPv4 SYNs to SMTP ports

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

TEST_F(Verdicts, EstablishedSessionsAreNotCut) {
    auto segment = [](uint8_t flags, size_t payload = 0) {
        return v4({.src = "203.0.113.5"}, tcp({.dport = 25, .flags = flags, .payload = payload}));
    };
    expect_all({
        {"SYN+ACK", segment(kSyn | kAck), kPass, kSmtpPassed},
        {"ACK", segment(kAck), kPass, kSmtpPassed},
        {"FIN", segment(kFin), kPass, kSmtpPassed},
        {"FIN+ACK", segment(kFin | kAck), kPass, kSmtpPassed},
        {"RST", segment(kRst), kPass, kSmtpPassed},
        {"RST+ACK", segment(kRst | kAck), kPass, kSmtpPassed},
        {"ACK with payload", segment(kPsh | kAck, 200), kPass, kSmtpPassed},
        {"v6 ACK with payload", v6({.src = "2001:db8:bad::5"}, tcp({.flags = kPsh | kAck, .payload = 200})), kPass,
         kSmtpPassed},
        {"v6 SYN+ACK", v6({.src = "2001:db8:bad::5"}, tcp({.flags = kSyn | kAck})), kPass, kSmtpPassed},
    });
}

TEST_F(Verdicts, SynToOtherPortsPasses) {
    expect_all({
        {"to 22", syn4("203.0.113.5", 22), kPass, kIgnored},
        {"to 80", syn4("203.0.113.5", 80), kPass, kIgnored},
        {"to 2525", syn4("203.0.113.5", 2525), kPass, kIgnored},
        {"to 24", syn4("203.0.113.5", 24), kPass, kIgnored},
        {"to 26", syn4("203.0.113.5", 26), kPass, kIgnored},
        {"v6 to 2525", syn6("2001:db8:bad::5", 2525), kPass, kIgnored},
    });
}

TEST_F(Verdicts, SetPortsChangesWhichPortsAreSmtp) {
    fence().set_ports({25, 2525});
    expect_all({
        {"to 2525", syn4("203.0.113.5", 2525), kDrop, kSynDropped, blocked_by(kBlock4)},
        {"to 25", syn4("203.0.113.5", 25), kDrop, kSynDropped, blocked_by(kBlock4)},
        {"to 587", syn4("203.0.113.5", 587), kPass, kIgnored},
        {"to 465", syn4("203.0.113.5", 465), kPass, kIgnored},
        {"v6 to 2525", syn6("2001:db8:bad::5", 2525), kDrop, kSynDropped, blocked_by(kBlock6)},
    });
}

// ---------------------------------------------------------------------------
// IPv4 header length

TEST_F(Verdicts, Ipv4OptionsAreSkipped) {
    // The options are NOPs (0x0101): a parser reading TCP at a fixed offset
    // would see port 257 and let the SYN through.
    for (uint8_t ihl = 6; ihl <= 15; ++ihl) {
        SCOPED_TRACE("IHL " + std::to_string(ihl));
        expect_all({
            {"blocked to 25", v4({.src = "203.0.113.5", .ihl = ihl}, tcp({.dport = 25})), kDrop, kSynDropped,
             blocked_by(kBlock4)},
            {"blocked to 22", v4({.src = "203.0.113.5", .ihl = ihl}, tcp({.dport = 22})), kPass, kIgnored},
            {"allowed to 25", v4({.src = "203.0.113.20", .ihl = ihl}, tcp({.dport = 25})), kPass, kSynPassed,
             allowed_by(kAllow4)},
        });
    }
}

TEST_F(Verdicts, Ipv4HeaderShorterThanMinimumIsMalformed) {
    for (uint8_t ihl = 0; ihl < 5; ++ihl) {
        SCOPED_TRACE("IHL " + std::to_string(ihl));
        expect({"blocked SYN", v4({.src = "203.0.113.5", .ihl = ihl}, tcp({.dport = 25})), kPass, kMalformed});
    }
}

TEST_F(Verdicts, Ipv4EthertypeWithOtherVersionIsMalformed) {
    Bytes frame = syn4("203.0.113.5");
    frame[ETH_HLEN] = 0x65;  // version 6, IHL 5
    expect({"version 6 in an IPv4 frame", frame, kPass, kMalformed});
}

TEST_F(Verdicts, Ipv4OptionsBeyondTheFrameAreMalformed) {
    // IHL 15 claims 60 header bytes; the frame ends before TCP does.
    Bytes frame = truncated(v4({.src = "203.0.113.5", .ihl = 15}, tcp({})), ETH_HLEN + 60 + 10);
    expect({"IHL 15, TCP cut after 10 bytes", frame, kPass, kMalformed});
}

// ---------------------------------------------------------------------------
// VLAN tags

TEST_F(Verdicts, VlanTagsDoNotChangeVerdicts) {
    const std::vector<std::pair<std::string, std::vector<uint16_t>>> taggings = {
        {"untagged", {}},
        {"802.1Q", {k8021Q}},
        {"802.1ad", {k8021AD}},
        {"802.1ad + 802.1Q", {k8021AD, k8021Q}},
        {"802.1Q + 802.1Q", {k8021Q, k8021Q}},
    };
    for (const auto& [name, tags] : taggings) {
        SCOPED_TRACE(name);
        expect_all({
            {"v4 blocked to 25", v4({.src = "203.0.113.5"}, tcp({}), tags), kDrop, kSynDropped, blocked_by(kBlock4)},
            {"v4 blocked to 22", v4({.src = "203.0.113.5"}, tcp({.dport = 22}), tags), kPass, kIgnored},
            {"v4 blocked ACK", v4({.src = "203.0.113.5"}, tcp({.flags = kAck}), tags), kPass, kSmtpPassed},
            {"v4 allowed", v4({.src = "203.0.113.20"}, tcp({}), tags), kPass, kSynPassed, allowed_by(kAllow4)},
            {"v4 unlisted", v4({.src = "198.51.100.1"}, tcp({}), tags), kPass, kSynPassed},
            {"v4 non-first fragment", v4({.src = "203.0.113.5", .frag = 10}, tcp({}), tags), kDrop,
             kFragmentDropped, blocked_by(kBlock4)},
            {"v6 blocked to 25", v6({.src = "2001:db8:bad::5"}, tcp({}), tags), kDrop, kSynDropped,
             blocked_by(kBlock6)},
            {"v6 allowed", v6({.src = "2001:db8:bad::20"}, tcp({}), tags), kPass, kSynPassed, allowed_by(kAllow6)},
        });
    }
}

TEST_F(Verdicts, TruncatedVlanTagIsMalformed) {
    const Bytes one = v4({.src = "203.0.113.5"}, tcp({}), {k8021Q});
    const Bytes two = v4({.src = "203.0.113.5"}, tcp({}), {k8021AD, k8021Q});
    expect_all({
        {"802.1Q, nothing after the TPID", truncated(one, ETH_HLEN), kPass, kMalformed},
        {"802.1Q, half a tag", truncated(one, ETH_HLEN + 2), kPass, kMalformed},
        {"802.1Q, tag but no IPv4 header", truncated(one, ETH_HLEN + 4), kPass, kMalformed},
        {"802.1ad + 802.1Q, outer tag cut", truncated(two, ETH_HLEN + 3), kPass, kMalformed},
        {"802.1ad + 802.1Q, inner tag cut", truncated(two, ETH_HLEN + 4 + 2), kPass, kMalformed},
    });
}

TEST_F(Verdicts, ThirdVlanTagIsNotParsed) {
    // Only two tags are walked: behind a third, the frame is not IP to us.
    expect({"three tags", v4({.src = "203.0.113.5"}, tcp({}), {k8021AD, k8021Q, k8021Q}), kPass, kIgnored});
}

// ---------------------------------------------------------------------------
// IPv6

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

TEST_F(Verdicts, Ipv6ExtensionHeadersAreWalked) {
    const std::vector<Ext6> chain = {{kHopByHop}, {kDestOpts}, {kRouting}};
    const std::vector<Ext6> with_ah = {{kHopByHop}, {kAh}, {kDestOpts}};
    // Six headers: exactly as many as the program walks.
    const std::vector<Ext6> six = {{kHopByHop}, {kDestOpts}, {kRouting}, {kFragment}, {kAh}, {kDestOpts}};
    expect_all({
        {"HBH+DSTOPT+ROUTING, blocked to 25", v6({.src = "2001:db8:bad::5", .ext = chain}, tcp({})), kDrop,
         kSynDropped, blocked_by(kBlock6)},
        {"HBH+DSTOPT+ROUTING, blocked to 22", v6({.src = "2001:db8:bad::5", .ext = chain}, tcp({.dport = 22})),
         kPass, kIgnored},
        {"HBH+DSTOPT+ROUTING, allowed", v6({.src = "2001:db8:bad::20", .ext = chain}, tcp({})), kPass, kSynPassed,
         allowed_by(kAllow6)},
        {"HBH+DSTOPT+ROUTING, blocked ACK", v6({.src = "2001:db8:bad::5", .ext = chain}, tcp({.flags = kAck})),
         kPass, kSmtpPassed},
        {"HBH+AH+DSTOPT, blocked to 25", v6({.src = "2001:db8:bad::5", .ext = with_ah}, tcp({})), kDrop,
         kSynDropped, blocked_by(kBlock6)},
        {"HBH+AH+DSTOPT, blocked to 22", v6({.src = "2001:db8:bad::5", .ext = with_ah}, tcp({.dport = 22})), kPass,
         kIgnored},
        {"six headers, blocked to 25", v6({.src = "2001:db8:bad::5", .ext = six}, tcp({})), kDrop, kSynDropped,
         blocked_by(kBlock6)},
        {"six headers, blocked to 22", v6({.src = "2001:db8:bad::5", .ext = six}, tcp({.dport = 22})), kPass,
         kIgnored},
        {"HBH+DSTOPT+ROUTING then UDP", v6({.src = "2001:db8:bad::5", .proto = IPPROTO_UDP, .ext = chain}, udp(25)),
         kPass, kIgnored},
    });
}

TEST_F(Verdicts, Ipv6ChainLongerThanWalkedIsJudgedBySourceAlone) {
    const std::vector<Ext6> seven = {{kHopByHop}, {kDestOpts}, {kRouting}, {kAh},
                                     {kDestOpts}, {kDestOpts}, {kDestOpts}};
    expect_all({
        {"blocked, to 25", v6({.src = "2001:db8:bad::5", .ext = seven}, tcp({})), kDrop, kFragmentDropped,
         blocked_by(kBlock6)},
        {"blocked, to 22", v6({.src = "2001:db8:bad::5", .ext = seven}, tcp({.dport = 22})), kDrop,
         kFragmentDropped, blocked_by(kBlock6)},
        {"blocked, ACK", v6({.src = "2001:db8:bad::5", .ext = seven}, tcp({.flags = kAck})), kDrop,
         kFragmentDropped, blocked_by(kBlock6)},
        {"allowed", v6({.src = "2001:db8:bad::20", .ext = seven}, tcp({})), kPass, kFragmentPassed,
         allowed_by(kAllow6)},
        {"unlisted", v6({.src = "2001:db8:1::1", .ext = seven}, tcp({})), kPass, kFragmentPassed},
    });
}

TEST_F(Verdicts, Ipv6VersionMismatchIsMalformed) {
    Bytes frame = syn6("2001:db8:bad::5");
    frame[ETH_HLEN] = 0x40;  // version 4 in an IPv6 frame
    expect({"version 4 in an IPv6 frame", frame, kPass, kMalformed});
}

// ---------------------------------------------------------------------------
// Fragments

TEST_F(Verdicts, Ipv4FirstFragmentIsJudgedLikeAWholeSegment) {
    const Bytes short_tcp = truncated(tcp({}), 8);  // ports and sequence number, no flags
    expect_all({
        {"first fragment, SYN to 25, blocked", v4({.src = "203.0.113.5", .frag = kMoreFragments}, tcp({})), kDrop,
         kSynDropped, blocked_by(kBlock4)},
        {"first fragment, SYN to 22, blocked", v4({.src = "203.0.113.5", .frag = kMoreFragments}, tcp({.dport = 22})),
         kPass, kIgnored},
        {"first fragment, SYN to 25, allowed", v4({.src = "203.0.113.20", .frag = kMoreFragments}, tcp({})), kPass,
         kSynPassed, allowed_by(kAllow4)},
        {"first fragment, ACK to 25, blocked",
         v4({.src = "203.0.113.5", .frag = kMoreFragments}, tcp({.flags = kAck, .payload = 100})), kPass,
         kSmtpPassed},
        {"first fragment too short for TCP, blocked", v4({.src = "203.0.113.5", .frag = kMoreFragments}, short_tcp),
         kDrop, kFragmentDropped, blocked_by(kBlock4)},
        {"first fragment too short for TCP, unlisted", v4({.src = "198.51.100.1", .frag = kMoreFragments}, short_tcp),
         kPass, kFragmentPassed},
    });
}

TEST_F(Verdicts, Ipv4LaterFragmentsAreJudgedBySourceAlone) {
    const Bytes data(64, 'x');  // the middle of some TCP segment: no header
    expect_all({
        {"offset 8, MF, blocked", v4({.src = "203.0.113.5", .frag = kMoreFragments | 1}, data), kDrop,
         kFragmentDropped, blocked_by(kBlock4)},
        {"offset 1480, last, blocked", v4({.src = "203.0.113.5", .frag = 185}, data), kDrop, kFragmentDropped,
         blocked_by(kBlock4)},
        {"largest offset, blocked", v4({.src = "203.0.113.5", .frag = 0x1fff}, data), kDrop, kFragmentDropped,
         blocked_by(kBlock4)},
        {"later fragment, allowed", v4({.src = "203.0.113.20", .frag = 185}, data), kPass, kFragmentPassed,
         allowed_by(kAllow4)},
        {"later fragment, unlisted", v4({.src = "198.51.100.1", .frag = 185}, data), kPass, kFragmentPassed},
        {"later UDP fragment, blocked", v4({.src = "203.0.113.5", .proto = IPPROTO_UDP, .frag = 185}, data), kPass,
         kIgnored},
        {"later ICMP fragment, blocked", v4({.src = "203.0.113.5", .proto = IPPROTO_ICMP, .frag = 185}, data), kPass,
         kIgnored},
    });
}

TEST_F(Verdicts, Ipv6FragmentsAreJudgedLikeIpv4Ones) {
    const Bytes data(64, 'x');
    auto frag = [](const char* src, uint16_t offset, bool more, uint8_t proto = IPPROTO_TCP) {
        return Ip6{.src = src, .proto = proto, .ext = {{kFragment, offset, more}}};
    };
    expect_all({
        {"first fragment, SYN to 25, blocked", v6(frag("2001:db8:bad::5", 0, true), tcp({})), kDrop, kSynDropped,
         blocked_by(kBlock6)},
        {"first fragment, SYN to 22, blocked", v6(frag("2001:db8:bad::5", 0, true), tcp({.dport = 22})), kPass,
         kIgnored},
        {"first fragment, SYN to 25, allowed", v6(frag("2001:db8:bad::20", 0, true), tcp({})), kPass, kSynPassed,
         allowed_by(kAllow6)},
        {"later fragment, TCP, blocked", v6(frag("2001:db8:bad::5", 181, true), data), kDrop, kFragmentDropped,
         blocked_by(kBlock6)},
        {"last fragment, TCP, blocked", v6(frag("2001:db8:bad::5", 181, false), data), kDrop, kFragmentDropped,
         blocked_by(kBlock6)},
        {"later fragment, TCP, allowed", v6(frag("2001:db8:bad::20", 181, true), data), kPass, kFragmentPassed,
         allowed_by(kAllow6)},
        {"later fragment, TCP, unlisted", v6(frag("2001:db8:1::1", 181, true), data), kPass, kFragmentPassed},
        {"later fragment, UDP, blocked", v6(frag("2001:db8:bad::5", 181, true, IPPROTO_UDP), data), kPass, kIgnored},
        {"first fragment too short for TCP, blocked", v6(frag("2001:db8:bad::5", 0, true), truncated(tcp({}), 8)),
         kDrop, kFragmentDropped, blocked_by(kBlock6)},
        {"first fragment too short for TCP, unlisted", v6(frag("2001:db8:1::1", 0, true), truncated(tcp({}), 8)),
         kPass, kFragmentPassed},
        {"later fragment behind HBH, TCP, blocked",
         v6({.src = "2001:db8:bad::5", .ext = {{kHopByHop}, {kFragment, 181, true}}}, data), kDrop,
         kFragmentDropped, blocked_by(kBlock6)},
    });
}

// ---------------------------------------------------------------------------
// Not TCP

TEST_F(Verdicts, NonTcpPasses) {
    expect_all({
        {"UDP to 25, blocked", v4({.src = "203.0.113.5", .proto = IPPROTO_UDP}, udp(25)), kPass, kIgnored},
        {"ICMP echo, blocked", v4({.src = "203.0.113.5", .proto = IPPROTO_ICMP}, icmp_echo(8)), kPass, kIgnored},
        {"v6 UDP to 25, blocked", v6({.src = "2001:db8:bad::5", .proto = IPPROTO_UDP}, udp(25)), kPass, kIgnored},
        {"ICMPv6 echo, blocked", v6({.src = "2001:db8:bad::5", .proto = IPPROTO_ICMPV6}, icmp_echo(128)), kPass,
         kIgnored},
        {"ARP from a blocked address", ether(ETH_P_ARP, arp_request("203.0.113.5")), kPass, kIgnored},
        {"unknown ethertype, header only", ether(0x88b5, {}), kPass, kIgnored},
    });
}

// ---------------------------------------------------------------------------
// Truncation

TEST_F(Verdicts, EveryTruncationOfABlockedSynPassesAsMalformed) {
    struct Frame {
        std::string what;
        Bytes bytes;
        size_t payload;    // bytes after the TCP header
        std::string rule;  // the rule that drops the whole frame
    };
    const std::vector<Frame> frames = {
        {"v4", syn4("203.0.113.5"), 0, kBlock4},
        {"v6", syn6("2001:db8:bad::5"), 0, kBlock6},
        {"v4, IHL 15, 802.1ad + 802.1Q", v4({.src = "203.0.113.5", .ihl = 15}, tcp({}), {k8021AD, k8021Q}), 0,
         kBlock4},
        {"v6, HBH+AH+DSTOPT+ROUTING, 802.1Q",
         v6({.src = "2001:db8:bad::5", .ext = {{kHopByHop}, {kAh}, {kDestOpts}, {kRouting}}}, tcp({}), {k8021Q}), 0,
         kBlock6},
        {"v4 SYN with 12 bytes of data", v4({.src = "203.0.113.5"}, tcp({.payload = 12})), 12, kBlock4},
        {"v6 SYN with 12 bytes of data", v6({.src = "2001:db8:bad::5"}, tcp({.payload = 12})), 12, kBlock6},
    };
    for (const Frame& f : frames) expect_truncations(f.what, f.bytes, f.bytes.size() - f.payload, f.rule);
}

// ---------------------------------------------------------------------------
// Rule precedence and per-rule counters

TEST_F(Verdicts, LongestPrefixDecides) {
    add("198.51.100.0/24", Action::Block);
    add("198.51.100.0/25", Action::Allow);
    add("198.51.100.64/26", Action::Block);
    expect_all({
        {".70 (block /26)", syn4("198.51.100.70"), kDrop, kSynDropped, blocked_by("198.51.100.64/26")},
        {".10 (allow /25)", syn4("198.51.100.10"), kPass, kSynPassed, allowed_by("198.51.100.0/25")},
        {".200 (block /24)", syn4("198.51.100.200"), kDrop, kSynDropped, blocked_by("198.51.100.0/24")},
        {".127 (block /26, last address)", syn4("198.51.100.127"), kDrop, kSynDropped,
         blocked_by("198.51.100.64/26")},
        {".128 (block /24)", syn4("198.51.100.128"), kDrop, kSynDropped, blocked_by("198.51.100.0/24")},
        {".63 (allow /25)", syn4("198.51.100.63"), kPass, kSynPassed, allowed_by("198.51.100.0/25")},
    });

    ASSERT_TRUE(fence().remove_rule(parse_cidr("198.51.100.64/26").cidr));
    expect({".70 after removing the /26", syn4("198.51.100.70"), kPass, kSynPassed, allowed_by("198.51.100.0/25")});

    fence().add_rule(parse_cidr("198.51.100.0/25").cidr, Action::Block, "now blocked", "gtest");
    expect({".10 after the /25 became block", syn4("198.51.100.10"), kDrop, kSynDropped,
            blocked_by("198.51.100.0/25")});
    expect({".70 after the /25 became block", syn4("198.51.100.70"), kDrop, kSynDropped,
            blocked_by("198.51.100.0/25")});
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

TEST_F(Verdicts, RuleCountersCountTheDecidingRuleOnly) {
    for (int i = 0; i < 3; ++i) ASSERT_EQ(run_raw(syn4("203.0.113.5")), kDrop);
    for (int i = 0; i < 2; ++i) ASSERT_EQ(run_raw(syn4("203.0.113.20")), kPass);
    // Neither established segments nor other ports count against a rule.
    ASSERT_EQ(run_raw(v4({.src = "203.0.113.5"}, tcp({.flags = kAck}))), kPass);
    ASSERT_EQ(run_raw(syn4("203.0.113.5", 22)), kPass);
    ASSERT_EQ(run_raw(syn6("2001:db8:bad::5")), kDrop);
    ASSERT_EQ(run_raw(v6({.src = "2001:db8:bad::5", .ext = {{kFragment, 100, true}}}, Bytes(32, 'x'))), kDrop);
    ASSERT_EQ(run_raw(syn6("2001:db8:bad::20")), kPass);
    ASSERT_EQ(run_raw(syn4("198.51.100.1")), kPass);

    EXPECT_EQ(rule_counters(), (Hits{
                                   {kBlock4, {3, 3}},
                                   {kAllow4, {2, 0}},
                                   {kBlock6, {2, 2}},
                                   {kAllow6, {1, 0}},
                               }));
    EXPECT_EQ(global(),
              (GlobalCounts{.seen = 11, .passed = 6, .dropped = 5, .smtp = 9, .smtp_syn = 8, .fragments = 1}));
}

TEST_F(Verdicts, SameActionKeepsCountersNewActionResetsThem) {
    for (int i = 0; i < 2; ++i) ASSERT_EQ(run_raw(syn4("203.0.113.5")), kDrop);
    add(kBlock4, Action::Block);  // same action: an update, counters kept
    EXPECT_EQ(rule_counters()[kBlock4], (RuleHits{2, 2}));
    add(kBlock4, Action::Allow);  // new action: counters start over
    EXPECT_EQ(rule_counters()[kBlock4], (RuleHits{0, 0}));
    expect({"after block became allow", syn4("203.0.113.5"), kPass, kSynPassed, allowed_by(kBlock4)});
}

}  // namespace
