// `save` and `restore`: the rule set as a file of the commands that make it.
#pragma once

#include <CLI/CLI.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "fence/session.h"
#include "text/rule_set.h"

namespace smtpfence {

struct SaveOptions {
    std::string file;  // "" or "-": print
};
void register_save(CLI::App& app, std::vector<Command>& commands);
int run_save(const SaveOptions& options, const CliContext& ctx);

struct RestoreOptions {
    std::string file;  // "": the state file
};
void register_restore(CLI::App& app, std::vector<Command>& commands);
int run_restore(const RestoreOptions& options, const CliContext& ctx);

// The rule set saved at `path`, checked whole. Throws RuntimeError when there
// is no such file, UsageError naming the line that is wrong.
RuleSet read_rule_set(const std::string& path);

// Makes the kernel equal to `set`: removes the rules it does not name (the
// broadest first), then adds or updates the ones that differ (the narrowest
// first, so that an allow is in place before the block around it). A rule
// whose deadline has passed is skipped, and audited as expired.
// `keep_ports`: the ports stay as they are (the boot config set them).
// Shared by `restore` and `boot`.
void restore_rule_set(FenceSession& session, const RuleSet& set, bool keep_ports, std::ostream& out);

}  // namespace smtpfence
