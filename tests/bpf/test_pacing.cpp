// Message pacing (`limit --messages`) on crafted frames, through
// bpf_prog_test_run_opts: the tc egress program steers a paced session's
// SYN-ACK and every later reply to a message body into the rule's class
// (skb->priority) and nothing else: not the first body's reply (the SYN-ACK
// paid for it) until the key has reused a session, not command replies, not a TLS handshake, not other ports,
// sources or pure ACKs; it takes away a retransmission of a packet still held, and
// lets a reply through unpaced rather than hold it past the delay cap. The
// XDP program refuses a paced rule's SYN while the pace clock runs ahead.
// Needs root; skipped otherwise.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bpf/map.h"
#include "bpf/pin_dir.h"
#include "bpf_test_support.h"
#include "fence/rule_store.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"
#include "text/limit_options.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;

namespace {

constexpr int kUnspec = -1;  // TC_ACT_UNSPEC: the packet goes on as it was
constexpr int kStolen = 4;   // TC_ACT_STOLEN: taken away, reported to the stack as sent
constexpr const char* kMailHost = "198.51.100.254";
constexpr const char* kRelay = "198.51.100.20";
constexpr uint32_t kClientIsn = 5000;  // the relay's initial sequence number
constexpr uint32_t kServerIsn = 9000;  // the mail host's

class Pace : public PinnedFenceTest {
protected:
    void SetUp() override {
        PinnedFenceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        LimitSpec limit;
        limit.message_interval_ns = parse_message_rate("5/s");
        limit.key_prefixlen = 28;
        fence().add_rule(parse_cidr("198.51.100.16/28").cidr, Action::Limit, "pace test", "gtest", limit);
        fence().sync_pacing();  // nothing attached: tells the program a rule is paced
        classid_ = pace().classid;
        ASSERT_NE(classid_, 0u);
        ASSERT_EQ(classid_ >> 16, uint32_t{FENCE_PACE_QDISC_MAJOR});
    }

    rule_pace pace() const {
        for (const Rule& r : fence().rules()) {
            if (r.limit.message_interval_ns) return r.pace;
        }
        ADD_FAILURE() << "no paced rule";
        return {};
    }

    UniqueFd pace_keys() const {
        const std::string path = pin_dir() + "/" FENCE_MAP_PACE_KEYS;
        int fd = bpf_obj_get(path.c_str());
        if (fd < 0) throw std::runtime_error("bpf_obj_get " + path + ": " + std::strerror(errno));
        return UniqueFd(fd);
    }

    // The key of `addr` (IPv4) under the paced rule: its address masked to
    // `key_prefixlen` bits.
    limit_key key_of(const std::string& addr, unsigned key_prefixlen = 28) const {
        limit_key key{};
        key.rule_id = pace().rule_id;
        key.family = 4;
        Cidr c = parse_cidr(addr).cidr;
        for (unsigned i = 0; i < 4; ++i) {
            unsigned bits = key_prefixlen > 8 * i ? std::min(8u, key_prefixlen - 8 * i) : 0;
            key.addr[i] = static_cast<uint8_t>(c.addr[i] & static_cast<uint8_t>(0xff00u >> bits));
        }
        return key;
    }

    // The clock of `addr`'s key (made if absent, class 0).
    pace_key_state clock(const std::string& addr = kRelay) const {
        pace_key_state st{};
        limit_key key = key_of(addr);
        bpf_map_lookup_elem(pace_keys().get(), &key, &st);
        return st;
    }

    void set_clock(uint64_t tat_ns, const std::string& addr = kRelay) {
        pace_key_state st = clock(addr);
        st.tat_ns = tat_ns;
        limit_key key = key_of(addr);
        ASSERT_EQ(bpf_map_update_elem(pace_keys().get(), &key, &st, 0), 0);
    }

