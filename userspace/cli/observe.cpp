// Watching the fence work: stats, top, events, metrics, serve.
#include <chrono>
#include <memory>
#include <poll.h>

#include "cli/commands.h"
#include "cli/serve.h"
#include "fence/observe.h"
#include "fence/rule_store.h"
#include "output/json.h"
#include "output/metrics.h"
#include "output/observe_output.h"
#include "output/terminal.h"
#include "text/durations.h"

namespace smtpfence {

namespace {

using Clock = std::chrono::steady_clock;

// Options of the subcommands, filled by CLI11.
struct Args {
    bool json = false;
    double watch_s = 1;
    bool watch = false;  // set from the option's count
    double interval_s = 1;
    size_t count = 0;  // intervals to show; 0 = until SIGINT/SIGTERM
    size_t top_n = 10;
    uint16_t port = 0;
    bool follow = false;
    std::string listen;
};

// Sleeps until `deadline`; true when a stop signal came first.
bool stopped_before(StopSignals& signals, Clock::time_point deadline) {
    for (auto now = Clock::now(); now < deadline; now = Clock::now()) {
        if (signals.wait(std::chrono::ceil<std::chrono::milliseconds>(deadline - now))) return true;
    }
    return signals.stopped();
}

Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// The loop of `stats --watch` and `top`: calls `show` every `interval_s`
// seconds (a redraw on a terminal, a line otherwise), `count` times or until
// SIGINT/SIGTERM. The schedule is fixed, so slow reads do not make it drift.
template <typename Show>
void every_interval(double interval_s, size_t count, Show show) {
    StopSignals signals;
    auto start = Clock::now();
    for (size_t i = 1; count == 0 || i <= count; ++i) {
        if (stopped_before(signals, start + seconds(interval_s * static_cast<double>(i)))) return;
        show();
    }
}

int cmd_stats(const Args& a, const CliContext& ctx) {
    Fence fence = Fence::open(ctx.pin_dir);
    StatsSnapshot previous = take_stats(fence);
    if (!a.watch) {
        if (a.json) {
            print_json(ctx.out, stats_json(previous, nullptr, boot_to_unix_offset_ns()));
        } else {
            ctx.out << stats_text(previous, nullptr, boot_to_unix_offset_ns());
        }
        return kExitOk;
    }
    bool redraw = !a.json && is_terminal(ctx.out);
    if (redraw) ctx.out << kClearScreen << stats_text(previous, nullptr, boot_to_unix_offset_ns()) << std::flush;
    every_interval(a.watch_s, a.count, [&] {
        StatsSnapshot now = take_stats(fence);
        StatsRates rates = stats_rates(previous, now);
        int64_t offset = boot_to_unix_offset_ns();
        if (a.json) {
            ctx.out << stats_json(now, &rates, offset).dump() << '\n';  // one object per line
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

int cmd_top(const Args& a, const CliContext& ctx) {
    Fence fence = Fence::open(ctx.pin_dir);
    SourceTable sources(ctx.pin_dir);
    TopQuery query;
    query.limit = a.top_n;
    if (a.port) query.port = a.port;
    bool redraw = is_terminal(ctx.out);
    // --json is one sample; text goes on like top(1).
    size_t count = a.json ? 1 : a.count;
    if (redraw && !a.json) ctx.out << kClearScreen << "smtpfence top: sampling for " << a.interval_s << " s\n" << std::flush;
    SourceSnapshot previous = sources.snapshot();
    every_interval(a.interval_s, count, [&] {
        SourceSnapshot now = sources.snapshot();
        TopView view = compute_top(previous, now, fence.rules(), query, sources.capacity());
        int64_t offset = boot_to_unix_offset_ns();
        if (a.json) {
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

int cmd_events(const Args& a, const CliContext& ctx) {
    Fence fence = Fence::open(ctx.pin_dir);
    EventStream stream(ctx.pin_dir);
    uint64_t suppressed_reported = 0;
    auto show_pending = [&] {
        int64_t offset = boot_to_unix_offset_ns();
        for (const fence_event& e : stream.drain()) {
            if (a.json) {
                ctx.out << event_json(e, offset).dump() << '\n';
            } else {
                ctx.out << event_text(e, offset);
            }
        }
        // So that a reader knows the stream is not the whole story.
        uint64_t suppressed = fence.counters().events_suppressed;
        if (suppressed > suppressed_reported) {
            uint64_t now_unix_ns = static_cast<uint64_t>(static_cast<int64_t>(boottime_now_ns()) + offset);
            uint64_t held = suppressed - suppressed_reported;
            if (a.json) {
                ctx.out << suppressed_json(held, suppressed, now_unix_ns).dump() << '\n';
            } else {
                ctx.out << suppressed_text(held, suppressed, now_unix_ns);
            }
            suppressed_reported = suppressed;
        }
        ctx.out << std::flush;
    };
    if (!a.follow) {
        show_pending();
        return kExitOk;
    }
    StopSignals signals;
    show_pending();
    while (!signals.stopped()) {
        // Wakes for events, for a stop signal, and every second to look at
        // the suppressed counter.
        pollfd fds[2] = {{stream.poll_fd(), POLLIN, 0}, {signals.fd(), POLLIN, 0}};
        ::poll(fds, 2, 1000);
        if (signals.wait(std::chrono::milliseconds(0))) break;
        show_pending();
    }
    return kExitOk;
}

}  // namespace

void add_observe_commands(CLI::App& app, std::vector<Command>& commands) {
    auto a = std::make_shared<Args>();

    auto* stats_cmd = app.add_subcommand("stats", "global and per-rule counters; --watch adds rates per second");
    stats_cmd->add_flag("--json", a->json, "machine-readable output (with --watch: one object per line)");
    auto* watch = stats_cmd->add_option("--watch", a->watch_s, "redraw every SECS seconds (default 1) with rates")
                      ->expected(0, 1)
                      ->default_str("1")
                      ->check(CLI::Range(0.1, 3600.0));
    stats_cmd->add_option("--count", a->count, "with --watch: stop after COUNT intervals (default: Ctrl-C)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 32));
    commands.push_back({stats_cmd, [a, watch](const CliContext& ctx) {
                            a->watch = watch->count() > 0;
                            return cmd_stats(*a, ctx);
                        }});

    auto* top_cmd = app.add_subcommand("top", "busiest sources by new-connection rate, and what happened to them");
    top_cmd->add_flag("--json", a->json, "one sample as JSON, then exit");
    top_cmd->add_option("-n", a->top_n, "sources shown")->check(CLI::Range(size_t{1}, size_t{1} << 20))->capture_default_str();
    top_cmd->add_option("--interval", a->interval_s, "seconds between samples; rates are over this interval")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    top_cmd->add_option("--port", a->port, "only this SMTP port (default: a source's ports added up)")
        ->check(CLI::Range(1, 65535));
    top_cmd->add_option("--count", a->count, "stop after COUNT samples (default: Ctrl-C)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 32));
    commands.push_back({top_cmd, [a](const CliContext& ctx) { return cmd_top(*a, ctx); }});

    auto* events_cmd = app.add_subcommand("events", "drop events: a source's first drop by a rule");
    events_cmd->add_flag("--json", a->json, "one JSON object per line");
    events_cmd->add_flag("-f,--follow", a->follow, "keep waiting for events until Ctrl-C");
    commands.push_back({events_cmd, [a](const CliContext& ctx) { return cmd_events(*a, ctx); }});

    auto* metrics_cmd = app.add_subcommand("metrics", "Prometheus text exposition on stdout");
    commands.push_back({metrics_cmd, [](const CliContext& ctx) {
                            ctx.out << metrics_text(gather_metrics(Fence::open(ctx.pin_dir)));
                            return kExitOk;
                        }});

    auto* serve_cmd = app.add_subcommand("serve", "HTTP: /metrics (Prometheus), /rules and /top (JSON)");
    serve_cmd->add_option("--listen", a->listen, "ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464")->required();
    commands.push_back({serve_cmd, [a](const CliContext& ctx) {
                            ListenAddress address = parse_listen_address(a->listen);
                            serve(ctx.pin_dir, address, ctx.out, ctx.err, ctx.warn_block_age_s);
                            return kExitOk;
                        }});
}

}  // namespace smtpfence
