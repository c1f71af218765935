// `list`: the rules with their counters.
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct ListOptions {
    bool json = false;
};
void register_list(CLI::App& app, std::vector<Command>& commands);
int run_list(const ListOptions& options, const CliContext& ctx);

}  // namespace smtpfence
