#include "base/errors.h"

#include <cerrno>
#include <cstring>

namespace smtpfence {

std::string describe_errno(const std::string& context, int err) {
    std::string text = context + ": " + std::strerror(err);
    // Loading programs and touching pinned maps are privileged; "Operation not
    // permitted" alone does not tell an admin which privileges are missing.
    if (err == EPERM || err == EACCES) {
        text += " (run as root, or with CAP_BPF and CAP_NET_ADMIN)";
    }
    return text;
}

}  // namespace smtpfence
