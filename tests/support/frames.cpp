#include "frames.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace smtpfence::frames {

namespace {

void put16(Bytes& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}

void put32(Bytes& out, uint32_t v) {
    put16(out, static_cast<uint16_t>(v >> 16));
    put16(out, static_cast<uint16_t>(v));
}

void append(Bytes& out, const Bytes& more) {
    out.insert(out.end(), more.begin(), more.end());
}

// The family is the caller's, not guessed: an IPv6 source in an IPv4 header is
// a mistake in the test, and throwing says so.
void put_address(Bytes& out, int family, const std::string& text) {
    uint8_t addr[16];
    if (inet_pton(family, text.c_str(), addr) != 1) throw std::invalid_argument("bad address " + text);
    out.insert(out.end(), addr, addr + (family == AF_INET ? 4 : 16));
}

// One extension header; lengths differ per type so that the length arithmetic
// (8-byte units, AH's 4-byte units) is exercised.
Bytes ext_header(const Ext6& e, uint8_t next) {
    Bytes out{next};
    switch (e.type) {
    case kHopByHop:  // 8 bytes: PadN(4)
        append(out, {0, 1, 4, 0, 0, 0, 0});
        break;
    case kDestOpts:  // 16 bytes: PadN(12)
        append(out, {1, 1, 12});
        out.resize(16, 0);
        break;
    case kRouting:  // 24 bytes: type 2, segments left 0, one address
        append(out, {2, 2, 0});
        out.resize(24, 0);
        break;
    case kFragment:  // 8 bytes
        out.push_back(0);
        put16(out, static_cast<uint16_t>(e.frag_offset << 3 | (e.more ? 1 : 0)));
        put32(out, 0xabcdef01);
        break;
    case kAh:  // 24 bytes: payload length (24 / 4) - 2 = 4, SPI, sequence, 12-byte ICV
        append(out, {4, 0, 0});
        put32(out, 0x100);
        put32(out, 1);
        out.resize(24, 0);
        break;
    default: throw std::invalid_argument("unknown extension header");
    }
    return out;
}

}  // namespace

bool is_v6(const std::string& addr) {
    return addr.find(':') != std::string::npos;
}

Bytes address_bytes(const std::string& text) {
    Bytes out;
    put_address(out, is_v6(text) ? AF_INET6 : AF_INET, text);
    return out;
}

Bytes tcp(const Tcp& t) {
    Bytes out;
    put16(out, t.sport);
    put16(out, t.dport);
    put32(out, t.seq);
    put32(out, (t.flags & kAck) ? t.ack : 0);
    out.push_back(5 << 4);  // doff 5
    out.push_back(t.flags);
    put16(out, 64240);  // window
    put32(out, 0);      // checksum, urgent pointer
    if (t.data.empty()) {
        out.insert(out.end(), t.payload, 'x');
    } else {
        append(out, t.data);
    }
    return out;
}

Bytes udp(uint16_t dport) {
    Bytes out;
    put16(out, 40000);
    put16(out, dport);
    put16(out, 8 + 4);
    put16(out, 0);
    append(out, {'h', 'e', 'l', 'o'});
    return out;
}

Bytes icmp_echo(uint8_t type) {
    Bytes out{type, 0};
    put16(out, 0);
    put32(out, 0x00010001);
    return out;
}

Bytes arp_request(const std::string& sender_ip) {
    Bytes out;
    put16(out, 1);  // Ethernet
    put16(out, ETH_P_IP);
    append(out, {6, 4});
    put16(out, 1);  // request
    append(out, {0x02, 0, 0, 0, 0, 0x02});
    put_address(out, AF_INET, sender_ip);
    out.resize(28, 0);
    return out;
}

Bytes ipv4(const Ip4& ip, const Bytes& payload) {
    // An IHL below 5 still gets a whole 20-byte header, so that the field's
    // value alone, not a short frame, is what makes it malformed.
    const size_t header_len = ip.ihl >= 5 ? ip.ihl * 4u : 20u;
    Bytes out;
    out.push_back(static_cast<uint8_t>(0x40 | (ip.ihl & 0x0f)));
    out.push_back(0);
    put16(out, static_cast<uint16_t>(header_len + payload.size()));
    put16(out, 0x1234);  // id
    put16(out, ip.frag);
    out.push_back(64);
    out.push_back(ip.proto);
    put16(out, 0);  // checksum, filled below
    put_address(out, AF_INET, ip.src);
    put_address(out, AF_INET, ip.dst);
    out.resize(header_len, 0x01);  // NOP options
    uint32_t sum = 0;
    for (size_t i = 0; i < header_len; i += 2) sum += static_cast<uint32_t>(out[i] << 8 | out[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    out[10] = static_cast<uint8_t>(~sum >> 8);
    out[11] = static_cast<uint8_t>(~sum);
    append(out, payload);
    return out;
}

Bytes ipv6(const Ip6& ip, const Bytes& payload) {
    Bytes chain;
    for (size_t i = 0; i < ip.ext.size(); ++i) {
        append(chain, ext_header(ip.ext[i], i + 1 < ip.ext.size() ? ip.ext[i + 1].type : ip.proto));
    }
    append(chain, payload);
    Bytes out;
    put32(out, 0x60000000);
    put16(out, static_cast<uint16_t>(chain.size()));
    out.push_back(ip.ext.empty() ? ip.proto : ip.ext.front().type);
    out.push_back(64);
    put_address(out, AF_INET6, ip.src);
    put_address(out, AF_INET6, ip.dst);
    append(out, chain);
    return out;
}

Bytes ether(uint16_t ethertype, const Bytes& payload, const std::vector<uint16_t>& tags) {
    Bytes out{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
    for (size_t i = 0; i < tags.size(); ++i) {
        put16(out, tags[i]);
        put16(out, static_cast<uint16_t>(100 + i));  // TCI: VLAN id
    }
    put16(out, ethertype);
    append(out, payload);
    return out;
}

Bytes v4(const Ip4& ip, const Bytes& l4, const std::vector<uint16_t>& tags) {
    return ether(ETH_P_IP, ipv4(ip, l4), tags);
}

Bytes v6(const Ip6& ip, const Bytes& l4, const std::vector<uint16_t>& tags) {
    return ether(ETH_P_IPV6, ipv6(ip, l4), tags);
}

Bytes syn4(const std::string& src, uint16_t dport) {
    return v4({.src = src}, tcp({.dport = dport}));
}
Bytes syn6(const std::string& src, uint16_t dport) {
    return v6({.src = src}, tcp({.dport = dport}));
}
Bytes syn_from(const std::string& src, uint16_t dport) {
    return is_v6(src) ? syn6(src, dport) : syn4(src, dport);
}

Bytes segment_from(const std::string& src, uint8_t flags, uint16_t dport, size_t payload) {
    const Bytes l4 = tcp({.dport = dport, .flags = flags, .payload = payload});
    return is_v6(src) ? v6({.src = src}, l4) : v4({.src = src}, l4);
}

Bytes later_fragment_from(const std::string& src) {
    const Bytes data(48, 'x');
    return is_v6(src) ? v6({.src = src, .ext = {{kFragment, 185, true}}}, data)
                      : v4({.src = src, .frag = kMoreFragments | 185}, data);
}

Bytes truncated(Bytes frame, size_t len) {
    frame.resize(len);
    return frame;
}

}  // namespace smtpfence::frames
