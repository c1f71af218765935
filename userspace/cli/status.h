// `status`: everything in force, and what looks wrong about it.
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct StatusOptions {
    bool json = false;
};
void register_status(CLI::App& app, std::vector<Command>& commands);
int run_status(const StatusOptions& options, const CliContext& ctx);

}  // namespace smtpfence
