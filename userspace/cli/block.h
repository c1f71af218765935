// `block` and `allow`: drop a prefix's new SMTP connections, or let them in
// even inside a broader block.
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

#include "cli/add_rules.h"
#include "cli/commands.h"

namespace smtpfence {

// Both take exactly what every new rule takes (allow refuses --dry-run and
// has no --force).
using BlockOptions = RuleOptions;
using AllowOptions = RuleOptions;

void register_block(CLI::App& app, std::vector<Command>& commands);
int run_block(const BlockOptions& options, const CliContext& ctx);

void register_allow(CLI::App& app, std::vector<Command>& commands);
int run_allow(const AllowOptions& options, const CliContext& ctx);

}  // namespace smtpfence
