// `ports`: the TCP ports the fence treats as SMTP.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct PortsOptions {
    std::string list;
    bool set = false;  // LIST was given (from the option's count): set, else show
    bool force = false;  // well-known non-SMTP ports too (see check_non_smtp_ports)
};
void register_ports(CLI::App& app, std::vector<Command>& commands);
int run_ports(const PortsOptions& options, const CliContext& ctx);

}  // namespace smtpfence
