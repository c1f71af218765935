// Error types that carry what went wrong and how to fix it, and map to the
// CLI's exit codes: UsageError -> 2 (bad input, nothing changed),
// RuntimeError -> 1 (the system said no), NotSavedError -> 3 (the change is
// in force, but not saved).
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

// A change was made in the kernel, but the state file that makes it survive a
// reboot could not be written: not a failure to retry, a file to fix.
struct NotSavedError : RuntimeError {
    using RuntimeError::RuntimeError;
};

// "CONTEXT: strerror(err)" plus a hint for the errno values an admin can act on.
std::string describe_errno(const std::string& context, int err);

}  // namespace smtpfence
