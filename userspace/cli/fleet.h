// `fleet`: the rules of every entry point, in one place (etcd). `fleet block`,
// `allow`, `limit` and `remove` take the local verb's options plus --role and
// --host, store the rule, and wait until every targeted live host applied it;
// `enforce` makes a dry run live; `fleet list` shows the stored rules, `fleet status` every host.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/limit.h"
#include "text/defaults.h"

namespace smtpfence {

struct FleetOptions {
    std::string config = kDefaultConfigPath;  // the etcd_* keys
    bool insecure = false;
};

// Whom a fleet change targets, and how long to wait for them.
struct FleetTargetOptions {
    std::vector<std::string> roles, hosts;  // neither: every host
    std::string wait = "2s";
    bool no_wait = false;
};

struct FleetRuleOptions : LimitOptions {
    FleetTargetOptions target;
};

struct FleetRemoveOptions {
    std::vector<std::string> cidrs;
    FleetTargetOptions target;
};

struct FleetListOptions {
    bool json = false;
};

void register_fleet(CLI::App& app, std::vector<Command>& commands);
int run_fleet_rules(const FleetOptions& fleet, const FleetRuleOptions& options, Action action, const CliContext& ctx);
int run_fleet_remove(const FleetOptions& fleet, const FleetRemoveOptions& options, const CliContext& ctx);
// `fleet enforce`: dry-run fleet rules become live (the same options as remove).
int run_fleet_enforce(const FleetOptions& fleet, const FleetRemoveOptions& options, const CliContext& ctx);
int run_fleet_list(const FleetOptions& fleet, const FleetListOptions& options, const CliContext& ctx);
int run_fleet_status(const FleetOptions& fleet, const FleetListOptions& options, const CliContext& ctx);

}  // namespace smtpfence
