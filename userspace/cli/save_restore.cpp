#include "cli/save_restore.h"

#include <algorithm>
#include <map>
#include <memory>

#include "base/errors.h"
#include "fence/rule_store.h"
#include "fence/state_file.h"
#include "text/durations.h"
#include "text/ports.h"

namespace smtpfence {

void register_save(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<SaveOptions>();
    auto* cmd = app.add_subcommand("save", "print the rules as the commands that make them, or write them to FILE");
    cmd->add_option("FILE", options->file, "write here (atomically) instead of printing");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_save(*options, ctx); }});
}

int run_save(const SaveOptions& options, const CliContext& ctx) {
    // Read without the lock (see run_status): a rule that expired but is not
    // reaped yet is saved with its past deadline, and `restore` skips it.
    const Fence fence = Fence::open(ctx.pin_dir);
    std::vector<Rule> rules = fence.rules();
    std::string text = format_rule_set(fence.ports(), rules);
    if (options.file.empty() || options.file == "-") {
        ctx.out << text;
    } else {
        write_file_atomically(options.file, text);
        ctx.out << "saved " << rules.size() << " rules and the ports to " << options.file << '\n';
    }
    return kExitOk;
}

void register_restore(CLI::App& app, std::vector<Command>& commands) {
    auto options = std::make_shared<RestoreOptions>();
    auto* cmd = app.add_subcommand(
        "restore", "make the rules equal to a saved file (default: the state file): add, update, remove");
    cmd->add_option("FILE", options->file, "a file written by `smtpfence save`");
    commands.push_back({cmd, [options](const CliContext& ctx) { return run_restore(*options, ctx); }});
}

int run_restore(const RestoreOptions& options, const CliContext& ctx) {
    std::string path = options.file.empty() ? state_file_path(ctx.state_dir, ctx.pin_dir) : options.file;
    // The whole file is read and checked before anything changes.
    RuleSet set = read_rule_set(path);
    FenceSession session = open_session(ctx);
    restore_rule_set(session, set, false, ctx.out);
    session.commit();
    return kExitOk;
}

RuleSet read_rule_set(const std::string& path) {
    auto text = read_file(path);
    if (!text) throw RuntimeError("no file " + path + " to restore (`smtpfence save FILE` writes one)");
    return parse_rule_set(*text, path);
}

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

}  // namespace smtpfence
