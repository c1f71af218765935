// Standard base64 (RFC 4648, with padding): the JSON gateway carries every key
// and value as base64, because they are proto `bytes`.
#pragma once

#include <string>
#include <string_view>

namespace smtpfence::etcd {

std::string base64_encode(std::string_view bytes);

// Throws RuntimeError on a character outside the alphabet or a bad length:
// the text comes from the server, so a bad one is the system's fault, not
// the user's.
std::string base64_decode(std::string_view text);

}  // namespace smtpfence::etcd
