// SHA-256 as `sha256sum` prints it, so that an admin can check which file
// a list was imported from.
#pragma once

#include <string>
#include <string_view>

namespace smtpfence {

// The SHA-256 of `data` in 64 lowercase hex digits (libcrypto's EVP API).
// RuntimeError if libcrypto fails.
std::string sha256_hex(std::string_view data);

}  // namespace smtpfence
