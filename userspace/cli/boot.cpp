#include "cli/boot.h"

#include <memory>
#include <optional>

#include "base/errors.h"
#include "cli/attach.h"
#include "cli/save_restore.h"
#include "fence/attach.h"
#include "fence/rule_store.h"
#include "fence/session.h"
#include "fence/state_file.h"
#include "text/config.h"
#include "text/ports.h"
#include "text/rule_set.h"

namespace smtpfence {

namespace {

BootConfig read_config(const std::string& path) {
    auto text = read_file(path);
    if (!text) throw RuntimeError("no config file " + path + " (scripts/install.sh installs an example)");
    return parse_boot_config(*text, path);
}

int report_reaped(const FenceSession& session, std::ostream& out) {
    for (const auto& r : session.reaped()) out << "expired and removed: " << rule_command(spec_of(r)) << '\n';
    for (const auto& name : session.reaped_lists()) out << "expired and removed: list " << name << '\n';
    out << "reaped " << session.reaped().size() << " expired " << (session.reaped().size() == 1 ? "rule" : "rules")
        << '\n';
    return kExitOk;
}

}  // namespace

void register_boot(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<BootOptions>();
    auto* cmd = app.add_subcommand(
        "boot", "attach, set ports and restore the saved rules as the config file says (the systemd unit runs it)");
    cmd->add_option("--config", options->config, "the config file")->capture_default_str();
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_boot(*options, ctx); }});
}

// What the systemd unit runs at boot: attach to the configured interfaces,
// set the configured ports, restore the saved rules, reap the expired ones.
int run_boot(const BootOptions& options, const CliContext& ctx) {
    BootConfig cfg = read_config(options.config);
    CliContext target{cfg.pin_dir, cfg.state_dir, ctx.syslog, ctx.out, ctx.err};
    XdpMode mode = parse_xdp_mode(cfg.mode);
    // Read before attaching: nothing may write the state file before it is restored.
    std::string state_path = state_file_path(cfg.state_dir, cfg.pin_dir);
    std::optional<RuleSet> saved;
    if (read_file(state_path)) saved = read_rule_set(state_path);
    attach_and_report(target, cfg.interfaces, mode, cfg.max_rules);
    FenceSession session = open_session(target);
    Fence& fence = session.fence();
    if (cfg.ports && *cfg.ports != fence.ports()) {
        PortSet before = fence.ports();
        fence.set_ports(*cfg.ports);
        session.record("ports", format_port_list(*cfg.ports) + " (were " + format_port_list(before) + ", from " +
                                    options.config + ")");
        ctx.out << "SMTP ports from " << options.config << ": " << format_port_list(*cfg.ports) << '\n';
    }
    if (saved) {
        ctx.out << "restoring " << state_path << '\n';
        restore_rule_set(session, *saved, cfg.ports.has_value(), ctx.out);
    } else {
        ctx.out << "no saved rules at " << state_path << " yet\n";
    }
    if (const size_t lists = session.lists().restore()) {
        ctx.out << "restored " << lists << (lists == 1 ? " list" : " lists") << " from "
                << session.lists().store_dir() << '\n';
    }
    session.commit();
    return report_reaped(session, ctx.out);
}

void register_reap(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<ReapOptions>();
    auto* cmd = app.add_subcommand("reap", "remove expired rules (every command does it too)");
    cmd->add_option("--config", options->config, "take the pin and state directories from this config file");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_reap(*options, ctx); }});
}

int run_reap(const ReapOptions& options, const CliContext& ctx) {
    CliContext target = ctx;
    if (!options.config.empty()) {
        BootConfig cfg = read_config(options.config);
        target.pin_dir = cfg.pin_dir;
        target.state_dir = cfg.state_dir;
    }
    FenceSession session = open_session(target);
    session.commit_if_changed();
    return report_reaped(session, ctx.out);
}

}  // namespace smtpfence
