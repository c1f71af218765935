// What the BPF test files share: a builder of crafted frames, the fixture that
// loads the program against a private pin directory, the test run itself, and
// the global counters as a comparable value.
#pragma once

#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "fence/program.h"
#include "fence/rule_store.h"

namespace smtpfence::bpftest {

// ---------------------------------------------------------------------------
// Frames. Fields the program never reads for a verdict (MACs, IP ids, the
// TCP checksum; the sequence number only tells retransmissions apart) are fixed, so that two frames differ only where a test means
// them to.

using Bytes = std::vector<uint8_t>;

void put16(Bytes& out, uint16_t v);
void put32(Bytes& out, uint32_t v);
void append(Bytes& out, const Bytes& more);

bool is_v6(const std::string& addr);
// The binary form of an IPv4 or IPv6 address, the family told by a ':'.
Bytes address_bytes(const std::string& text);

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

struct Tcp {
    uint16_t dport = 25;
    uint8_t flags = kSyn;
    size_t payload = 0;
    uint16_t sport = 40000;
    uint32_t seq = 1000;  // a retransmitted SYN repeats its sport and seq
    uint32_t ack = 2000;  // with kAck
    Bytes data = {};      // the payload's bytes; else `payload` bytes of 'x'
};

// A 20-byte TCP header (checksum left zero: XDP does not look) and payload.
Bytes tcp(const Tcp& t);
Bytes udp(uint16_t dport);
Bytes icmp_echo(uint8_t type);
// An ARP request (Ethernet, IPv4) whose sender is `sender_ip`, so that a rule
// for that address could match it if the program mistook ARP for IP.
Bytes arp_request(const std::string& sender_ip);

constexpr uint16_t kMoreFragments = 0x2000;

struct Ip4 {
    std::string src;
    uint8_t proto = IPPROTO_TCP;
    uint8_t ihl = 5;         // header length in words; options are NOPs
    uint16_t frag = 0;       // flags and offset as on the wire (kMoreFragments | offset/8)
    std::string dst = "198.51.100.254";
};

Bytes ipv4(const Ip4& ip, const Bytes& payload);

// IPv6 extension headers as the program knows them.
constexpr uint8_t kHopByHop = IPPROTO_HOPOPTS, kRouting = IPPROTO_ROUTING, kFragment = IPPROTO_FRAGMENT,
                  kAh = IPPROTO_AH, kDestOpts = IPPROTO_DSTOPTS;

struct Ext6 {
    uint8_t type;
    uint16_t frag_offset = 0;  // fragment header: offset in 8-byte units
    bool more = false;         // fragment header: M flag
};

struct Ip6 {
    std::string src;
    uint8_t proto = IPPROTO_TCP;
    std::vector<Ext6> ext = {};  // in order, before the upper-layer header
    std::string dst = "2001:db8:25::25";
};

Bytes ipv6(const Ip6& ip, const Bytes& payload);

constexpr uint16_t k8021Q = ETH_P_8021Q, k8021AD = ETH_P_8021AD;

// Ethernet, with VLAN tags (outermost first) given by their TPIDs.
Bytes ether(uint16_t ethertype, const Bytes& payload, const std::vector<uint16_t>& tags = {});

Bytes v4(const Ip4& ip, const Bytes& l4, const std::vector<uint16_t>& tags = {});
Bytes v6(const Ip6& ip, const Bytes& l4, const std::vector<uint16_t>& tags = {});

// A new connection attempt: SYN without ACK.
Bytes syn4(const std::string& src, uint16_t dport = 25);
Bytes syn6(const std::string& src, uint16_t dport = 25);
Bytes syn_from(const std::string& src, uint16_t dport = 25);

// An untagged TCP segment from `src`, of either family.
Bytes segment_from(const std::string& src, uint8_t flags, uint16_t dport = 25, size_t payload = 0);

// A later fragment of a TCP segment from `src`: no TCP header, so no port.
Bytes later_fragment_from(const std::string& src);

Bytes truncated(Bytes frame, size_t len);

// ---------------------------------------------------------------------------
// The global counters (fence_stats) as a value gtest can compare and print.

struct GlobalCounts {
    uint64_t seen = 0, passed = 0, dropped = 0, smtp = 0, smtp_syn = 0, fragments = 0, malformed = 0;
    bool operator==(const GlobalCounts&) const = default;
};

std::ostream& operator<<(std::ostream& os, const GlobalCounts& c);
GlobalCounts global_counts(const fence_stats& s);
GlobalCounts operator-(const GlobalCounts& a, const GlobalCounts& b);

// ---------------------------------------------------------------------------
// Fixture: the program loaded against a pin directory of its own, never
// attached. Fresh maps per test let tests assert counters as exact totals, and
// keep them off any instance the machine runs.

class PinnedFenceTest : public ::testing::Test {
protected:
    // A derived SetUp calls this first and returns when IsSkipped().
    void SetUp() override;
    void TearDown() override;

    Fence& fence() { return *fence_; }
    const Fence& fence() const { return *fence_; }
    const std::string& pin_dir() const { return pin_dir_; }

    AddResult add(const std::string& cidr, Action action);

    // The program's return value on `frame`, or -errno when the kernel refuses the run.
    int run_raw(const Bytes& frame) const;
    // The egress (message pacing) program on an outgoing `frame`: its return
    // value, and the skb priority it leaves (0 in).
    struct EgressRun {
        int retval = 0;
        uint32_t priority = 0;
    };
    EgressRun run_pace(const Bytes& frame) const;

    GlobalCounts global() const { return global_counts(fence_->counters()); }

private:
    std::string pin_dir_;
    std::optional<LoadedProgram> program_;
    std::optional<Fence> fence_;
};

}  // namespace smtpfence::bpftest
