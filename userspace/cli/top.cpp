#include "cli/top.h"

#include <memory>

#include "cli/intervals.h"
#include "fence/lists.h"
#include "fence/observe.h"
#include "fence/rule_store.h"
#include "fence/state_file.h"
#include "output/json.h"
#include "output/observe_output.h"
#include "output/terminal.h"
#include "text/durations.h"

namespace smtpfence {

void register_top(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<TopOptions>();
    auto* cmd = app.add_subcommand("top", "busiest sources by new-connection rate, and what happened to them");
    cmd->add_flag("--json", options->json, "one sample as JSON, then exit");
    cmd->add_option("-n", options->top_n, "sources shown")
        ->check(CLI::Range(size_t{1}, size_t{1} << 20))
        ->capture_default_str();
    cmd->add_option("--interval", options->interval_s, "seconds between samples; rates are over this interval")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    cmd->add_option("--port", options->port, "only this SMTP port (default: a source's ports added up)")
        ->check(CLI::Range(1, 65535));
    cmd->add_option("--count", options->count, "stop after COUNT samples (default: Ctrl-C)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 32));
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_top(*options, ctx); }});
}

int run_top(const TopOptions& options, const CliContext& ctx) {
    Fence fence = Fence::open(ctx.pin_dir);
    SourceTable sources(ctx.pin_dir);
    const FenceLists lists = FenceLists::open(ctx.pin_dir, list_store_dir(ctx.state_dir, ctx.pin_dir));
    TopQuery query;
    query.limit = options.top_n;
    if (options.port) query.port = options.port;
    bool redraw = is_terminal(ctx.out);
    // --json is one sample; text goes on like top(1).
    size_t count = options.json ? 1 : options.count;
    if (redraw && !options.json) {
        ctx.out << kClearScreen << "smtpfence top: sampling for " << options.interval_s << " s\n" << std::flush;
    }
    SourceSnapshot previous = sources.snapshot();
    every_interval(options.interval_s, count, [&] {
        SourceSnapshot now = sources.snapshot();
        TopView view = compute_top(previous, now, fence.rules(), query, sources.capacity(), lists.names_by_rule_id());
        int64_t offset = monotonic_to_unix_offset_ns();
        if (options.json) {
            print_json(ctx.out, top_json(view, offset));
        } else if (redraw) {
            ctx.out << kClearScreen << top_text(view, offset);
        } else {
            ctx.out << top_line(view, offset);
        }
        ctx.out << std::flush;
        previous = std::move(now);
    });
    return kExitOk;
}

}  // namespace smtpfence
