#include "cli/block.h"

#include <memory>

namespace smtpfence {

void register_block(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<BlockOptions>();
    auto* cmd = app.add_subcommand("block", "drop new SMTP connections from sources");
    add_cidr_argument(cmd, *options);
    add_reason_and_expiry_options(cmd, *options);
    add_drop_options(cmd, *options);
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_block(*options, ctx); }});
}

int run_block(const BlockOptions& options, const CliContext& ctx) {
    return add_rules(options, Action::Block, {}, ctx);
}

void register_allow(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<AllowOptions>();
    auto* cmd = app.add_subcommand("allow", "let sources in, even inside a broader block");
    add_cidr_argument(cmd, *options);
    add_reason_and_expiry_options(cmd, *options);
    // Taken, so that the refusal can say why (see check_dry_run).
    cmd->add_flag("--dry-run", options->dry_run, "(refused: an allow drops nothing)");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_allow(*options, ctx); }});
}

int run_allow(const AllowOptions& options, const CliContext& ctx) {
    return add_rules(options, Action::Allow, {}, ctx);
}

}  // namespace smtpfence
