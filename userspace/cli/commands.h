// The subcommands, in groups that each live in their own file: cli.cpp owns
// the global options, parsing and the mapping of failures to exit codes; a
// group adds its subcommands and says how to run them.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "fence/attach.h"
#include "fence/session.h"
#include "text/defaults.h"

namespace smtpfence {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// What every command gets once the command line parsed.
struct CliContext {
    std::string pin_dir;
    std::string state_dir;  // the state file and (unless the default) the audit log
    bool syslog = true;     // audit to syslog too; SMTPFENCE_SYSLOG=0 turns it off
    std::ostream& out;
    std::ostream& err;
    uint64_t warn_block_age_s = kDefaultWarnBlockAgeSeconds;  // list/status warn about older blocks; 0 = never
};

struct Command {
    CLI::App* app;  // the subcommand; its handler runs when it was parsed
    std::function<int(const CliContext&)> run;
};

// Rules and attachments: attach, detach, block, allow, limit, enforce,
// remove, ports, list, status (cli_rules.cpp).
void add_rule_commands(CLI::App& app, std::vector<Command>& commands);
// The rule set on disk and at boot: save, restore, flush, reap, boot
// (cli_state.cpp).
void add_state_commands(CLI::App& app, std::vector<Command>& commands);
// Watching the fence work: stats, top, events, metrics, serve (cli_observe.cpp).
void add_observe_commands(CLI::App& app, std::vector<Command>& commands);

// --warn-block-age: a duration ("3d", "36h") or "0"/"off" (never warn).
// Throws UsageError.
uint64_t parse_warn_block_age(const std::string& text);

// The session of a command that changes the rules (see FenceSession).
inline FenceSession open_session(const CliContext& ctx) {
    return FenceSession(ctx.pin_dir, ctx.state_dir, ctx.syslog, ctx.err);
}

// Attaches (see fence/attach.h), saves the state file and tells the user what
// happened: shared by `attach` and `boot`.
int attach_and_report(const CliContext& ctx, const std::vector<std::string>& interfaces, XdpMode mode,
                      uint32_t max_rules);

}  // namespace smtpfence
