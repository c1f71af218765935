// Rules and attachments: attach, detach, block, allow, limit, remove, ports,
// list, status.
#include <ctime>
#include <map>
#include <memory>

#include "cli_commands.h"

#include "errors.h"
#include "fence.h"
#include "limit_options.h"
#include "output.h"

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

void check_reason(const std::string& reason) {
    if (reason.size() >= FENCE_REASON_LEN) {
        throw UsageError("--reason is " + std::to_string(reason.size()) + " characters; at most " +
                         std::to_string(FENCE_REASON_LEN - 1) + " fit: say it shorter");
    }
    for (unsigned char c : reason) {
        if (c < 0x20 || c == 0x7f) throw UsageError("--reason must be one line of printable text");
    }
}

// Options of the subcommands, filled by CLI11.
struct Args {
    std::string pin_dir;
    std::vector<std::string> interfaces;
    std::string mode = "auto";
    uint32_t max_rules = FENCE_DEFAULT_MAX_RULES;
    std::vector<std::string> cidrs;
    std::string reason;
    std::string ports;
    bool json = false;
    std::string rate, burst, max_conns, per = "source";
};

int cmd_attach(const Args& a, std::ostream& out, std::ostream& err) {
    static const std::map<std::string, XdpMode> modes{
        {"auto", XdpMode::Auto}, {"native", XdpMode::Native}, {"generic", XdpMode::Generic}};
    std::vector<std::string> notes;
    auto outcomes = attach(a.pin_dir, a.interfaces, modes.at(a.mode), a.max_rules, notes);
    for (const auto& n : notes) err << "note: " << n << '\n';
    Fence fence = Fence::open(a.pin_dir);
    if (fence.capacity() != a.max_rules && a.max_rules != FENCE_DEFAULT_MAX_RULES) {
        err << "note: the maps in " << a.pin_dir << " already exist with room for " << fence.capacity()
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
    out << "guarding SMTP ports " << format_port_list(fence.ports()) << "; " << fence.rules().size()
        << " rules in force\n";
    return kExitOk;
}

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

// The limit of `limit`'s options for one prefix; all of them are checked for
// every prefix before anything changes.
LimitSpec limit_spec(const Args& a, const Cidr& cidr) {
    if (!a.burst.empty() && a.rate.empty()) {
        throw UsageError("--burst goes with --rate (e.g. --rate 5/s --burst 10): it is how many connections the "
                         "rate lets through at once");
    }
    if (a.rate.empty() && a.max_conns.empty()) {
        throw UsageError("limit needs --rate (e.g. --rate 5/s) and/or --max-conns (e.g. --max-conns 3)");
    }
    LimitSpec spec;
    if (!a.rate.empty()) {
        spec.interval_ns = parse_rate(a.rate);
        spec.burst = a.burst.empty() ? default_burst(spec.interval_ns) : parse_count("--burst", a.burst, kMaxBurst);
    }
    if (!a.max_conns.empty()) spec.max_conns = parse_count("--max-conns", a.max_conns, kMaxConns);
    spec.key_prefixlen = key_prefixlen_for(parse_key_scope(a.per), cidr);
    return spec;
}

int cmd_add(const Args& a, Action action, std::ostream& out, std::ostream& err) {
    check_reason(a.reason);
    auto cidrs = parse_cidrs(a.cidrs, err);
    std::vector<LimitSpec> limits;
    for (const auto& cidr : cidrs) limits.push_back(action == Action::Limit ? limit_spec(a, cidr) : LimitSpec{});
    Fence fence = Fence::open(a.pin_dir);
    PinDirLock lock(a.pin_dir);
    std::string by = invoking_user();
    for (size_t i = 0; i < cidrs.size(); ++i) {
        const Cidr& cidr = cidrs[i];
        AddResult r = fence.add_rule(cidr, action, a.reason, by, limits[i]);
        out << action_name(action) << ' ' << format_cidr(cidr);
        if (action == Action::Limit) out << " (" << describe_limit(limits[i], cidr) << ")";
        out << ": ";
        switch (r.change) {
        case RuleChange::Added: out << "added"; break;
        case RuleChange::Updated: out << "updated in place"; break;
        case RuleChange::Replaced: out << "replaced the " << action_name(*r.previous) << " rule"; break;
        }
        out << '\n';
    }
    if (fence.attachments().empty()) {
        err << "warning: no interface is attached in " << a.pin_dir
            << ": rules are stored but not enforced until `smtpfence attach IFACE`\n";
    }
    return kExitOk;
}

int cmd_remove(const Args& a, std::ostream& out, std::ostream& err) {
    auto cidrs = parse_cidrs(a.cidrs, err);
    Fence fence = Fence::open(a.pin_dir);
    PinDirLock lock(a.pin_dir);
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
        fence.remove_rule(cidr);
        out << "removed " << format_cidr(cidr) << '\n';
    }
    return kExitOk;
}

