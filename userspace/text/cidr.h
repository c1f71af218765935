// Source prefixes as an administrator types them, and as the LPM tries key them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace smtpfence {

enum class Family : uint8_t { V4 = 4, V6 = 6 };

struct Cidr {
    Family family = Family::V4;
    // Network byte order; only the first 4 bytes are used for V4. Host bits are zero.
    std::array<uint8_t, 16> addr{};
    uint8_t prefixlen = 0;

    bool operator==(const Cidr&) const = default;
    // Orders v4 before v6, then by address, then by prefix length.
    auto operator<=>(const Cidr&) const = default;

    // True when every address of `other` is inside this prefix (same family).
    bool contains(const Cidr& other) const;
};

struct ParsedCidr {
    Cidr cidr;
    // Non-empty when the input was rewritten, e.g. an IPv4-mapped IPv6 prefix
    // (::ffff:203.0.113.0/120) stored as the IPv4 rule it means (203.0.113.0/24).
    std::string note;
};

// Parses "ADDR" (a host: /32 or /128) or "ADDR/LEN", IPv4 or IPv6 in any form
// inet_pton accepts. Throws UsageError naming the problem and a valid example:
// prefix length out of range (/33, /129), malformed address (300.1.2.3), host
// bits set (203.0.113.7/24 -> "did you mean 203.0.113.0/24 or 203.0.113.7/32?").
// IPv4-mapped IPv6 prefixes (::ffff:0:0/96 and longer) become IPv4 prefixes,
// because such senders reach the wire as IPv4 packets.
ParsedCidr parse_cidr(std::string_view text);

// A prefix try_parse_cidr accepted, and whether it was written as an
// IPv4-mapped IPv6 prefix (when parse_cidr would give a note).
struct ValidCidr {
    Cidr cidr;
    bool was_ipv4_mapped = false;
};

// parse_cidr without its costs, for files of a million prefixes: no
// allocation, no exception. Accepts exactly what parse_cidr accepts and
// returns the same prefix; std::nullopt where parse_cidr throws (call it then
// for the message).
std::optional<ValidCidr> try_parse_cidr(std::string_view text);

// Canonical text: "203.0.113.0/24", "2001:db8::/32" (RFC 5952 compressed form).
std::string format_cidr(const Cidr& cidr);

// The address part alone, canonical ("2001:db8::1").
std::string format_address(Family family, const std::array<uint8_t, 16>& addr);

}  // namespace smtpfence
