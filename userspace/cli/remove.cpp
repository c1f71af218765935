#include "cli/remove.h"

#include <memory>

#include "base/errors.h"
#include "fence/rule_store.h"
#include "fence/session.h"

namespace smtpfence {

void register_remove(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<RemoveOptions>();
    auto* cmd = app.add_subcommand("remove", "remove rules by their exact prefix");
    cmd->alias("unblock");
    cmd->add_option("CIDR", options->cidrs, "prefix of the rule to remove")->required();
    cmd->add_flag("--force", options->force, "also a fleet rule, on this host only (see `smtpfence fleet remove`)");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_remove(*options, ctx); }});
}

int run_remove(const RemoveOptions& options, const CliContext& ctx) {
    auto cidrs = parse_cidrs(options.cidrs, ctx.err);
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    // All or nothing: a typo in one prefix must not leave the others half-removed.
    std::vector<Rule> all = fence.rules();
    for (const auto& cidr : cidrs) {
        if (fence.find_rule(cidr)) continue;
        std::string msg = "no rule for " + format_cidr(cidr) + "; rules are removed by their exact prefix";
        for (const auto& r : all) {
            if (r.cidr.contains(cidr)) {
                msg += " (it is covered by " + std::string(action_name(r.action)) + " " + format_cidr(r.cidr) + ")";
            }
        }
        throw RuntimeError(msg + "; nothing was removed (see `smtpfence list`)");
    }
    for (const auto& cidr : cidrs) {
        auto rule = fence.find_rule(cidr);
        if (options.force || !is_fleet_origin(rule->origin)) continue;
        throw UsageError(format_cidr(cidr) + " is a fleet rule (" + rule->origin +
                         "): remove it for the fleet with `smtpfence fleet remove " + format_cidr(cidr) +
                         "`, or here only with --force (the agent puts it back when the fleet's rules change); "
                         "nothing was removed");
    }
    for (const auto& cidr : cidrs) {
        auto rule = fence.find_rule(cidr);
        fence.remove_rule(cidr);
        ctx.out << "removed " << format_cidr(cidr) << '\n';
        if (rule) session.record("remove", *rule);
    }
    session.commit();
    return kExitOk;
}

void register_flush(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<FlushOptions>();
    auto* cmd = app.add_subcommand("flush", "remove every rule");
    cmd->add_flag("--yes,--force", options->yes, "yes, all of them");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_flush(*options, ctx); }});
}

int run_flush(const FlushOptions& options, const CliContext& ctx) {
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    std::vector<Rule> rules = fence.rules();
    if (!rules.empty() && !options.yes) {
        throw UsageError("flush removes all " + std::to_string(rules.size()) +
                         " rules: confirm with `smtpfence flush --yes` (`smtpfence save FILE` keeps a copy to "
                         "restore); nothing was removed");
    }
    for (const auto& r : rules) {
        fence.remove_rule(r.cidr);
        session.record("remove", r);
    }
    session.commit();
    ctx.out << "removed " << rules.size() << (rules.size() == 1 ? " rule" : " rules") << '\n';
    return kExitOk;
}

}  // namespace smtpfence