int cmd_ports(const Args& a, bool set, std::ostream& out) {
    if (!set) {
        out << format_port_list(Fence::open(a.pin_dir).ports()) << '\n';
        return kExitOk;
    }
    PortSet ports = parse_port_list(a.ports);
    Fence fence = Fence::open(a.pin_dir);
    PinDirLock lock(a.pin_dir);
    PortSet before = fence.ports();
    fence.set_ports(ports);
    out << "SMTP ports: " << format_port_list(ports) << " (were " << format_port_list(before) << ")\n";
    return kExitOk;
}

int cmd_list(const Args& a, std::ostream& out) {
    auto rules = Fence::open(a.pin_dir).rules();
    if (a.json) {
        print_json(out, rules_json(rules));
    } else {
        out << rules_text(rules, static_cast<uint64_t>(std::time(nullptr)));
    }
    return kExitOk;
}

int cmd_status(const Args& a, std::ostream& out) {
    Fence fence = Fence::open(a.pin_dir);
    StatusView st;
    st.version = SMTPFENCE_VERSION;
    st.pin_dir = a.pin_dir;
    st.program_id = fence.program_id();
    st.attachments = fence.attachments();
    st.ports = fence.ports();
    st.rules = fence.rules();
    st.capacity = fence.capacity();
    st.counters = fence.counters();
    if (a.json) {
        print_json(out, status_json(st));
    } else {
        out << status_text(st);
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
                            return cmd_attach(args, c.out, c.err);
                        })});

    auto* detach_cmd = app.add_subcommand("detach", "stop filtering on interfaces; rules stay");
    detach_cmd->add_option("IFACE", a->interfaces, "interfaces to release")->required();
    commands.push_back({detach_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_detach(args, c.out, c.err);
                        })});

    auto* block_cmd = app.add_subcommand("block", "drop new SMTP connections from sources");
    auto* allow_cmd = app.add_subcommand("allow", "let sources in, even inside a broader block");
    for (auto* cmd : {block_cmd, allow_cmd}) {
        cmd->add_option("CIDR", a->cidrs, "source address or prefix, IPv4 or IPv6")->required();
        cmd->add_option("--reason", a->reason, "why, for whoever reads `smtpfence list` next");
    }
    commands.push_back({block_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_add(args, Action::Block, c.out, c.err);
                        })});
    commands.push_back({allow_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_add(args, Action::Allow, c.out, c.err);
                        })});

    auto* limit_cmd =
        app.add_subcommand("limit", "slow sources down: new connections at a rate, or a cap on open ones");
    limit_cmd->add_option("CIDR", a->cidrs, "source address or prefix, IPv4 or IPv6")->required();
    limit_cmd->add_option("--rate", a->rate, "new connections per key: N/s, N/min or N/h");
    limit_cmd->add_option("--burst", a->burst, "connections a key may open at once (default: one second's worth)");
    limit_cmd->add_option("--max-conns", a->max_conns, "open SMTP connections per key");
    limit_cmd->add_option("--per", a->per, "the key: source (default; /64 for IPv6), rule, or /LEN")
        ->capture_default_str();
    limit_cmd->add_option("--reason", a->reason, "why, for whoever reads `smtpfence list` next");
    commands.push_back({limit_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_add(args, Action::Limit, c.out, c.err);
                        })});

    auto* remove_cmd = app.add_subcommand("remove", "remove rules by their exact prefix");
    remove_cmd->alias("unblock");
    remove_cmd->add_option("CIDR", a->cidrs, "prefix of the rule to remove")->required();
    commands.push_back({remove_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_remove(args, c.out, c.err);
                        })});

    auto* ports_cmd = app.add_subcommand("ports", "show or set the TCP ports treated as SMTP");
    auto* ports_list = ports_cmd->add_option("LIST", a->ports, "comma-separated ports, e.g. 25,465,587");
    commands.push_back({ports_cmd, bind([ports_list](const Args& args, const CliContext& c) {
                            return cmd_ports(args, ports_list->count() > 0, c.out);
                        })});

    auto* list_cmd = app.add_subcommand("list", "rules with their counters");
    list_cmd->add_flag("--json", a->json, "machine-readable output");
    commands.push_back({list_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_list(args, c.out);
                        })});

    auto* status_cmd = app.add_subcommand("status", "interfaces, program, ports, rule counts, packet counters");
    status_cmd->add_flag("--json", a->json, "machine-readable output");
    commands.push_back({status_cmd, bind([](const Args& args, const CliContext& c) {
                            return cmd_status(args, c.out);
                        })});
}

}  // namespace smtpfence
