#include "cli/status.h"

#include <algorithm>
#include <ctime>
#include <memory>

#include "fence/pacing.h"
#include "fence/rule_store.h"
#include "fence/lists.h"
#include "fence/state_file.h"
#include "output/json.h"
#include "output/status.h"

namespace smtpfence {

void register_status(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<StatusOptions>();
    auto* cmd = app.add_subcommand("status",
                                   "everything in force: interfaces, program, ports, rules, state file, warnings");
    cmd->add_flag("--json", options->json, "machine-readable output");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_status(*options, ctx); }});
}

int run_status(const StatusOptions& options, const CliContext& ctx) {
    // Read without the lock, so that status answers while a change is stuck;
    // expired rules show as expired until a change or `reap` removes them.
    const Fence fence = Fence::open(ctx.pin_dir);
    const FenceLists lists_in_force = FenceLists::open(ctx.pin_dir, list_store_dir(ctx.state_dir, ctx.pin_dir));
    StatusView st;
    st.version = SMTPFENCE_VERSION;
    st.pin_dir = ctx.pin_dir;
    st.program_id = fence.program_id();
    st.attachments = fence.attachments();
    st.ports = fence.ports();
    st.rules = fence.rules();
    st.capacity = fence.capacity();
    const FenceLists::Totals lists = lists_in_force.totals();
    st.lists = lists.lists;
    st.list_prefixes = lists.prefixes;
    st.counters = fence.counters();
    st.now_unix = static_cast<uint64_t>(std::time(nullptr));
    st.state = check_state_file(state_file_path(ctx.state_dir, ctx.pin_dir), st.ports, st.rules);
    st.warn_block_age_s = ctx.warn_block_age_s;
    if (std::any_of(st.rules.begin(), st.rules.end(), [](const Rule& r) { return r.limit.message_interval_ns; })) {
        for (const auto& att : st.attachments) {
            if (att.ifindex == 0) continue;
            RootQdisc root = root_qdisc(att.name);
            if (!root.ours())
                st.unpaced_interfaces.push_back(att.name + " (root qdisc " + root.kind + " " + root.handle + ")");
        }
    }
    st.fleet = read_agent_state(ctx.state_dir);
    st.warnings = status_warnings(st);
    if (options.json) {
        print_json(ctx.out, status_json(st));
    } else {
        ctx.out << status_text(st);
    }
    return kExitOk;
}

}  // namespace smtpfence
