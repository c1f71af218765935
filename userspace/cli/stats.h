// `stats`: the global and per-rule counters, once or with rates as they go.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct StatsOptions {
    bool json = false;
    bool watch = false;  // --watch was given (from the option's count)
    double watch_s = 1;
    size_t count = 0;  // intervals to show; 0 = until SIGINT/SIGTERM
};
void register_stats(CLI::App& app, std::vector<Command>& commands);
int run_stats(const StatsOptions& options, const CliContext& ctx);

}  // namespace smtpfence
