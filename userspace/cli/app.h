// The smtpfence command line: parses, validates everything before changing
// anything, runs the command and maps failures to exit codes
// (0 ok, 1 runtime failure, 2 usage error).
#pragma once

#include <ostream>

namespace smtpfence {

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace smtpfence