    // A segment of the mail host's session with `to` (port 25 -> 40000):
    // `sent` bytes of the server's stream before it, `acked` of the client's.
    static Bytes reply(const std::string& to, uint32_t sent, uint32_t acked, size_t len, uint16_t sport = 25,
                       const Bytes& data = {}) {
        Tcp t{.dport = 40000,
              .flags = static_cast<uint8_t>(kAck | kPsh),
              .payload = len,
              .sport = sport,
              .seq = kServerIsn + 1 + sent,
              .ack = kClientIsn + 1 + acked,
              .data = data};
        return v4({.src = kMailHost, .dst = to}, tcp(t));
    }
    static Bytes syn_ack(const std::string& to, uint16_t sport = 25) {
        Tcp t{.dport = 40000,
              .flags = static_cast<uint8_t>(kSyn | kAck),
              .sport = sport,
              .seq = kServerIsn,
              .ack = kClientIsn + 1};
        return v4({.src = kMailHost, .dst = to}, tcp(t));
    }

    // 'S' steered into the class, '-' left alone, 'X' taken away (not sent), 'E' error.
    char steer(const Bytes& frame) const {
        EgressRun r = run_pace(frame);
        if (r.retval == kStolen) return 'X';
        if (r.retval != kUnspec) return 'E';
        if (r.priority == classid_) return 'S';
        return r.priority == 0 ? '-' : 'E';
    }

