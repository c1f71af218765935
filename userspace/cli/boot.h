// What the systemd units run, as the config file says: `boot` (attach, set
// ports, restore the saved rules) and `reap` (remove expired rules).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "text/defaults.h"

namespace smtpfence {

struct BootOptions {
    std::string config = kDefaultConfigPath;
};
void register_boot(CLI::App& app, std::vector<Command>& commands);
int run_boot(const BootOptions& options, const CliContext& ctx);

struct ReapOptions {
    std::string config;  // "": the global --pin-dir and --state-dir
};
void register_reap(CLI::App& app, std::vector<Command>& commands);
int run_reap(const ReapOptions& options, const CliContext& ctx);

}  // namespace smtpfence
