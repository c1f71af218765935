// `import` (a prefix list file becomes a named list), `unimport` and `lists`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace smtpfence {

struct ImportOptions {
    std::string file;  // or "-" for stdin
    std::string name;
    std::string action = "block";
    std::string reason;
    std::string for_text, until;
    bool skip_invalid = false;
    bool force = false;  // prefixes broader than /8 (IPv4) or /32 (IPv6) in a block list
};
void register_import(CLI::App& app, std::vector<Command>& commands);
int run_import(const ImportOptions& options, const CliContext& ctx);

struct UnimportOptions {
    std::string name;
};
void register_unimport(CLI::App& app, std::vector<Command>& commands);
int run_unimport(const UnimportOptions& options, const CliContext& ctx);

struct ListsOptions {
    bool json = false;
};
void register_lists(CLI::App& app, std::vector<Command>& commands);
int run_lists(const ListsOptions& options, const CliContext& ctx);

}  // namespace smtpfence
