// `limit`: slow a prefix's sources down (a rate of new connections, a cap on
// open ones, a pace of messages) instead of dropping them.
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

#include "cli/add_rules.h"
#include "cli/commands.h"
#include "text/rule_options.h"

namespace smtpfence {

struct LimitOptions : RuleOptions {
    LimitTexts terms;  // --rate, --burst, --max-conns, --messages, --per
};
void register_limit(CLI::App& app, std::vector<Command>& commands);
int run_limit(const LimitOptions& options, const CliContext& ctx);

}  // namespace smtpfence
