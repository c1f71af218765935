// `attach` and `detach`: the interfaces the fence guards.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "fence/attach.h"
#include "text/defaults.h"

namespace smtpfence {

struct AttachOptions {
    std::vector<std::string> interfaces;
    std::string mode = "auto";
    uint32_t max_rules = kDefaultMaxRules;
};
void register_attach(CLI::App& app, std::vector<Command>& commands);
int run_attach(const AttachOptions& options, const CliContext& ctx);

struct DetachOptions {
    std::vector<std::string> interfaces;
};
void register_detach(CLI::App& app, std::vector<Command>& commands);
int run_detach(const DetachOptions& options, const CliContext& ctx);

// Attaches (see fence/attach.h), saves the state file and tells the user what
// happened: shared by `attach` and `boot`.
int attach_and_report(const CliContext& ctx, const std::vector<std::string>& interfaces, XdpMode mode,
                      uint32_t max_rules);

}  // namespace smtpfence
