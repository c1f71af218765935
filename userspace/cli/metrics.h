// `metrics`: the Prometheus text exposition, once, on stdout. It has no
// options of its own: the global --pin-dir says which fence.
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

void register_metrics(CLI::App& app, std::vector<Command>& commands);
int run_metrics(const CliContext& ctx);

}  // namespace smtpfence
