// Error types that carry what went wrong and how to fix it, and map to the
// CLI's exit codes: UsageError -> 2 (bad input, nothing changed),
// RuntimeError -> 1 (the system said no).
#pragma once

#include <stdexcept>
#include <string>

namespace smtpfence {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct RuntimeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "CONTEXT: strerror(err)" plus a hint for the errno values an admin can act on.
std::string describe_errno(const std::string& context, int err);

}  // namespace smtpfence
