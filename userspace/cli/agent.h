// `agent`: the daemon of a mail host in a fleet (smtpfence-agent.service):
// boots the fence as `boot` does, then keeps its fleet rules equal to the
// store's (see fleet/agent.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "text/defaults.h"

namespace smtpfence {

struct AgentOptions {
    std::string config = kDefaultConfigPath;
    bool insecure = false;  // allow http:// etcd endpoints
};
void register_agent(CLI::App& app, std::vector<Command>& commands);
int run_agent(const AgentOptions& options, const CliContext& ctx);

}  // namespace smtpfence
