// `list`: the rules with their counters; `list --list NAME`: the prefixes of
// an imported list, a page at a time.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct ListOptions {
    bool json = false;
    std::string list;  // an imported list's name
    size_t offset = 0, count = 1000;
};
void register_list(CLI::App& app, std::vector<Command>& commands);
int run_list(const ListOptions& options, const CliContext& ctx);

}  // namespace smtpfence
