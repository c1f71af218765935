#include "cli/attach.h"

#include <algorithm>
#include <memory>

#include "bpf/pin_dir.h"
#include "fence/pacing.h"
#include "fence/rule_store.h"
#include "fence/state_file.h"
#include "text/ports.h"

namespace smtpfence {

void register_attach(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<AttachOptions>();
    auto* cmd = app.add_subcommand("attach", "attach the fence to interfaces (re-attach upgrades in place)");
    cmd->add_option("IFACE", options->interfaces, "interfaces to guard")->required();
    cmd->add_option("--mode", options->mode, "XDP mode: native where the driver supports it, else generic")
        ->check(CLI::IsMember({"auto", "native", "generic"}))
        ->capture_default_str();
    cmd->add_option("--max-rules", options->max_rules, "rules per address family, fixed when the maps are created")
        ->check(CLI::Range(16u, 1u << 24))
        ->capture_default_str();
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_attach(*options, ctx); }});
}

int run_attach(const AttachOptions& options, const CliContext& ctx) {
    return attach_and_report(ctx, options.interfaces, parse_xdp_mode(options.mode), options.max_rules);
}

int attach_and_report(const CliContext& ctx, const std::vector<std::string>& interfaces, XdpMode mode,
                      uint32_t max_rules) {
    std::ostream& out = ctx.out;
    std::ostream& err = ctx.err;
    std::vector<std::string> notes;
    auto outcomes = attach(ctx.pin_dir, interfaces, mode, max_rules, notes, lock_wait(ctx));
    for (const auto& n : notes) err << "note: " << n << '\n';
    Fence fence = Fence::open(ctx.pin_dir);
    {
        // The new interfaces get the classes of rules paced already.
        PinDirLock lock(ctx.pin_dir, lock_wait(ctx));
        fence.sync_pacing();
    }
    if (fence.capacity() != max_rules && max_rules != kDefaultMaxRules) {
        err << "note: the maps in " << ctx.pin_dir << " already exist with room for " << fence.capacity()
            << " rules per family; --max-rules applies only when they are created\n";
    }
    for (const auto& o : outcomes) {
        out << "attached " << o.name << " (" << o.mode << " XDP, program " << fence.program_id() << ")";
        switch (o.change) {
        case AttachChange::New: break;
        case AttachChange::Swapped: out << ": replaced the previous program atomically"; break;
        case AttachChange::Reattached: out << ": mode changed, so it was detached and attached again"; break;
        }
        out << '\n';
    }
    const size_t in_force = fence.rules().size();
    out << "guarding SMTP ports " << format_port_list(fence.ports()) << "; " << in_force << " rules in force\n";
    if (in_force == 0) {
        // Fresh maps (after a reboot, say) next to a saved rule set: the first
        // change would overwrite the file with the empty set.
        std::string path = state_file_path(ctx.state_dir, ctx.pin_dir);
        StateFileHealth saved = check_state_file(path, fence.ports(), {});
        if (saved.rules > 0) {
            err << "note: " << path << " holds " << saved.rules << " saved rules that are not in force: "
                << "`smtpfence restore` brings them back (the next rule change would replace them)\n";
        }
    }
    return kExitOk;
}

void register_detach(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<DetachOptions>();
    auto* cmd = app.add_subcommand("detach", "stop filtering on interfaces; rules stay");
    cmd->add_option("IFACE", options->interfaces, "interfaces to release")->required();
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_detach(*options, ctx); }});
}

int run_detach(const DetachOptions& options, const CliContext& ctx) {
    auto not_attached = detach(ctx.pin_dir, options.interfaces, lock_wait(ctx));
    for (const auto& name : options.interfaces) {
        if (std::find(not_attached.begin(), not_attached.end(), name) != not_attached.end()) {
            ctx.err << "note: " << name << " was not attached: nothing to do\n";
        } else {
            ctx.out << "detached " << name << ": its SMTP traffic is no longer filtered; rules stay in " << ctx.pin_dir
                    << '\n';
        }
    }
    return kExitOk;
}

}  // namespace smtpfence
