#include "cli/stats.h"

#include <memory>

#include "cli/intervals.h"
#include "fence/observe.h"
#include "fence/rule_store.h"
#include "output/json.h"
#include "output/observe_output.h"
#include "output/terminal.h"
#include "text/durations.h"

namespace smtpfence {

void register_stats(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<StatsOptions>();
    auto* cmd = app.add_subcommand("stats", "global and per-rule counters; --watch adds rates per second");
    cmd->add_flag("--json", options->json, "machine-readable output (with --watch: one object per line)");
    auto* watch = cmd->add_option("--watch", options->watch_s, "redraw every SECS seconds (default 1) with rates")
                      ->expected(0, 1)
                      ->default_str("1")
                      ->check(CLI::Range(0.1, 3600.0));
    cmd->add_option("--count", options->count, "with --watch: stop after COUNT intervals (default: Ctrl-C)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 32));
    commands.push_back({cmd, [options, watch](const CliContext& ctx) {
                            options->watch = watch->count() > 0;
                            return run_stats(*options, ctx);
                        }});
}

int run_stats(const StatsOptions& options, const CliContext& ctx) {
    Fence fence = Fence::open(ctx.pin_dir);
    StatsSnapshot previous = take_stats(fence);
    if (!options.watch) {
        if (options.json) {
            print_json(ctx.out, stats_json(previous, nullptr, monotonic_to_unix_offset_ns()));
        } else {
            ctx.out << stats_text(previous, nullptr, monotonic_to_unix_offset_ns());
        }
        return kExitOk;
    }
    bool redraw = !options.json && is_terminal(ctx.out);
    if (redraw) ctx.out << kClearScreen << stats_text(previous, nullptr, monotonic_to_unix_offset_ns()) << std::flush;
    every_interval(options.watch_s, options.count, [&] {
        StatsSnapshot now = take_stats(fence);
        StatsRates rates = stats_rates(previous, now);
        int64_t offset = monotonic_to_unix_offset_ns();
        if (options.json) {
            ctx.out << json_text(stats_json(now, &rates, offset), -1) << '\n';  // one object per line
        } else if (redraw) {
            ctx.out << kClearScreen << stats_text(now, &rates, offset);
        } else {
            ctx.out << stats_line(now, rates, offset);
        }
        ctx.out << std::flush;
        previous = std::move(now);
    });
    return kExitOk;
}

}  // namespace smtpfence
