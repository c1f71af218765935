// What block, allow and limit share: the options of a new rule, each defined
// once, and adding the rules they describe.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "text/rule.h"
#include "text/rule_options.h"

namespace smtpfence {

struct RuleOptions {
    std::vector<std::string> cidrs;
    std::string reason;
    std::string for_text, until;
    bool permanent = false;  // no deadline, also where the rule had one
    bool dry_run = false;
    bool force = false;  // block and limit only
};

// CIDR: the prefixes the rules are for.
void add_cidr_argument(CLI::App* cmd, RuleOptions& options);
// --reason, --for, --until and --permanent: why the rule is there and when it ends.
void add_reason_and_expiry_options(CLI::App* cmd, RuleOptions& options);
// --dry-run and --force: for the rules that drop (block and limit).
void add_drop_options(CLI::App* cmd, RuleOptions& options);

// The rules `options` ask for, one per prefix, every prefix and option
// checked (UsageError); created_by, origin and created_unix are left empty.
std::vector<RuleSpec> rule_specs_of(const RuleOptions& options, Action action, const LimitTexts& limit,
                                    std::ostream& err);

// Checks every prefix and option before anything changes, then adds (or
// updates, or replaces) one rule per prefix, says what happened and audits it.
// `limit` holds the terms of a limit rule (Action::Limit only).
int add_rules(const RuleOptions& options, Action action, const LimitTexts& limit, const CliContext& ctx);

}  // namespace smtpfence
