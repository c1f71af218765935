// Crafted frames for the programs' test runs (bpf_prog_test_run_opts), shared
// by the BPF tests and the benchmark: Ethernet with VLAN tags, IPv4 with
// options and fragments, IPv6 with extension headers, TCP, UDP, ICMP, ARP.
// Fields the program never reads for a verdict (MACs, IP ids, the TCP
// checksum; the sequence number only tells retransmissions apart) are fixed,
// so that two frames differ only where a test means them to.
#pragma once

#include <linux/if_ether.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace smtpfence::frames {

using Bytes = std::vector<uint8_t>;

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
    uint8_t ihl = 5;    // header length in words; options are NOPs
    uint16_t frag = 0;  // flags and offset as on the wire (kMoreFragments | offset/8)
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

}  // namespace smtpfence::frames
