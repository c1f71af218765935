// `events`: drop events, a source's first drop by a rule.
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct EventsOptions {
    bool json = false;
    bool follow = false;
};
void register_events(CLI::App& app, std::vector<Command>& commands);
int run_events(const EventsOptions& options, const CliContext& ctx);

}  // namespace smtpfence
