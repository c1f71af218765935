#include "cli/events.h"

#include <chrono>
#include <memory>
#include <poll.h>

#include "fence/lists.h"
#include "fence/observe.h"
#include "fence/rule_store.h"
#include "fence/state_file.h"
#include "output/json.h"
#include "output/observe_output.h"
#include "output/terminal.h"
#include "text/durations.h"

namespace smtpfence {

void register_events(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<EventsOptions>();
    auto* cmd = app.add_subcommand("events", "drop events: a source's first drop by a rule");
    cmd->add_flag("--json", options->json, "one JSON object per line");
    cmd->add_flag("-f,--follow", options->follow, "keep waiting for events until Ctrl-C");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_events(*options, ctx); }});
}

int run_events(const EventsOptions& options, const CliContext& ctx) {
    Fence fence = Fence::open(ctx.pin_dir);
    EventStream stream(ctx.pin_dir);
    const FenceLists lists = FenceLists::open(ctx.pin_dir, list_store_dir(ctx.state_dir, ctx.pin_dir));
    uint64_t suppressed_reported = 0;
    auto show_pending = [&] {
        int64_t offset = monotonic_to_unix_offset_ns();
        // Read per batch: a list imported while following gets its name.
        const std::map<uint32_t, std::string> list_names = lists.names_by_rule_id();
        for (const fence_event& e : stream.drain()) {
            const auto list = list_names.find(e.rule_id);
            const std::string_view list_name = list == list_names.end() ? std::string_view{} : list->second;
            if (options.json) {
                ctx.out << json_text(event_json(e, offset, list_name), -1) << '\n';
            } else {
                ctx.out << event_text(e, offset, list_name);
            }
        }
        // So that a reader knows the stream is not the whole story.
        uint64_t suppressed = fence.counters().events_suppressed;
        if (suppressed > suppressed_reported) {
            uint64_t now_unix_ns = static_cast<uint64_t>(static_cast<int64_t>(monotonic_now_ns()) + offset);
            uint64_t held = suppressed - suppressed_reported;
            if (options.json) {
                ctx.out << json_text(suppressed_json(held, suppressed, now_unix_ns), -1) << '\n';
            } else {
                ctx.out << suppressed_text(held, suppressed, now_unix_ns);
            }
            suppressed_reported = suppressed;
        }
        ctx.out << std::flush;
    };
    if (!options.follow) {
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

}  // namespace smtpfence
