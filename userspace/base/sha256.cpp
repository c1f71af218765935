#include "base/sha256.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include "base/errors.h"

namespace smtpfence {

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        throw RuntimeError("SHA-256 of " + std::to_string(data.size()) + " bytes: libcrypto failed (" + reason +
                           "): check the OpenSSL installation (libssl3)");
    }
    static constexpr char kHexDigits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        hex += kHexDigits[digest[i] >> 4];
        hex += kHexDigits[digest[i] & 0xf];
    }
    return hex;
}

}  // namespace smtpfence
