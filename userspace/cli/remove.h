// `remove` (alias `unblock`): rules go by their exact prefix.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct RemoveOptions {
    std::vector<std::string> cidrs;
};

void register_remove(CLI::App& app, std::vector<Command>& commands);
int run_remove(const RemoveOptions& options, const CliContext& ctx);

}  // namespace smtpfence
