// `top`: the busiest sources by new-connection rate, and what happened to
// them.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct TopOptions {
    bool json = false;
    size_t top_n = 10;
    double interval_s = 1;
    uint16_t port = 0;  // 0: every port
    size_t count = 0;   // samples to show; 0 = until SIGINT/SIGTERM
};
void register_top(CLI::App& app, std::vector<Command>& commands);
int run_top(const TopOptions& options, const CliContext& ctx);

}  // namespace smtpfence
