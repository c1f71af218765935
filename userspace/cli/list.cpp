#include "cli/list.h"

#include <ctime>
#include <memory>

#include "fence/rule_store.h"
#include "fence/session.h"
#include "output/json.h"
#include "output/rules.h"

namespace smtpfence {

void register_list(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<ListOptions>();
    auto* cmd = app.add_subcommand("list", "rules with their counters");
    cmd->add_flag("--json", options->json, "machine-readable output");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_list(*options, ctx); }});
}

int run_list(const ListOptions& options, const CliContext& ctx) {
    FenceSession session = open_session(ctx);
    session.commit_if_changed();
    auto rules = session.fence().rules();
    auto now = static_cast<uint64_t>(std::time(nullptr));
    if (options.json) {
        print_json(ctx.out, rules_json(rules, now, ctx.warn_block_age_s));
    } else {
        ctx.out << rules_text(rules, now, ctx.warn_block_age_s);
    }
    return kExitOk;
}

}  // namespace smtpfence