    uint32_t classid_ = 0;
};

// One session, as Postfix runs it with PIPELINING and a reused connection:
// banner, EHLO, MAIL+RCPT+DATA, body, then per further message RSET,
// MAIL+RCPT+DATA, body; QUIT. Steered: the SYN-ACK and the replies to the
// second and third bodies; the clock moved one interval per steered packet.
TEST_F(Pace, SteersTheSynAckAndTheRepliesToLaterBodiesOnly) {
    if (IsSkipped()) return;
    std::string got;
    uint32_t sent = 0, acked = 0;
    auto turn = [&](uint32_t upload, size_t len) {
        acked += upload;
        got += steer(reply(kRelay, sent, acked, len));
        sent += static_cast<uint32_t>(len);
    };
    const uint64_t before = monotonic_ns();
    got += steer(syn_ack(kRelay));
    turn(0, 30);     // 220 banner
    turn(20, 120);   // EHLO
    turn(90, 40);    // MAIL, RCPT, DATA
    turn(1200, 40);  // the first body: paid for by the SYN-ACK
    turn(6, 20);     // RSET
    turn(90, 40);
    turn(1200, 40);  // the second body
    turn(6, 20);
    turn(90, 40);
    turn(1200, 40);  // the third
    turn(6, 20);     // QUIT
    EXPECT_EQ(got, "S------S--S-");
    rule_pace p = pace();
    EXPECT_EQ(p.messages, 3u);
    EXPECT_EQ(p.packets, 3u);
    EXPECT_EQ(p.overflow, 0u);
    EXPECT_GE(clock().tat_ns, before + 3 * p.interval_ns);
    EXPECT_LE(clock().tat_ns, monotonic_ns() + 3 * p.interval_ns);
}

// STARTTLS: the ClientHello is an upload of hundreds of bytes, but the reply
// is a TLS handshake record; then the first body (encrypted) is free, the
// second is steered. Of a reply in two segments only the first waits in the
// class (it holds the sender all the same: its TCP cannot read past it).
TEST_F(Pace, TlsHandshakeIsNoMessageAndOnlyAReplysFirstSegmentWaits) {
    if (IsSkipped()) return;
    const Bytes server_hello{0x16, 0x03, 0x03, 0x00, 0x7a, 0x02};
    const Bytes record{0x17, 0x03, 0x03, 0x00, 0x40};
    std::string got;
    got += steer(syn_ack(kRelay));
    got += steer(reply(kRelay, 0, 0, 30));                          // banner
    got += steer(reply(kRelay, 30, 20, 120));                       // EHLO
    got += steer(reply(kRelay, 150, 30, 30));                       // STARTTLS
    got += steer(reply(kRelay, 180, 530, 1400, 25, server_hello));  // ClientHello (500 B)
    got += steer(reply(kRelay, 1580, 1730, 90, 25, record));        // the first body
    got += steer(reply(kRelay, 1670, 2930, 60, 25, record));        // the second body...
    got += steer(reply(kRelay, 1730, 2930, 60, 25, record));        // ...in two segments
    got += steer(reply(kRelay, 1790, 2960, 40, 25, record));        // QUIT
    EXPECT_EQ(got, "S-----S--");
    EXPECT_EQ(pace().messages, 2u);
    EXPECT_EQ(pace().packets, 2u);
}

// While a reply may still wait in the class, a retransmission of it would
// reach the sender first: it is taken away (the original is still queued),
// reported to the stack as sent (a failed SYN-ACK retransmission would make
// the kernel drop the half-open connection). Once the hold is over, a
// retransmission leaves as usual.
TEST_F(Pace, DropsARetransmissionOfAHeldReply) {
    if (IsSkipped()) return;
    EXPECT_EQ(steer(syn_ack(kRelay)), 'S');
    EXPECT_EQ(steer(syn_ack(kRelay)), 'X') << "a SYN-ACK retransmitted while the first is held";
    EXPECT_EQ(steer(reply(kRelay, 0, 0, 30)), '-');
    EXPECT_EQ(steer(reply(kRelay, 30, 1200, 40)), '-');  // the first body
    set_clock(monotonic_ns() + 3'000'000'000ull);        // three seconds of replies queued
    EXPECT_EQ(steer(reply(kRelay, 70, 2400, 40)), 'S');
    EXPECT_EQ(steer(reply(kRelay, 70, 2400, 40)), 'X');
    set_clock(0);
    EXPECT_EQ(steer(reply(kRelay, 110, 2410, 20)), '-');
}

// A reply that would wait longer than 60 s (README; FENCE_PACE_MAX_DELAY_NS)
// leaves unpaced, and is counted: senders time out long before a sender's data
// timeout would make them send the message again.
TEST_F(Pace, LetsAReplyThroughRatherThanHoldItPastTheDelayCap) {
    if (IsSkipped()) return;
    EXPECT_EQ(steer(syn_ack(kRelay)), 'S');
    EXPECT_EQ(steer(reply(kRelay, 0, 1200, 40)), '-');  // the first body
    set_clock(monotonic_ns() + 65'000'000'000ull);      // 60 s + 5 s
    EXPECT_EQ(steer(reply(kRelay, 40, 2400, 40)), '-');
    EXPECT_EQ(pace().overflow, 1u);
    EXPECT_EQ(pace().messages, 1u);
}

// Only the paced rule's sources, only SMTP ports, only segments that carry
// something: the rest leaves untouched, whatever the clock.
TEST_F(Pace, LeavesEverythingElseAlone) {
    if (IsSkipped()) return;
    EXPECT_EQ(steer(syn_ack("198.51.100.40")), '-') << "a source outside the rule";
    EXPECT_EQ(steer(syn_ack(kRelay, 22)), '-') << "ssh";
    EXPECT_EQ(steer(v4({.src = kMailHost, .dst = kRelay},
                       tcp({.dport = 40000, .flags = kAck, .sport = 25, .seq = kServerIsn + 1}))),
              '-')
        << "a pure ACK";
    EXPECT_EQ(steer(v6({.src = "2001:db8:25::25", .dst = "2001:db8::20"},
                       tcp({.dport = 40000, .flags = static_cast<uint8_t>(kSyn | kAck), .sport = 25}))),
              '-')
        << "IPv6, no rule";
    EXPECT_EQ(steer(truncated(syn_ack(kRelay), 40)), '-') << "a truncated frame";
    EXPECT_EQ(pace().packets, 0u);
}

// IPv6: a paced rule of its own (--per source: a /64) steers its sessions'
// SYN-ACK and later replies into its own class, and the XDP side refuses its
// SYNs while its clock runs ahead, like IPv4's.
TEST_F(Pace, PacesAnIpv6RuleLikeAnIpv4One) {
    if (IsSkipped()) return;
    const std::string mail_host = "2001:db8:1::25", relay = "2001:db8:25:7::20";
    const Cidr net = parse_cidr("2001:db8:25::/48").cidr;
    LimitSpec limit;
    limit.message_interval_ns = parse_message_rate("5/s");
    limit.key_prefixlen = 64;
    fence().add_rule(net, Action::Limit, "pace v6", "gtest", limit);
    fence().sync_pacing();
    auto pace6 = [&] {
        for (const Rule& r : fence().rules()) {
            if (r.cidr == net) return r.pace;
        }
        ADD_FAILURE() << "no IPv6 paced rule";
        return rule_pace{};
    };
    const uint32_t class6 = pace6().classid;
    ASSERT_NE(class6, 0u);
    ASSERT_NE(class6, classid_) << "a class of its own";
    auto steer6 = [&](uint8_t flags, uint32_t sent, uint32_t acked, size_t len) {
        Tcp t{.dport = 40000,
              .flags = flags,
              .payload = len,
              .sport = 25,
              .seq = kServerIsn + (flags & kSyn ? 0 : 1 + sent),
              .ack = kClientIsn + 1 + acked};
        EgressRun r = run_pace(v6({.src = mail_host, .dst = relay}, tcp(t)));
        if (r.retval != kUnspec) return 'E';
        if (r.priority == 0) return '-';
        return r.priority >= class6 && r.priority < class6 + pace6().classes ? 'S' : 'E';
    };
    const uint8_t push = static_cast<uint8_t>(kAck | kPsh);
    std::string got;
    got += steer6(static_cast<uint8_t>(kSyn | kAck), 0, 0, 0);
    got += steer6(push, 0, 0, 30);      // banner
    got += steer6(push, 30, 1220, 40);  // the first body: paid for by the SYN-ACK
    got += steer6(push, 70, 2420, 40);  // the second body
    EXPECT_EQ(got, "S--S");
    EXPECT_EQ(pace6().messages, 2u);
    EXPECT_EQ(pace6().packets, 2u);
    EXPECT_EQ(pace().packets, 0u) << "the IPv4 rule's class saw nothing";

    // The XDP side: the relay's /64 clock 2.5 s ahead (more than 8 intervals
    // and the 2 s minimum): a new session is refused; another /64 of the
    // rule, with a clock of its own, is not.
    limit_key key{};
    key.rule_id = pace6().rule_id;
    key.family = 6;
    const Cidr relay64 = parse_cidr(relay).cidr;
    std::copy_n(relay64.addr.begin(), 8, key.addr);
    pace_key_state st{};
    ASSERT_EQ(bpf_map_lookup_elem(pace_keys().get(), &key, &st), 0) << "the /64's clock";
    st.tat_ns = monotonic_ns() + 2'500'000'000ull;
    ASSERT_EQ(bpf_map_update_elem(pace_keys().get(), &key, &st, 0), 0);
    EXPECT_EQ(run_raw(syn6(relay)), XDP_DROP);
    EXPECT_EQ(pace6().refused, 1u);
    EXPECT_EQ(run_raw(syn6("2001:db8:25:8::20")), XDP_PASS);
}

// With no paced rule, the program returns before parsing: nothing steered.
TEST_F(Pace, NothingIsSteeredWhenNoRuleIsPaced) {
    if (IsSkipped()) return;
    fence().remove_rule(parse_cidr("198.51.100.16/28").cidr);
    fence().sync_pacing();
    EXPECT_EQ(steer(syn_ack(kRelay)), '-');
}

// The hand-over: the moment a paced rule is in the trie, the egress
// program paces its sessions. Its classes and the program's "a rule is
// paced" are set up before the rule is published, not when the command
// ends (a fresh-clone CI run let 83 messages through in a second when the
// blocked relay's SYN retransmissions met that window).
TEST_F(Pace, ARuleIsPacedFromTheMomentItIsPublished) {
    if (IsSkipped()) return;
    const Cidr relay_net = parse_cidr("198.51.100.16/28").cidr;
    fence().remove_rule(relay_net);
    fence().sync_pacing();
    fence().add_rule(relay_net, Action::Block, "blocked first", "gtest");
    EXPECT_EQ(run_raw(syn4(kRelay)), XDP_DROP);
    LimitSpec limit;
    limit.message_interval_ns = parse_message_rate("5/s");
    limit.key_prefixlen = 28;
    fence().add_rule(relay_net, Action::Limit, "then paced", "gtest", limit);  // no sync_pacing after it
    classid_ = pace().classid;
    EXPECT_EQ(run_raw(syn4(kRelay)), XDP_PASS);
    EXPECT_EQ(steer(syn_ack(kRelay)), 'S') << "the first SYN-ACK after the change";
}

// The flow table keeps a session past its end. A new session on the same
// ports (the sender reused its port) is a new session: its SYN-ACK and
// bodies are paced, whatever its ISN. Before the fix, an ISN "before" the old
// session's sequence made the whole session look like retransmissions.
TEST_F(Pace, ASessionOnReusedPortsIsPacedLikeANewOne) {
    if (IsSkipped()) return;
    EXPECT_EQ(steer(syn_ack(kRelay)), 'S');
    EXPECT_EQ(steer(reply(kRelay, 0, 0, 30)), '-');
    EXPECT_EQ(steer(reply(kRelay, 30, 1200, 40)), '-');  // its first body: paid for
    EXPECT_EQ(steer(reply(kRelay, 70, 2400, 40)), 'S');
    // Same ports, an ISN just before the old one: a SYN-ACK of a new session.
    const uint32_t isn = kServerIsn - 100000;
    auto segment = [&](uint8_t flags, uint32_t seq, uint32_t ack, size_t len) {
        Tcp t{.dport = 40000, .flags = flags, .payload = len, .sport = 25, .seq = seq, .ack = ack};
        return v4({.src = kMailHost, .dst = kRelay}, tcp(t));
    };
    const uint8_t data = static_cast<uint8_t>(kAck | kPsh);
    std::string got;
    got += steer(segment(static_cast<uint8_t>(kSyn | kAck), isn, 7001, 0));
    got += steer(segment(static_cast<uint8_t>(kSyn | kAck), isn, 7001, 0));  // its retransmission, held
    got += steer(segment(data, isn + 1, 7001, 30));                          // banner
    got += steer(segment(data, isn + 31, 7001 + 1200, 40));                  // the first body
    got += steer(segment(data, isn + 71, 7001 + 2400, 40));                  // the second
    // The key reused the first session, so this one's first body reply is held too.
    EXPECT_EQ(got, "SX-SS");
    EXPECT_EQ(pace().messages, 5u);
}

// A session's first body was let in by its SYN-ACK, so its reply goes
// unpaced while the key's sessions carry one message each (Postfix with TLS:
// one slot a message). Once a session of the key carries a second message,
// the first body reply of every later session is held as well: a backlog
// unloaded over many new sessions would otherwise get two messages per
// session start, up to twice the pace (the hand-over: 10 a second at 5/s).
TEST_F(Pace, AKeyThatReusesSessionsPaysForEveryMessage) {
    if (IsSkipped()) return;
    auto session = [&](uint16_t port, int bodies) {
        auto segment = [&](uint8_t flags, uint32_t seq, uint32_t ack, size_t len) {
            Tcp t{.dport = port, .flags = flags, .payload = len, .sport = 25, .seq = seq, .ack = ack};
            return v4({.src = kMailHost, .dst = kRelay}, tcp(t));
        };
        std::string got;
        got += steer(segment(static_cast<uint8_t>(kSyn | kAck), kServerIsn, kClientIsn + 1, 0));
        uint32_t sent = 1, acked = 1;
        got += steer(segment(static_cast<uint8_t>(kAck | kPsh), kServerIsn + sent, kClientIsn + acked, 30));
        sent += 30;
        for (int i = 0; i < bodies; ++i) {
            acked += 1200;
            got += steer(segment(static_cast<uint8_t>(kAck | kPsh), kServerIsn + sent, kClientIsn + acked, 40));
            sent += 40;
        }
        return got;
    };
    EXPECT_EQ(session(40001, 1), "S--") << "one message: its reply is free";
    EXPECT_EQ(session(40002, 1), "S--");
    EXPECT_EQ(clock().flags & FENCE_PACE_KEY_REUSES, 0u);
    EXPECT_EQ(session(40003, 3), "S--SS") << "the first session that reuses";
    EXPECT_EQ(clock().flags & FENCE_PACE_KEY_REUSES, uint32_t{FENCE_PACE_KEY_REUSES});
    EXPECT_EQ(session(40004, 2), "S-SS") << "after it, every body reply waits its turn";
    EXPECT_EQ(pace().messages, 8u);
}

// A flow seen under one rule is not used by the rule that replaces it (a new
// rule id): block -> pace -> pace again with other options starts clean.
TEST_F(Pace, AFlowOfAReplacedRuleIsNotCarriedOver) {
    if (IsSkipped()) return;
    EXPECT_EQ(steer(syn_ack(kRelay)), 'S');
    LimitSpec limit;
    limit.message_interval_ns = parse_message_rate("2/s");
    limit.key_prefixlen = 32;  // another key: a new rule id and new classes
    fence().add_rule(parse_cidr("198.51.100.16/28").cidr, Action::Limit, "repaced", "gtest", limit);
    classid_ = pace().classid;
    EXPECT_EQ(steer(syn_ack(kRelay)), 'S') << "the same handshake again, but under a new rule: held anew";
}

// The XDP side: a paced rule's SYN is admitted while the clock runs at most
// 8 intervals ahead (README; at 5/s: less than the minimum, 2 s), refused
// (dropped, counted as `refused`) beyond; its retransmission up to twice
// that, never beyond 20 s. Literals, as the README gives them.
TEST_F(Pace, RefusesNewConnectionsWhileTheClockRunsAhead) {
    if (IsSkipped()) return;
    auto syn = [](uint16_t sport) {
        return v4({.src = kRelay, .dst = kMailHost}, tcp({.dport = 25, .flags = kSyn, .sport = sport}));
    };
    EXPECT_EQ(run_raw(syn(40001)), XDP_PASS);
    set_clock(monotonic_ns() + 2'500'000'000ull);  // 2 s + 0.5 s
    EXPECT_EQ(run_raw(syn(40002)), XDP_DROP);
    EXPECT_EQ(pace().refused, 1u);
    EXPECT_EQ(run_raw(syn(40002)), XDP_PASS) << "its retransmission: admitted up to twice as far ahead";
    set_clock(monotonic_ns() + 20'500'000'000ull);  // 20 s + 0.5 s
    EXPECT_EQ(run_raw(syn(40003)), XDP_DROP);
    EXPECT_EQ(run_raw(syn(40003)), XDP_DROP) << "beyond 20 s, a retransmission too";
    EXPECT_EQ(pace().refused, 3u);
    EXPECT_EQ(run_raw(syn4("198.51.100.40")), XDP_PASS) << "another source, no rule";
    set_clock(monotonic_ns() + 1'500'000'000ull);  // 2 s - 0.5 s
    EXPECT_EQ(run_raw(syn(40004)), XDP_PASS);
}

// --per source: each source has its own clock and its own class (round
// robin over the rule's FENCE_PACE_KEY_CLASSES), so one source's queue
// does not hold another's messages.
TEST_F(Pace, PerSourceKeysGetTheirOwnClassAndClock) {
    if (IsSkipped()) return;
    LimitSpec limit;
    limit.message_interval_ns = parse_message_rate("1/s");
    limit.key_prefixlen = 32;
    fence().add_rule(parse_cidr("203.0.113.0/24").cidr, Action::Limit, "pace test", "gtest", limit);
    fence().sync_pacing();
    rule_pace rule{};
    for (const Rule& r : fence().rules()) {
        if (r.cidr == parse_cidr("203.0.113.0/24").cidr) rule = r.pace;
    }
    ASSERT_EQ(rule.classes, uint32_t{FENCE_PACE_KEY_CLASSES});
    EXPECT_NE(rule.classid, classid_) << "its own block of classes";
    auto priority = [&](const std::string& to) { return run_pace(syn_ack(to)).priority; };
    EXPECT_EQ(priority("203.0.113.7"), rule.classid);
    EXPECT_EQ(priority("203.0.113.8"), rule.classid + 1);
    EXPECT_EQ(priority("203.0.113.9"), rule.classid + 2);
    // A second session of .7 waits in .7's class, behind .7's first.
    Bytes again = v4({.src = kMailHost, .dst = "203.0.113.7"},
                     tcp({.dport = 40001, .flags = static_cast<uint8_t>(kSyn | kAck), .sport = 25, .seq = 77}));
    EXPECT_EQ(run_pace(again).priority, rule.classid);
    for (const Rule& r : fence().rules()) {
        if (r.cidr == parse_cidr("203.0.113.0/24").cidr) {
            EXPECT_EQ(r.tracked_keys, 3u);
            EXPECT_EQ(r.pace.messages, 4u);
        }
    }
}

}  // namespace
