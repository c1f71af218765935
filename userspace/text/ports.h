// The set of TCP ports treated as SMTP, as admins write it and as the data
// path reads it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "smtpfence_abi.h"

namespace smtpfence {

using PortSet = std::set<uint16_t>;

// The ports smtpfence guards unless told otherwise: SMTP, submissions, submission.
PortSet default_smtp_ports();

// Parses "25,465,587" (spaces around commas allowed; duplicates collapse).
// Throws UsageError for an empty list, 0, >65535, non-numbers or empty items,
// with an example of a valid list ("e.g. 25,465,587").
PortSet parse_port_list(std::string_view text);

// The service a well-known TCP port that is not SMTP belongs to ("ssh" for
// 22), else "". Fencing one drops its new connections from blocked sources:
// with 22, a block that covers the admin's own address locks them out.
std::string_view non_smtp_service(uint16_t port);

// UsageError naming each port of `ports` that is a well-known non-SMTP
// service, unless `force`.
void check_non_smtp_ports(const PortSet& ports, bool force);

// "25,465,587" in ascending order.
std::string format_port_list(const PortSet& ports);

// The data path's encoding of a port set (fence_config.smtp_ports): bit p of
// the bitmap set = port p is SMTP.
using PortBitmap = __u64[FENCE_PORT_WORDS];
void encode_port_bitmap(const PortSet& ports, PortBitmap& bitmap);
PortSet decode_port_bitmap(const PortBitmap& bitmap);

}  // namespace smtpfence
