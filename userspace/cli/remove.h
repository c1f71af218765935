// `remove` (alias `unblock`): rules go by their exact prefix; `flush`: all
// of them go.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct RemoveOptions {
    std::vector<std::string> cidrs;
    bool force = false;  // also a fleet rule (its agent puts it back at its next change)
};
void register_remove(CLI::App& app, std::vector<Command>& commands);
int run_remove(const RemoveOptions& options, const CliContext& ctx);

struct FlushOptions {
    bool yes = false;  // needed when there are rules to remove
};
void register_flush(CLI::App& app, std::vector<Command>& commands);
int run_flush(const FlushOptions& options, const CliContext& ctx);

}  // namespace smtpfence
