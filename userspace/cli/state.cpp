// The rule set on disk and at boot: save, restore, flush, reap, boot.
#include <algorithm>
#include <ctime>
#include <map>
#include <memory>

#include "base/errors.h"
#include "cli/attach.h"
#include "cli/commands.h"
#include "fence/attach.h"
#include "fence/rule_store.h"
#include "fence/session.h"
#include "fence/state_file.h"
#include "text/config.h"
#include "text/defaults.h"
#include "text/durations.h"
#include "text/rule_set.h"

namespace smtpfence {

namespace {

struct StateArgs {
    std::string file;
    std::string config;  // reap: optional
    std::string boot_config = kDefaultConfigPath;
    bool yes = false;
};

RuleSet read_rule_set(const std::string& path) {
    auto text = read_file(path);
    if (!text) throw RuntimeError("no file " + path + " to restore (`smtpfence save FILE` writes one)");
    return parse_rule_set(*text, path);
}

// Makes the kernel equal to `set`: removes the rules it does not name (the
// broadest first), then adds or updates the ones that differ (the narrowest
// first, so that an allow is in place before the block around it). A rule
// whose deadline has passed is skipped, and audited as expired.
// `keep_ports`: the ports stay as they are (the boot config set them).
void restore_rule_set(FenceSession& session, const RuleSet& set, bool keep_ports, std::ostream& out) {
    Fence& fence = session.fence();
    uint64_t now = unix_now();
    std::map<Cidr, const RuleSpec*> wanted;
    size_t expired = 0;
    for (const auto& spec : set.rules) {
        if (spec.expires_unix && spec.expires_unix <= now) {
            session.record("expire", rule_command(spec));
            out << "expired, not restored: " << rule_command(spec) << '\n';
            expired++;
            continue;
        }
        wanted[spec.cidr] = &spec;
    }
    std::vector<Rule> current = fence.rules();
    std::map<Cidr, const Rule*> in_kernel;
    for (const auto& r : current) in_kernel[r.cidr] = &r;

    std::vector<const Rule*> extra;
    for (const auto& r : current) {
        if (!wanted.count(r.cidr)) extra.push_back(&r);
    }
    std::stable_sort(extra.begin(), extra.end(),
                     [](const Rule* a, const Rule* b) { return a->cidr.prefixlen < b->cidr.prefixlen; });
    for (const Rule* r : extra) {
        fence.remove_rule(r->cidr);
        session.record("restore-remove", *r);
        out << "removed: " << rule_command(spec_of(*r)) << '\n';
    }

    std::vector<const RuleSpec*> to_apply;
    size_t unchanged = 0;
    for (const auto& [cidr, spec] : wanted) {
        auto it = in_kernel.find(cidr);
        if (it != in_kernel.end() && matches_spec(*it->second, *spec)) {
            unchanged++;
            continue;
        }
        to_apply.push_back(spec);
    }
    std::stable_sort(to_apply.begin(), to_apply.end(),
                     [](const RuleSpec* a, const RuleSpec* b) { return a->cidr.prefixlen > b->cidr.prefixlen; });
    size_t added = 0, updated = 0;
    for (const RuleSpec* spec : to_apply) {
        bool existed = in_kernel.count(spec->cidr) > 0;
        fence.add_rule(*spec);
        session.record(existed ? "restore-update" : "restore-add", rule_command(*spec));
        out << (existed ? "updated: " : "added: ") << rule_command(*spec) << '\n';
        (existed ? updated : added)++;
    }

    std::string ports_note = "ports unchanged";
    if (set.ports && !keep_ports && *set.ports != fence.ports()) {
        PortSet before = fence.ports();
        fence.set_ports(*set.ports);
        session.record("restore-ports", format_port_list(*set.ports) + " (were " + format_port_list(before) + ")");
        ports_note = "ports " + format_port_list(*set.ports) + " (were " + format_port_list(before) + ")";
    }
    out << "restored: " << added << " added, " << updated << " updated, " << extra.size() << " removed, " << unchanged
        << " unchanged, " << expired << " expired; " << ports_note << '\n';
}

int cmd_save(const StateArgs& a, const CliContext& ctx) {
    FenceSession session = open_session(ctx);
    std::vector<Rule> rules = session.fence().rules();
    std::string text = format_rule_set(session.fence().ports(), rules);
    session.commit_if_changed();
    if (a.file.empty() || a.file == "-") {
        ctx.out << text;
    } else {
        write_file_atomically(a.file, text);
        ctx.out << "saved " << rules.size() << " rules and the ports to " << a.file << '\n';
    }
    return kExitOk;
}

int cmd_restore(const StateArgs& a, const CliContext& ctx) {
    std::string path = a.file.empty() ? state_file_path(ctx.state_dir, ctx.pin_dir) : a.file;
    // The whole file is read and checked before anything changes.
    RuleSet set = read_rule_set(path);
    FenceSession session = open_session(ctx);
    restore_rule_set(session, set, false, ctx.out);
    session.commit();
    return kExitOk;
}

int cmd_flush(const StateArgs& a, const CliContext& ctx) {
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    std::vector<Rule> rules = fence.rules();
    if (!rules.empty() && !a.yes) {
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

BootConfig read_config(const std::string& path) {
    auto text = read_file(path);
    if (!text) throw RuntimeError("no config file " + path + " (scripts/install.sh installs an example)");
    return parse_boot_config(*text, path);
}

int report_reaped(const FenceSession& session, std::ostream& out) {
    for (const auto& r : session.reaped()) out << "expired and removed: " << rule_command(spec_of(r)) << '\n';
    out << "reaped " << session.reaped().size() << " expired " << (session.reaped().size() == 1 ? "rule" : "rules")
        << '\n';
    return kExitOk;
}

int cmd_reap(const StateArgs& a, const CliContext& ctx) {
    CliContext target = ctx;
    if (!a.config.empty()) {
        BootConfig cfg = read_config(a.config);
        target.pin_dir = cfg.pin_dir;
        target.state_dir = cfg.state_dir;
    }
    FenceSession session = open_session(target);
    session.commit_if_changed();
    return report_reaped(session, ctx.out);
}

// What the systemd unit runs at boot: attach to the configured interfaces,
// set the configured ports, restore the saved rules, reap the expired ones.
int cmd_boot(const StateArgs& a, const CliContext& ctx) {
    BootConfig cfg = read_config(a.boot_config);
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
                                    a.boot_config + ")");
        ctx.out << "SMTP ports from " << a.boot_config << ": " << format_port_list(*cfg.ports) << '\n';
    }
    if (saved) {
        ctx.out << "restoring " << state_path << '\n';
        restore_rule_set(session, *saved, cfg.ports.has_value(), ctx.out);
    } else {
        ctx.out << "no saved rules at " << state_path << " yet\n";
    }
    session.commit();
    return report_reaped(session, ctx.out);
}

}  // namespace

void add_state_commands(CLI::App& app, std::vector<Command>& commands) {
    auto a = std::make_shared<StateArgs>();

    auto* save_cmd = app.add_subcommand("save", "print the rules as the commands that make them, or write them to FILE");
    save_cmd->add_option("FILE", a->file, "write here (atomically) instead of printing");
    commands.push_back({save_cmd, [a](const CliContext& c) { return cmd_save(*a, c); }});

    auto* restore_cmd = app.add_subcommand(
        "restore", "make the rules equal to a saved file (default: the state file): add, update, remove");
    restore_cmd->add_option("FILE", a->file, "a file written by `smtpfence save`");
    commands.push_back({restore_cmd, [a](const CliContext& c) { return cmd_restore(*a, c); }});

    auto* flush_cmd = app.add_subcommand("flush", "remove every rule");
    flush_cmd->add_flag("--yes,--force", a->yes, "yes, all of them");
    commands.push_back({flush_cmd, [a](const CliContext& c) { return cmd_flush(*a, c); }});

    auto* reap_cmd = app.add_subcommand("reap", "remove expired rules (every command does it too)");
    reap_cmd->add_option("--config", a->config, "take the pin and state directories from this config file");
    commands.push_back({reap_cmd, [a](const CliContext& c) { return cmd_reap(*a, c); }});

    auto* boot_cmd = app.add_subcommand(
        "boot", "attach, set ports and restore the saved rules as the config file says (the systemd unit runs it)");
    boot_cmd->add_option("--config", a->boot_config, "the config file")->capture_default_str();
    commands.push_back({boot_cmd, [a](const CliContext& c) { return cmd_boot(*a, c); }});
}

}  // namespace smtpfence
