// `enforce`: turns dry-run rules live.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct EnforceOptions {
    std::vector<std::string> cidrs;
};
void register_enforce(CLI::App& app, std::vector<Command>& commands);
int run_enforce(const EnforceOptions& options, const CliContext& ctx);

}  // namespace smtpfence
