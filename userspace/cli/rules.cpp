// Rules and attachments: attach, detach, block, allow, limit, enforce,
// remove, ports, list, status.
#include <ctime>
#include <map>
#include <memory>

#include "base/errors.h"
#include "cli/commands.h"
#include "fence/attach.h"
#include "fence/pacing.h"
#include "fence/provenance.h"
#include "fence/rule_store.h"
#include "fence/session.h"
#include "fence/state_file.h"
#include "output/json.h"
#include "output/rules.h"
#include "output/status.h"
#include "text/defaults.h"
#include "text/durations.h"
#include "text/limit_options.h"
#include "text/rule_options.h"

namespace smtpfence {

namespace {

std::vector<Cidr> parse_cidrs(const std::vector<std::string>& texts, std::ostream& err) {
    std::vector<Cidr> out;
    for (const auto& t : texts) {
        ParsedCidr parsed = parse_cidr(t);
        if (!parsed.note.empty()) err << "note: " << parsed.note << '\n';
        out.push_back(parsed.cidr);
    }
    return out;
}

// Options of the subcommands, filled by CLI11.
struct Args {
    std::string pin_dir;
    std::vector<std::string> interfaces;
    std::string mode = "auto";
    uint32_t max_rules = kDefaultMaxRules;
    std::vector<std::string> cidrs;
    std::string reason;
    std::string ports;
    bool json = false;
    LimitTexts limit;
    std::string for_text, until;
    bool dry_run = false;
    bool force = false;
};

}  // namespace

int attach_and_report(const CliContext& ctx, const std::vector<std::string>& interfaces, XdpMode mode,
                      uint32_t max_rules) {
    std::ostream& out = ctx.out;
    std::ostream& err = ctx.err;
    std::vector<std::string> notes;
    auto outcomes = attach(ctx.pin_dir, interfaces, mode, max_rules, notes);
    for (const auto& n : notes) err << "note: " << n << '\n';
    Fence fence = Fence::open(ctx.pin_dir);
    {
        // The new interfaces get the classes of rules paced already.
        PinDirLock lock(ctx.pin_dir);
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

namespace {

int cmd_detach(const Args& a, std::ostream& out, std::ostream& err) {
    auto not_attached = detach(a.pin_dir, a.interfaces);
    for (const auto& name : a.interfaces) {
        if (std::find(not_attached.begin(), not_attached.end(), name) != not_attached.end()) {
            err << "note: " << name << " was not attached: nothing to do\n";
        } else {
            out << "detached " << name << ": its SMTP traffic is no longer filtered; rules stay in "
                << a.pin_dir << '\n';
        }
    }
    return kExitOk;
}

// What a rule change looks like to the user: "block 203.0.113.0/24 (dry run,
// until 2026-12-01T08:00:00Z, in 1h30m): added".
std::string describe_spec(const RuleSpec& spec, uint64_t now) {
    std::string text = std::string(action_name(spec.action)) + " " + format_cidr(spec.cidr);
    std::vector<std::string> terms;
    if (spec.action == Action::Limit) terms.push_back(describe_limit(spec.limit, spec.cidr));
    if (spec.dry_run) terms.push_back("dry run: counts, drops nothing");
    if (spec.expires_unix) {
        terms.push_back("until " + format_utc(spec.expires_unix) + ", " + format_time_left(spec.expires_unix, now));
    }
    for (size_t i = 0; i < terms.size(); ++i) text += (i ? "; " : " (") + terms[i];
    return terms.empty() ? text : text + ")";
}

int cmd_add(const Args& a, Action action, const CliContext& ctx) {
    std::ostream& out = ctx.out;
    std::ostream& err = ctx.err;
    check_reason(a.reason);
    auto now = static_cast<uint64_t>(std::time(nullptr));
    uint64_t deadline = rule_deadline(a.for_text, a.until, now);
    // Every prefix is checked before anything changes.
    std::vector<RuleSpec> specs;
    for (const auto& cidr : parse_cidrs(a.cidrs, err)) {
        RuleSpec spec;
        spec.cidr = cidr;
        spec.action = action;
        if (action == Action::Limit) spec.limit = limit_spec_of(a.limit, cidr);
        spec.dry_run = a.dry_run;
        spec.expires_unix = deadline;
        spec.reason = a.reason;
        check_dry_run(spec);
        check_breadth(cidr, action, a.force);
        specs.push_back(std::move(spec));
    }
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    if (std::any_of(specs.begin(), specs.end(), [](const RuleSpec& s) { return s.limit.message_interval_ns != 0; })) {
        fence.check_pacing_possible();
    }
    std::vector<Rule> existing = fence.rules();
    std::vector<HostAddress> host = host_addresses();
    for (const auto& spec : specs) {
        for (const auto& w : coverage_warnings(spec.cidr, action, existing, host)) err << "warning: " << w << '\n';
    }
    std::string by = invoking_user(), origin = invoking_origin();
    for (auto& spec : specs) {
        spec.created_by = by;
        spec.origin = origin;
        AddResult r = fence.add_rule(spec);
        out << describe_spec(spec, now) << ": ";
        switch (r.change) {
        case RuleChange::Added: out << "added"; break;
        case RuleChange::Updated: out << "updated in place"; break;
        case RuleChange::Replaced: out << "replaced the " << action_name(*r.previous) << " rule"; break;
        }
        out << '\n';
        static const std::map<RuleChange, std::string> events{
            {RuleChange::Added, "add"}, {RuleChange::Updated, "update"}, {RuleChange::Replaced, "replace"}};
        if (auto rule = fence.find_rule(spec.cidr)) session.record(events.at(r.change), *rule);
    }
    session.commit();
    if (fence.attachments().empty()) {
        err << "warning: no interface is attached in " << a.pin_dir
            << ": rules are stored but not enforced until `smtpfence attach IFACE`\n";
    }
    return kExitOk;
}

// Turns dry-run rules live in place: one map write each, counters kept.
int cmd_enforce(const Args& a, const CliContext& ctx) {
    auto cidrs = parse_cidrs(a.cidrs, ctx.err);
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    std::vector<Rule> rules;
    for (const auto& cidr : cidrs) {
        auto rule = fence.find_rule(cidr);
        if (!rule) {
            throw RuntimeError("no rule for " + format_cidr(cidr) +
                               "; enforce takes the exact prefix of a dry-run rule; nothing was changed (see "
                               "`smtpfence list`)");
        }
        rules.push_back(*rule);
    }
    for (const auto& rule : rules) {
        if (!rule.dry_run) {
            ctx.out << action_name(rule.action) << ' ' << format_cidr(rule.cidr) << ": already live\n";
            continue;
        }
        RuleSpec spec = spec_of(rule);
        spec.dry_run = false;
        fence.add_rule(spec);
        ctx.out << action_name(rule.action) << ' ' << format_cidr(rule.cidr) << ": live now (it would have dropped "
                << rule.counters.would_drop << " so far)\n";
        if (auto live = fence.find_rule(rule.cidr)) session.record("enforce", *live);
    }
    session.commit();
    return kExitOk;
}

int cmd_remove(const Args& a, const CliContext& ctx) {
    std::ostream& out = ctx.out;
    auto cidrs = parse_cidrs(a.cidrs, ctx.err);
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    // All or nothing: a typo in one prefix must not leave the others half-removed.
    std::vector<Rule> all = fence.rules();
    for (const auto& cidr : cidrs) {
        if (fence.find_rule(cidr)) continue;
        std::string msg = "no rule for " + format_cidr(cidr) + "; rules are removed by their exact prefix";
        for (const auto& r : all) {
            if (r.cidr.contains(cidr)) {
                msg += " (it is covered by " + std::string(action_name(r.action)) + " " + format_cidr(r.cidr) + ")";
            }
        }
        throw RuntimeError(msg + "; nothing was removed (see `smtpfence list`)");
    }
    for (const auto& cidr : cidrs) {
        auto rule = fence.find_rule(cidr);
        fence.remove_rule(cidr);
        out << "removed " << format_cidr(cidr) << '\n';
        if (rule) session.record("remove", *rule);
    }
    session.commit();
    return kExitOk;
}

int cmd_ports(const Args& a, bool set, const CliContext& ctx) {
    std::ostream& out = ctx.out;
    if (!set) {
        out << format_port_list(Fence::open(a.pin_dir).ports()) << '\n';
        return kExitOk;
    }
    PortSet ports = parse_port_list(a.ports);
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    PortSet before = fence.ports();
    fence.set_ports(ports);
    session.record("ports", format_port_list(ports) + " (were " + format_port_list(before) + ")");
    session.commit();
    out << "SMTP ports: " << format_port_list(ports) << " (were " << format_port_list(before) << ")\n";
    return kExitOk;
}

int cmd_list(const Args& a, const CliContext& ctx) {
    std::ostream& out = ctx.out;
    FenceSession session = open_session(ctx);
    session.commit_if_changed();
    auto rules = session.fence().rules();
    if (a.json) {
        print_json(out, rules_json(rules, static_cast<uint64_t>(std::time(nullptr)), ctx.warn_block_age_s));
    } else {
        out << rules_text(rules, static_cast<uint64_t>(std::time(nullptr)), ctx.warn_block_age_s);
    }
    return kExitOk;
}

int cmd_status(const Args& a, const CliContext& ctx) {
    FenceSession session = open_session(ctx);
    session.commit_if_changed();
    Fence& fence = session.fence();
    StatusView st;
    st.version = SMTPFENCE_VERSION;
    st.pin_dir = a.pin_dir;
    st.program_id = fence.program_id();
    st.attachments = fence.attachments();
    st.ports = fence.ports();
    st.rules = fence.rules();
    st.capacity = fence.capacity();
    st.counters = fence.counters();
    st.now_unix = static_cast<uint64_t>(std::time(nullptr));
    st.state = check_state_file(session.state_file(), st.ports, st.rules);
    st.warn_block_age_s = ctx.warn_block_age_s;
    if (std::any_of(st.rules.begin(), st.rules.end(), [](const Rule& r) { return r.limit.message_interval_ns; })) {
        for (const auto& att : st.attachments) {
            if (att.ifindex == 0) continue;
            RootQdisc root = root_qdisc(att.name);
            if (!root.ours()) st.unpaced_interfaces.push_back(att.name + " (root qdisc " + root.kind + " " + root.handle + ")");
        }
    }
    st.warnings = status_warnings(st);
    if (a.json) {
        print_json(ctx.out, status_json(st));
    } else {
        ctx.out << status_text(st);
    }
    return kExitOk;
}

}  // namespace

void add_rule_commands(CLI::App& app, std::vector<Command>& commands) {
    auto a = std::make_shared<Args>();
    // Each handler sees the parsed options and the global pin directory.
    auto bind = [a](auto handler) {
        return [a, handler](const CliContext& ctx) {
            a->pin_dir = ctx.pin_dir;
            return handler(*a, ctx);
        };
    };

    auto* attach_cmd = app.add_subcommand("attach", "attach the fence to interfaces (re-attach upgrades in place)");
    attach_cmd->add_option("IFACE", a->interfaces, "interfaces to guard")->required();
    attach_cmd->add_option("--mode", a->mode, "XDP mode: native where the driver supports it, else generic")
        ->check(CLI::IsMember({"auto", "native", "generic"}))
        ->capture_default_str();
    attach_cmd->add_option("--max-rules", a->max_rules, "rules per address family, fixed when the maps are created")
        ->check(CLI::Range(16u, 1u << 24))
        ->capture_default_str();
    commands.push_back({attach_cmd, bind([](const Args& args, const CliContext& c) {
                            return attach_and_report(c, args.interfaces, parse_xdp_mode(args.mode), args.max_rules);
                        })});

    auto* detach_cmd = app.add_subcommand("detach", "stop filtering on interfaces; rules stay");
    detach_cmd->add_option("IFACE", a->interfaces, "interfaces to release")->required();
    commands.push_back({detach_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_detach(args, c.out, c.err);
                        })});

    auto* block_cmd = app.add_subcommand("block", "drop new SMTP connections from sources");
    auto* allow_cmd = app.add_subcommand("allow", "let sources in, even inside a broader block");
    auto* limit_cmd =
        app.add_subcommand("limit", "slow sources down: new connections at a rate, or a cap on open ones");
    for (auto* cmd : {block_cmd, allow_cmd, limit_cmd}) {
        cmd->add_option("CIDR", a->cidrs, "source address or prefix, IPv4 or IPv6")->required();
    }
    limit_cmd->add_option("--rate", a->limit.rate, "new connections per key: N/s, N/min or N/h");
    limit_cmd->add_option("--burst", a->limit.burst,
                          "connections a key may open at once (default: one second's worth)");
    limit_cmd->add_option("--max-conns", a->limit.max_conns, "open SMTP connections per key");
    limit_cmd->add_option("--messages", a->limit.messages,
                          "messages per key, 6/min to 1000/s: what lets a message start (a new session's SYN-ACK, "
                          "the reply to a body) is held back to this pace, whatever the sender's session reuse or TLS");
    limit_cmd->add_option("--per", a->limit.per, "the key: source (default; /64 for IPv6), rule, or /LEN")
        ->capture_default_str();
    for (auto* cmd : {block_cmd, allow_cmd, limit_cmd}) {
        cmd->add_option("--reason", a->reason, "why, for whoever reads `smtpfence list` next");
        auto* for_opt = cmd->add_option("--for", a->for_text,
                                        "the rule ends by itself after this long: 90m, 2h, 1d12h, 45s");
        cmd->add_option("--until", a->until,
                        "the rule ends by itself at this time: 2026-12-01T08:00 (local), or with Z / +HH:MM")
            ->excludes(for_opt);
    }
    for (auto* cmd : {block_cmd, limit_cmd}) {
        cmd->add_flag("--dry-run", a->dry_run,
                      "count what the rule would drop, drop nothing (`smtpfence enforce CIDR` makes it live)");
        cmd->add_flag("--force", a->force, "allow a prefix shorter than /8 (IPv4) or /32 (IPv6)");
    }
    allow_cmd->add_flag("--dry-run", a->dry_run, "(refused: an allow drops nothing)");
    commands.push_back({block_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_add(args, Action::Block, c);
                        })});
    commands.push_back({allow_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_add(args, Action::Allow, c);
                        })});

    commands.push_back({limit_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_add(args, Action::Limit, c);
                        })});

    auto* enforce_cmd = app.add_subcommand("enforce", "turn dry-run rules live, in place, keeping their counters");
    enforce_cmd->add_option("CIDR", a->cidrs, "prefix of the dry-run rule")->required();
    commands.push_back({enforce_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_enforce(args, c);
                        })});

    auto* remove_cmd = app.add_subcommand("remove", "remove rules by their exact prefix");
    remove_cmd->alias("unblock");
    remove_cmd->add_option("CIDR", a->cidrs, "prefix of the rule to remove")->required();
    commands.push_back({remove_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_remove(args, c);
                        })});

    auto* ports_cmd = app.add_subcommand("ports", "show or set the TCP ports treated as SMTP");
    auto* ports_list = ports_cmd->add_option("LIST", a->ports, "comma-separated ports, e.g. 25,465,587");
    commands.push_back({ports_cmd, bind([ports_list](const Args& args, const CliContext& c) {
                            return cmd_ports(args, ports_list->count() > 0, c);
                        })});

    auto* list_cmd = app.add_subcommand("list", "rules with their counters");
    list_cmd->add_flag("--json", a->json, "machine-readable output");
    commands.push_back({list_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_list(args, c);
                        })});

    auto* status_cmd = app.add_subcommand("status", "everything in force: interfaces, program, ports, rules, state file, warnings");
    status_cmd->add_flag("--json", a->json, "machine-readable output");
    commands.push_back({status_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_status(args, c);
                        })});
}

}  // namespace smtpfence
