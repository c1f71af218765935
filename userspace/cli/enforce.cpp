#include "cli/enforce.h"

#include <memory>

#include "base/errors.h"
#include "fence/rule_store.h"
#include "fence/session.h"

namespace smtpfence {

void register_enforce(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<EnforceOptions>();
    auto* cmd = app.add_subcommand("enforce", "turn dry-run rules live, in place, keeping their counters");
    cmd->add_option("CIDR", options->cidrs, "prefix of the dry-run rule")->required();
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_enforce(*options, ctx); }});
}

// Turns dry-run rules live in place: one map write each, counters kept.
int run_enforce(const EnforceOptions& options, const CliContext& ctx) {
    auto cidrs = parse_cidrs(options.cidrs, ctx.err);
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    std::vector<Rule> rules;
    for (const auto& cidr : cidrs) {
        auto rule = fence.find_rule(cidr);
        if (!rule) {
            throw RuntimeError("no rule for " + format_cidr(cidr) +
                               "; enforce takes the exact prefix of a dry-run rule; nothing was changed (see "
                               "`smtpfence list`)");
        }
        rules.push_back(*rule);
    }
    for (const auto& rule : rules) {
        if (!rule.dry_run) {
            ctx.out << action_name(rule.action) << ' ' << format_cidr(rule.cidr) << ": already live\n";
            continue;
        }
        RuleSpec spec = spec_of(rule);
        spec.dry_run = false;
        fence.add_rule(spec);
        ctx.out << action_name(rule.action) << ' ' << format_cidr(rule.cidr) << ": live now (it would have dropped "
                << rule.counters.would_drop << " so far)\n";
        if (auto live = fence.find_rule(rule.cidr)) session.record("enforce", *live);
    }
    session.commit();
    return kExitOk;
}

}  // namespace smtpfence
