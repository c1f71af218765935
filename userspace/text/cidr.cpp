#include "text/cidr.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "base/errors.h"

namespace smtpfence {

namespace {

constexpr std::string_view kV4Example = "203.0.113.0/24";
constexpr std::string_view kV6Example = "2001:db8::/32";

uint8_t max_prefixlen(Family family) {
    return family == Family::V4 ? 32 : 128;
}

std::string_view example_for(Family family) {
    return family == Family::V4 ? kV4Example : kV6Example;
}

std::string quoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

// Keeps the first `prefixlen` bits of `addr` and zeroes the rest.
std::array<uint8_t, 16> network_of(const std::array<uint8_t, 16>& addr, unsigned prefixlen) {
    std::array<uint8_t, 16> network{};
    for (unsigned byte = 0; byte < network.size(); ++byte) {
        const unsigned first_bit = byte * 8;
        if (prefixlen >= first_bit + 8) {
            network[byte] = addr[byte];
        } else if (prefixlen > first_bit) {
            const auto mask = static_cast<uint8_t>(0xff << (8 - (prefixlen - first_bit)));
            network[byte] = addr[byte] & mask;
        }
    }
    return network;
}

// inet_pton on a string_view. Its valid texts are at most 45 characters
// (INET6_ADDRSTRLEN - 1), so they fit the stack; a longer text still gets the
// same answer from a copy on the heap.
bool address_bytes(Family family, std::string_view address, std::array<uint8_t, 16>& bytes) {
    const int af = family == Family::V4 ? AF_INET : AF_INET6;
    char terminated[64];
    if (address.size() < sizeof terminated) {
        std::memcpy(terminated, address.data(), address.size());
        terminated[address.size()] = '\0';
        return inet_pton(af, terminated, bytes.data()) == 1;
    }
    return inet_pton(af, std::string(address).c_str(), bytes.data()) == 1;
}

Family family_of(std::string_view address) {
    return address.find(':') == std::string_view::npos ? Family::V4 : Family::V6;
}

// Strict on purpose: "+5", " 5" or "08" are likely typos, and guessing what
// was meant would fence a different range than the one the admin reviewed.
bool is_plain_decimal(std::string_view digits) {
    return !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
           (digits.size() == 1 || digits.front() != '0');
}

struct ParsedAddress {
    Family family;
    std::array<uint8_t, 16> addr{};
};

bool is_dotted_digits(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

ParsedAddress parse_address(std::string_view text, std::string_view address) {
    if (address.empty()) {
        throw UsageError(quoted(text) + " has no address before the '/', e.g. " + std::string(kV4Example));
    }
    if (const auto percent = address.find('%'); percent != std::string_view::npos) {
        throw UsageError(quoted(text) + " has a zone id (" + std::string(address.substr(percent)) +
                         "), which rules do not take: they match the source address on every "
                         "interface, e.g. fe80::/10");
    }

    ParsedAddress parsed;
    parsed.family = family_of(address);
    // inet_pton stops at a NUL, so an embedded one would hide trailing garbage.
    const bool valid = address.find('\0') == std::string_view::npos &&
                       address_bytes(parsed.family, address, parsed.addr);
    if (valid) {
        return parsed;
    }
    if (parsed.family == Family::V6) {
        throw UsageError(quoted(address) + " is not a valid IPv6 address, e.g. " + std::string(kV6Example));
    }
    if (is_dotted_digits(address)) {
        throw UsageError(quoted(address) +
                         " is not a valid IPv4 address: write four numbers from 0 to 255 "
                         "separated by dots, without leading zeros, e.g. " +
                         std::string(kV4Example));
    }
    throw UsageError(quoted(address) + " is not an IP address (host names are not resolved), e.g. " +
                     std::string(kV4Example) + " or " + std::string(kV6Example));
}

uint8_t parse_prefixlen(std::string_view text, std::string_view digits, Family family) {
    const std::string example(example_for(family));
    if (digits.empty()) {
        throw UsageError(quoted(text) + " has no prefix length after the '/', e.g. " + example);
    }
    if (!is_plain_decimal(digits)) {
        throw UsageError(quoted(text) + " has a malformed prefix length " + quoted(digits) +
                         ": write a decimal number without sign, spaces or leading zeros, e.g. " + example);
    }
    const uint8_t max = max_prefixlen(family);
    unsigned value = 0;
    const auto ec = std::from_chars(digits.data(), digits.data() + digits.size(), value).ec;
    if (ec != std::errc{} || value > max) {
        throw UsageError(quoted(text) + " has prefix length " + std::string(digits) + ", but " +
                         (family == Family::V4 ? "IPv4" : "IPv6") + " prefixes go from /0 to /" + std::to_string(max) +
                         ", e.g. " + example);
    }
    return static_cast<uint8_t>(value);
}

// ::ffff:0:0/96 and everything inside it.
bool is_ipv4_mapped(const Cidr& cidr) {
    if (cidr.family != Family::V6 || cidr.prefixlen < 96) {
        return false;
    }
    const auto zeros_end = cidr.addr.begin() + 10;
    return std::all_of(cidr.addr.begin(), zeros_end, [](uint8_t b) { return b == 0; }) && cidr.addr[10] == 0xff &&
           cidr.addr[11] == 0xff;
}

Cidr ipv4_of_mapped(const Cidr& mapped) {
    Cidr v4;
    v4.family = Family::V4;
    std::copy(mapped.addr.begin() + 12, mapped.addr.end(), v4.addr.begin());
    v4.prefixlen = static_cast<uint8_t>(mapped.prefixlen - 96);
    return v4;
}

}  // namespace

bool Cidr::contains(const Cidr& other) const {
    return family == other.family && other.prefixlen >= prefixlen && network_of(other.addr, prefixlen) == addr;
}

ParsedCidr parse_cidr(std::string_view text) {
    if (text.empty()) {
        throw UsageError("empty prefix: expected ADDR or ADDR/LEN, e.g. " + std::string(kV4Example) + " or " +
                         std::string(kV6Example));
    }
    const auto slash = text.find('/');
    const ParsedAddress address = parse_address(text, text.substr(0, slash));
    const uint8_t prefixlen = slash == std::string_view::npos
                                  ? max_prefixlen(address.family)
                                  : parse_prefixlen(text, text.substr(slash + 1), address.family);

    Cidr cidr;
    cidr.family = address.family;
    cidr.addr = network_of(address.addr, prefixlen);
    cidr.prefixlen = prefixlen;
    if (cidr.addr != address.addr) {
        // Silently masking would turn a typo for a host into a whole network block.
        Cidr host = cidr;
        host.addr = address.addr;
        host.prefixlen = max_prefixlen(address.family);
        throw UsageError(quoted(text) + " has host bits set: did you mean " + format_cidr(cidr) + " (the network) or " +
                         format_cidr(host) + " (the host)?");
    }

    ParsedCidr parsed{cidr, {}};
    // Dual-stack servers log IPv4 peers as ::ffff:a.b.c.d, so admins paste that
    // form; on the wire, where the fence looks, those senders are plain IPv4.
    if (is_ipv4_mapped(cidr)) {
        parsed.cidr = ipv4_of_mapped(cidr);
        parsed.note = std::string(text) + " is an IPv4-mapped " +
                      (slash == std::string_view::npos ? "address" : "prefix") + ": stored as " +
                      format_cidr(parsed.cidr) + ", because such senders arrive as IPv4";
    }
    return parsed;
}

std::optional<ValidCidr> try_parse_cidr(std::string_view text) {
    // The same steps as parse_cidr, each giving up where parse_cidr throws.
    const auto slash = text.find('/');
    const std::string_view address = text.substr(0, slash);
    if (address.empty() || address.find('%') != std::string_view::npos ||
        address.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    Cidr cidr;
    cidr.family = family_of(address);
    std::array<uint8_t, 16> bytes{};
    if (!address_bytes(cidr.family, address, bytes)) return std::nullopt;
    cidr.prefixlen = max_prefixlen(cidr.family);
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        unsigned value = 0;
        if (!is_plain_decimal(digits) ||
            std::from_chars(digits.data(), digits.data() + digits.size(), value).ec != std::errc{} ||
            value > cidr.prefixlen) {
            return std::nullopt;
        }
        cidr.prefixlen = static_cast<uint8_t>(value);
    }
    cidr.addr = network_of(bytes, cidr.prefixlen);
    if (cidr.addr != bytes) return std::nullopt;
    if (is_ipv4_mapped(cidr)) return ValidCidr{ipv4_of_mapped(cidr), true};
    return ValidCidr{cidr, false};
}

std::string format_address(Family family, const std::array<uint8_t, 16>& addr) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(family == Family::V4 ? AF_INET : AF_INET6, addr.data(), text, sizeof text);
    return text;
}

std::string format_cidr(const Cidr& cidr) {
    return format_address(cidr.family, cidr.addr) + "/" + std::to_string(cidr.prefixlen);
}

}  // namespace smtpfence
