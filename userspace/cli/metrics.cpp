#include "cli/metrics.h"

#include "fence/rule_store.h"
#include "output/metrics.h"

namespace smtpfence {

void register_metrics(CLI::App& app, std::vector<Command>& commands) {
    auto* cmd = app.add_subcommand("metrics", "Prometheus text exposition on stdout");
    commands.push_back({cmd, run_metrics});
}

int run_metrics(const CliContext& ctx) {
    ctx.out << metrics_text(gather_metrics(Fence::open(ctx.pin_dir), ctx.state_dir));
    return kExitOk;
}

}  // namespace smtpfence
