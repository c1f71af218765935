#include "text/ports.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "base/errors.h"

namespace smtpfence {

namespace {

constexpr std::string_view kPortListRule = "ports are numbers from 1 to 65535 separated by commas, e.g. 25,465,587";

[[noreturn]] void reject_port_list(std::string_view text, const std::string& problem) {
    throw UsageError("invalid port list '" + std::string(text) + "': " + problem + "; " + std::string(kPortListRule));
}

std::string_view trim_blanks(std::string_view text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// Strict like prefix lengths: a sign, a leading zero or a service name is
// more likely a mistake than a port the admin meant to guard.
uint16_t parse_port(std::string_view list, std::string_view item) {
    if (item.empty()) {
        reject_port_list(list, "it has an empty item");
    }
    const bool plain_decimal = std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                               (item.size() == 1 || item.front() != '0');
    if (!plain_decimal) {
        reject_port_list(list, "'" + std::string(item) + "' is not a port number");
    }
    unsigned value = 0;
    const auto ec = std::from_chars(item.data(), item.data() + item.size(), value).ec;
    if (ec != std::errc{} || value < 1 || value > 65535) {
        reject_port_list(list, "port " + std::string(item) + " is out of range");
    }
    return static_cast<uint16_t>(value);
}

}  // namespace

PortSet default_smtp_ports() {
    return {25, 465, 587};
}

std::string_view non_smtp_service(uint16_t port) {
    // TCP services a mail host commonly runs or reaches; 24 (LMTP) and 2525
    // are SMTP's and absent on purpose.
    static constexpr std::pair<uint16_t, std::string_view> kServices[] = {
        {21, "ftp"},          {22, "ssh"},     {23, "telnet"},     {53, "dns"},         {80, "http"},
        {110, "pop3"},        {143, "imap"},   {389, "ldap"},      {443, "https"},      {636, "ldaps"},
        {993, "imaps"},       {995, "pop3s"},  {3306, "mysql"},    {3389, "rdp"},       {4190, "managesieve"},
        {5432, "postgresql"}, {6379, "redis"}, {8080, "http-alt"}, {8443, "https-alt"},
    };
    for (const auto& [p, name] : kServices) {
        if (p == port) return name;
    }
    return "";
}

void check_non_smtp_ports(const PortSet& ports, bool force) {
    if (force) return;
    std::string named;
    bool ssh = false;
    for (uint16_t port : ports) {
        const std::string_view service = non_smtp_service(port);
        if (service.empty()) continue;
        named += (named.empty() ? "" : ", ") + std::string("port ") + std::to_string(port) + " is " +
                 std::string(service);
        ssh = ssh || port == 22;
    }
    if (named.empty()) return;
    throw UsageError(named +
                     ", not SMTP: fencing it drops that service's new connections from every blocked or "
                     "limited source" +
                     (ssh ? std::string(", and a block covering your own address locks you out of ssh") : "") +
                     ". If that is what you mean, add --force; nothing was changed");
}

PortSet parse_port_list(std::string_view text) {
    if (trim_blanks(text).empty()) {
        reject_port_list(text, "it is empty");
    }
    PortSet ports;
    std::string_view rest = text;
    while (true) {
        const auto comma = rest.find(',');
        ports.insert(parse_port(text, trim_blanks(rest.substr(0, comma))));
        if (comma == std::string_view::npos) {
            return ports;
        }
        rest.remove_prefix(comma + 1);
    }
}

std::string format_port_list(const PortSet& ports) {
    std::string text;
    for (const uint16_t port : ports) {
        if (!text.empty()) {
            text += ',';
        }
        text += std::to_string(port);
    }
    return text;
}

void encode_port_bitmap(const PortSet& ports, PortBitmap& bitmap) {
    std::fill(std::begin(bitmap), std::end(bitmap), 0);
    for (uint16_t port : ports) bitmap[port / 64] |= uint64_t{1} << (port % 64);
}

PortSet decode_port_bitmap(const PortBitmap& bitmap) {
    PortSet ports;
    for (uint32_t port = 1; port < 65536; ++port) {
        if ((bitmap[port / 64] >> (port % 64)) & 1) ports.insert(static_cast<uint16_t>(port));
    }
    return ports;
}

}  // namespace smtpfence
