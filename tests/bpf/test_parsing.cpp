// How the XDP program reads a frame, on crafted frames through
// bpf_prog_test_run_opts: which segments are new connections to an SMTP port
// (flags, ports, set-ports), IPv4 header lengths, VLAN tags, IPv6 extension
// headers, fragments, what is not TCP, and truncation at every byte. Each
// frame's verdict and counter deltas are asserted against a block with an
// allow inside it (verdict_fixture.h). Needs root; skipped otherwise.
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bpf_test_support.h"
#include "verdict_fixture.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;

namespace {

// ---------------------------------------------------------------------------
// Which segments are new connections to an SMTP port

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

TEST_F(Verdicts, Ipv4OptionsCutByTheFrameAreMalformed) {
    // IHL 15 claims 60 header bytes; each frame ends inside the options. A
    // fragment cut there was once judged by source alone (and dropped for
    // this blocked source) instead of passed as a truncated header.
    const Bytes first_fragment = v4({.src = "203.0.113.5", .ihl = 15, .frag = kMoreFragments}, tcp({}));
    const Bytes later_fragment = v4({.src = "203.0.113.5", .ihl = 15, .frag = 185}, Bytes(24, 'x'));
    const Bytes udp_datagram = v4({.src = "203.0.113.5", .proto = IPPROTO_UDP, .ihl = 15}, udp(25));
    expect_all({
        {"first fragment, 40 of 60 header bytes", truncated(first_fragment, ETH_HLEN + 40), kPass, kMalformed},
        {"later fragment, 40 of 60 header bytes", truncated(later_fragment, ETH_HLEN + 40), kPass, kMalformed},
        {"UDP, 40 of 60 header bytes", truncated(udp_datagram, ETH_HLEN + 40), kPass, kMalformed},
    });
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
            {"v4 non-first fragment", v4({.src = "203.0.113.5", .frag = 10}, tcp({}), tags), kDrop, kFragmentDropped,
             blocked_by(kBlock4)},
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
// IPv6 extension headers

TEST_F(Verdicts, Ipv6ExtensionHeadersAreWalked) {
    const std::vector<Ext6> chain = {{kHopByHop}, {kDestOpts}, {kRouting}};
    const std::vector<Ext6> with_ah = {{kHopByHop}, {kAh}, {kDestOpts}};
    // Six headers: exactly as many as the program walks.
    const std::vector<Ext6> six = {{kHopByHop}, {kDestOpts}, {kRouting}, {kFragment}, {kAh}, {kDestOpts}};
    expect_all({
        {"HBH+DSTOPT+ROUTING, blocked to 25", v6({.src = "2001:db8:bad::5", .ext = chain}, tcp({})), kDrop, kSynDropped,
         blocked_by(kBlock6)},
        {"HBH+DSTOPT+ROUTING, blocked to 22", v6({.src = "2001:db8:bad::5", .ext = chain}, tcp({.dport = 22})), kPass,
         kIgnored},
        {"HBH+DSTOPT+ROUTING, allowed", v6({.src = "2001:db8:bad::20", .ext = chain}, tcp({})), kPass, kSynPassed,
         allowed_by(kAllow6)},
        {"HBH+DSTOPT+ROUTING, blocked ACK", v6({.src = "2001:db8:bad::5", .ext = chain}, tcp({.flags = kAck})), kPass,
         kSmtpPassed},
        {"HBH+AH+DSTOPT, blocked to 25", v6({.src = "2001:db8:bad::5", .ext = with_ah}, tcp({})), kDrop, kSynDropped,
         blocked_by(kBlock6)},
        {"HBH+AH+DSTOPT, blocked to 22", v6({.src = "2001:db8:bad::5", .ext = with_ah}, tcp({.dport = 22})), kPass,
         kIgnored},
        {"six headers, blocked to 25", v6({.src = "2001:db8:bad::5", .ext = six}, tcp({})), kDrop, kSynDropped,
         blocked_by(kBlock6)},
        {"six headers, blocked to 22", v6({.src = "2001:db8:bad::5", .ext = six}, tcp({.dport = 22})), kPass, kIgnored},
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
        {"blocked, to 22", v6({.src = "2001:db8:bad::5", .ext = seven}, tcp({.dport = 22})), kDrop, kFragmentDropped,
         blocked_by(kBlock6)},
        {"blocked, ACK", v6({.src = "2001:db8:bad::5", .ext = seven}, tcp({.flags = kAck})), kDrop, kFragmentDropped,
         blocked_by(kBlock6)},
        {"allowed", v6({.src = "2001:db8:bad::20", .ext = seven}, tcp({})), kPass, kFragmentPassed,
         allowed_by(kAllow6)},
        {"unlisted", v6({.src = "2001:db8:1::1", .ext = seven}, tcp({})), kPass, kFragmentPassed},
    });
}

TEST_F(Verdicts, Ipv6ExtensionHeadersCutByTheFrameAreMalformed) {
    // Each frame ends inside a destination-options header (16 bytes, cut
    // after 8). Only a header's first two bytes were once checked: a cut
    // header was skipped whole, so these were judged by source alone
    // (dropped) or passed as UDP instead of passed as truncated headers.
    const Bytes after_fragment =
        v6({.src = "2001:db8:bad::5", .ext = {{kFragment, 0, true}, {kDestOpts}}}, tcp({}));
    const Bytes before_udp = v6({.src = "2001:db8:bad::5", .proto = IPPROTO_UDP, .ext = {{kDestOpts}}}, udp(25));
    // Seven headers; the sixth, the last one walked, starts 88 bytes into the chain.
    const Bytes seven = v6({.src = "2001:db8:bad::5",
                            .ext = {{kHopByHop}, {kDestOpts}, {kRouting}, {kAh}, {kDestOpts}, {kDestOpts}, {kDestOpts}}},
                           tcp({}));
    expect_all({
        {"first fragment, then destination options cut", truncated(after_fragment, ETH_HLEN + 40 + 8 + 8), kPass,
         kMalformed},
        {"destination options cut, then UDP", truncated(before_udp, ETH_HLEN + 40 + 8), kPass, kMalformed},
        {"seven headers, the sixth cut", truncated(seven, ETH_HLEN + 40 + 88 + 8), kPass, kMalformed},
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
         v4({.src = "203.0.113.5", .frag = kMoreFragments}, tcp({.flags = kAck, .payload = 100})), kPass, kSmtpPassed},
        {"first fragment too short for TCP, blocked", v4({.src = "203.0.113.5", .frag = kMoreFragments}, short_tcp),
         kDrop, kFragmentDropped, blocked_by(kBlock4)},
        {"first fragment too short for TCP, unlisted", v4({.src = "198.51.100.1", .frag = kMoreFragments}, short_tcp),
         kPass, kFragmentPassed},
    });
}

TEST_F(Verdicts, Ipv4LaterFragmentsAreJudgedBySourceAlone) {
    const Bytes data(64, 'x');  // the middle of some TCP segment: no header
    expect_all({
        {"offset 8, MF, blocked", v4({.src = "203.0.113.5", .frag = kMoreFragments | 1}, data), kDrop, kFragmentDropped,
         blocked_by(kBlock4)},
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
        {"first fragment too short for TCP, unlisted", v6(frag("2001:db8:1::1", 0, true), truncated(tcp({}), 8)), kPass,
         kFragmentPassed},
        {"later fragment behind HBH, TCP, blocked",
         v6({.src = "2001:db8:bad::5", .ext = {{kHopByHop}, {kFragment, 181, true}}}, data), kDrop, kFragmentDropped,
         blocked_by(kBlock6)},
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
        {"v4, IHL 15, 802.1ad + 802.1Q", v4({.src = "203.0.113.5", .ihl = 15}, tcp({}), {k8021AD, k8021Q}), 0, kBlock4},
        {"v6, HBH+AH+DSTOPT+ROUTING, 802.1Q",
         v6({.src = "2001:db8:bad::5", .ext = {{kHopByHop}, {kAh}, {kDestOpts}, {kRouting}}}, tcp({}), {k8021Q}), 0,
         kBlock6},
        {"v4 SYN with 12 bytes of data", v4({.src = "203.0.113.5"}, tcp({.payload = 12})), 12, kBlock4},
        {"v6 SYN with 12 bytes of data", v6({.src = "2001:db8:bad::5"}, tcp({.payload = 12})), 12, kBlock6},
    };
    for (const Frame& f : frames) expect_truncations(f.what, f.bytes, f.bytes.size() - f.payload, f.rule);
}

}  // namespace
