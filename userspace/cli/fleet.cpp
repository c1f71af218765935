#include "cli/fleet.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "base/errors.h"
#include "cli/add_rules.h"
#include "etcd/client.h"
#include "fence/provenance.h"
#include "fence/state_file.h"
#include "fleet/hosts.h"
#include "fleet/policy.h"
#include "output/rules.h"
#include "output/table.h"
#include "text/config.h"
#include "text/durations.h"

namespace smtpfence {

namespace {

using Clock = std::chrono::steady_clock;

etcd::Client open_store(const FleetOptions& fleet) {
    auto text = read_file(fleet.config);
    if (!text) {
        throw UsageError("no config file " + fleet.config +
                         ": name one with --config (or SMTPFENCE_CONFIG) holding etcd_endpoints and the etcd_* keys");
    }
    BootConfig cfg = parse_fleet_config(*text, fleet.config);
    if (cfg.fleet.etcd_endpoints.empty()) {
        throw UsageError(fleet.config + ": no etcd_endpoints, e.g. etcd_endpoints = https://203.0.113.101:2379");
    }
    return etcd::Client(store_config(cfg.fleet, fleet.insecure));
}

std::vector<FleetScope> scopes_of(const FleetTargetOptions& target) {
    std::vector<FleetScope> scopes;
    for (const auto& role : target.roles) {
        check_fleet_name("--role", role);
        scopes.push_back({FleetScope::Kind::Role, role});
    }
    for (const auto& host : target.hosts) {
        check_fleet_name("--host", host);
        scopes.push_back({FleetScope::Kind::Host, host});
    }
    if (scopes.empty()) scopes.emplace_back();
    return scopes;
}

void add_target_options(CLI::App* cmd, FleetTargetOptions& target) {
    cmd->add_option("--role", target.roles, "only the hosts of this role (repeatable; neither --role nor --host: all)");
    cmd->add_option("--host", target.hosts, "only this host (repeatable)");
    auto* wait = cmd->add_option("--wait", target.wait, "how long to wait for every targeted live host to apply it")
                     ->capture_default_str();
    cmd->add_flag("--no-wait", target.no_wait, "store the change and return")->excludes(wait);
}

// Waits until every live host the scopes target has applied `revision`;
// prints one line per host. 0 when all did, 1 naming those that did not.
int wait_for_hosts(etcd::Client& store, const std::vector<FleetScope>& scopes, int64_t revision, int64_t start_ms,
                   const FleetTargetOptions& target, const CliContext& ctx) {
    if (target.no_wait) {
        ctx.out << "stored at revision " << revision << "; not waiting for the hosts\n";
        return kExitOk;
    }
    const auto deadline = Clock::now() + std::chrono::seconds(parse_duration(target.wait, "--wait"));
    std::vector<HostReport> hosts;
    auto targeted = [&](const HostReport& h) {
        return std::any_of(scopes.begin(), scopes.end(),
                           [&](const FleetScope& s) { return scope_targets(s, h.host, h.roles); });
    };
    auto pending = [&] {
        return std::count_if(hosts.begin(), hosts.end(), [&](const HostReport& h) {
            return h.alive && targeted(h) && h.applied_revision < revision;
        });
    };
    do {
        hosts = read_host_reports(store);
        if (pending() == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (Clock::now() < deadline);

    std::vector<std::string> missing;
    size_t applied = 0;
    for (const auto& h : hosts) {
        if (!targeted(h)) continue;
        if (!h.alive) {
            ctx.out << "  " << h.host << ": down (no agent alive); it applies the change when it returns\n";
            continue;
        }
        if (h.applied_revision >= revision) {
            ctx.out << "  " << h.host << ": applied in " << std::max<int64_t>(0, h.applied_at_ms - start_ms) << " ms\n";
            applied++;
        } else {
            ctx.out << "  " << h.host << ": NOT applied within " << target.wait << " (at revision "
                    << h.applied_revision << ")\n";
            missing.push_back(h.host);
        }
    }
    if (!missing.empty()) {
        std::string names;
        for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
        ctx.err << "smtpfence: not applied yet on " << names
                << "; the rule is stored and they apply it when they can (`smtpfence fleet status`)\n";
        return kExitRuntime;
    }
    if (applied == 0) ctx.out << "  no live host is targeted: the change is stored for the hosts to come\n";
    return kExitOk;
}

// A write to the store, retried while the store is briefly unavailable (an
// election takes about 2 s after a leader dies) until `budget` has passed.
// Writes here are idempotent: a put whose answer was lost puts the same value
// again, an erase of a key already gone changes nothing.
template <typename Write>
int64_t write_retrying(std::chrono::milliseconds budget, Write write) {
    const auto deadline = Clock::now() + budget;
    for (;;) {
        try {
            return write();
        } catch (const etcd::StoreError& e) {
            const bool transient = e.grpc_code == 0 || e.grpc_code == 14;  // no answer, unavailable
            if (!transient || Clock::now() >= deadline) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }
}

// How long a command keeps retrying its writes: its --wait, at least 2 s.
std::chrono::milliseconds write_budget(const FleetTargetOptions& target) {
    uint64_t wait_s = target.no_wait ? 0 : parse_duration(target.wait, "--wait");
    return std::chrono::seconds(std::max<uint64_t>(wait_s, 2));
}

// The revision of this command's change, as the hosts will report it applied.
int64_t mark_changed(etcd::Client& store, const std::string& by, const std::string& origin,
                     std::chrono::milliseconds budget) {
    const std::string value = nlohmann::ordered_json{{"by", by}, {"origin", origin}, {"at_unix", unix_now()}}.dump();
    return write_retrying(budget, [&] { return store.put(std::string(kFleetChangedKey), value); });
}

}  // namespace

int run_fleet_rules(const FleetOptions& fleet, const FleetRuleOptions& options, Action action, const CliContext& ctx) {
    // "applied in N ms" counts from here: the command's own work included.
    const int64_t start_ms = unix_now_ms();
    const auto budget = write_budget(options.target);
    // Every prefix and option is checked as the local verb checks it, before
    // anything is stored.
    std::vector<RuleSpec> specs = rule_specs_of(options, action, options.terms, ctx.err);
    std::vector<FleetScope> scopes = scopes_of(options.target);
    etcd::Client store = open_store(fleet);
    const std::string by = invoking_user(), origin = invoking_origin();
    const uint64_t now = unix_now();
    int64_t revision = 0;
    for (const auto& scope : scopes) {
        for (const auto& base : specs) {
            FleetRule rule{scope, base, options.force};
            rule.spec.created_by = by;
            rule.spec.origin = origin;
            rule.spec.created_unix = now;
            rule.spec.exact = true;
            revision = write_retrying(
                budget, [&] { return store.put(fleet_rule_key(scope, rule.spec.cidr), fleet_rule_json(rule)); });
            ctx.out << action_name(action) << " " << format_cidr(rule.spec.cidr) << " for " << format_fleet_scope(scope)
                    << ": stored (revision " << revision << ")\n";
        }
    }
    revision = mark_changed(store, by, origin, budget);
    return wait_for_hosts(store, scopes, revision, start_ms, options.target, ctx);
}

int run_fleet_remove(const FleetOptions& fleet, const FleetRemoveOptions& options, const CliContext& ctx) {
    const int64_t start_ms = unix_now_ms();
    const auto budget = write_budget(options.target);
    std::vector<Cidr> cidrs = parse_cidrs(options.cidrs, ctx.err);
    std::vector<FleetScope> scopes = scopes_of(options.target);
    etcd::Client store = open_store(fleet);
    // All or nothing: every key must exist before any is removed.
    for (const auto& scope : scopes) {
        for (const auto& cidr : cidrs) {
            if (store.get(fleet_rule_key(scope, cidr))) continue;
            std::string others;
            for (const auto& kv : store.range_prefix(std::string(kFleetRulesPrefix)).kvs) {
                auto tilde = kv.key.rfind('~');
                if (tilde != std::string::npos && fleet_rule_key({}, cidr).ends_with(kv.key.substr(tilde))) {
                    others += " " + kv.key.substr(kFleetRulesPrefix.size(), tilde - kFleetRulesPrefix.size());
                }
            }
            throw RuntimeError("no fleet rule for " + format_cidr(cidr) + " with scope " + format_fleet_scope(scope) +
                               (others.empty() ? "" : " (it has one for:" + others + "; name it with --role/--host)") +
                               "; nothing was removed (see `smtpfence fleet list`)");
        }
    }
    int64_t revision = 0;
    for (const auto& scope : scopes) {
        for (const auto& cidr : cidrs) {
            revision = write_retrying(budget, [&] { return store.erase(fleet_rule_key(scope, cidr)); });
            ctx.out << "removed " << format_cidr(cidr) << " for " << format_fleet_scope(scope) << " (revision "
                    << revision << ")\n";
        }
    }
    revision = mark_changed(store, invoking_user(), invoking_origin(), budget);
    return wait_for_hosts(store, scopes, revision, start_ms, options.target, ctx);
}

int run_fleet_enforce(const FleetOptions& fleet, const FleetRemoveOptions& options, const CliContext& ctx) {
    std::vector<Cidr> cidrs = parse_cidrs(options.cidrs, ctx.err);
    std::vector<FleetScope> scopes = scopes_of(options.target);
    etcd::Client store = open_store(fleet);
    // Every rule is read and checked before any is changed.
    std::vector<std::pair<etcd::KeyValue, FleetRule>> dry;
    for (const auto& scope : scopes) {
        for (const auto& cidr : cidrs) {
            const std::string key = fleet_rule_key(scope, cidr);
            auto kv = store.get(key);
            if (!kv) {
                throw RuntimeError("no fleet rule for " + format_cidr(cidr) + " with scope " +
                                   format_fleet_scope(scope) + "; nothing was changed (see `smtpfence fleet list`)");
            }
            FleetRule rule = parse_fleet_rule(key, kv->value);
            if (!rule.spec.dry_run) {
                ctx.out << format_cidr(cidr) << " for " << format_fleet_scope(scope) << " is already live\n";
                continue;
            }
            dry.emplace_back(*kv, std::move(rule));
        }
    }
    if (dry.empty()) return kExitOk;
    const int64_t start_ms = unix_now_ms();
    for (auto& [kv, rule] : dry) {
        rule.spec.dry_run = false;
        // Only the rule that was read: a change made meanwhile is not overwritten.
        if (!store.put_if_unchanged(kv.key, fleet_rule_json(rule), kv.mod_revision)) {
            throw RuntimeError(kv.key + " changed while enforcing it; run the command again");
        }
        ctx.out << "enforced " << format_cidr(rule.spec.cidr) << " for " << format_fleet_scope(rule.scope) << '\n';
    }
    int64_t revision = mark_changed(store, invoking_user(), invoking_origin(), write_budget(options.target));
    return wait_for_hosts(store, scopes, revision, start_ms, options.target, ctx);
}

int run_fleet_list(const FleetOptions& fleet, const FleetListOptions& options, const CliContext& ctx) {
    etcd::Client store = open_store(fleet);
    etcd::RangeResult listed = store.range_prefix(std::string(kFleetRulesPrefix));
    const std::vector<HostReport> hosts = read_host_reports(store);
    const uint64_t now = unix_now();
    // Per rule, what each host enforcing it counted: "mx1 7/40" (dropped/attempts).
    std::vector<std::string> per_host_lines;
    nlohmann::ordered_json rules = nlohmann::ordered_json::array();
    std::vector<std::vector<std::string>> rows{
        {"SCOPE", "ACTION", "SOURCE", "TERMS", "EXPIRES", "BY", "FROM", "REASON"}};
    std::vector<std::string> invalid;
    for (const auto& kv : listed.kvs) {
        try {
            FleetRule rule = parse_fleet_rule(kv.key, kv.value);
            const RuleSpec& s = rule.spec;
            std::string terms = s.action == Action::Limit ? describe_limit(s.limit, s.cidr) : "-";
            if (s.dry_run) terms += " (dry run)";
            rows.push_back({format_fleet_scope(rule.scope), action_name(s.action), format_cidr(s.cidr), terms,
                            format_time_left(s.expires_unix, now), s.created_by.empty() ? "-" : s.created_by,
                            s.origin.empty() ? "-" : s.origin, s.reason.empty() ? "-" : s.reason});
            nlohmann::ordered_json j = nlohmann::ordered_json::parse(kv.value);
            j["key"] = kv.key;
            j["mod_revision"] = kv.mod_revision;
            nlohmann::ordered_json on_hosts = nlohmann::ordered_json::object();
            std::string line;
            const std::string id = format_fleet_scope(rule.scope) + "~" + format_cidr(s.cidr);
            for (const auto& h : hosts) {
                auto it = h.rule_counts.find(id);
                if (it == h.rule_counts.end()) continue;
                on_hosts[h.host] = {{"attempts", it->second.attempts},
                                    {"dropped_attempts", it->second.dropped_attempts}};
                line += (line.empty() ? "" : ", ") + h.host + " " + std::to_string(it->second.dropped_attempts) + "/" +
                        std::to_string(it->second.attempts);
            }
            j["hosts"] = on_hosts;
            per_host_lines.push_back(line.empty() ? "in no host's report yet (hosts report every 10 s)"
                                                  : "attempts dropped/made: " + line);
            rules.push_back(j);
        } catch (const UsageError& e) {
            invalid.push_back(e.what());
        }
    }
    if (options.json) {
        ctx.out << nlohmann::ordered_json{{"revision", listed.revision}, {"rules", rules}, {"invalid", invalid}}.dump(2)
                << '\n';
        return kExitOk;
    }
    if (rows.size() == 1) {
        ctx.out << "no fleet rules (revision " << listed.revision << ")\n";
    } else {
        std::istringstream lines(table(rows, {false, false, false, false, false, false, false, false}));
        std::string line;
        std::getline(lines, line);
        ctx.out << line << '\n';
        for (const auto& hosts_line : per_host_lines) {
            std::getline(lines, line);
            ctx.out << line << "\n        ↳ " << hosts_line << '\n';
        }
    }
    for (const auto& i : invalid) ctx.out << "! invalid, skipped by every agent: " << i << '\n';
    return kExitOk;
}

int run_fleet_status(const FleetOptions& fleet, const FleetListOptions& options, const CliContext& ctx) {
    etcd::Client store = open_store(fleet);
    // The fleet's last change: a host that applied it (or later) is in sync.
    const auto changed = store.get(std::string(kFleetChangedKey));
    const int64_t revision = changed ? changed->mod_revision : 0;
    std::vector<HostReport> hosts = read_host_reports(store);
    const uint64_t now = unix_now();
    if (options.json) {
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const auto& h : hosts) {
            list.push_back({{"host", h.host},
                            {"roles", h.roles},
                            {"alive", h.alive},
                            {"reported_unix", h.status_at_unix},
                            {"applied_revision", h.applied_revision},
                            {"in_sync", h.applied_revision >= revision},
                            {"store_connected", h.store_connected},
                            {"last_error", h.last_error},
                            {"fleet_rules", h.fleet_rules},
                            {"local_rules", h.local_rules},
                            {"syn_dropped", h.syn_dropped},
                            {"attempts_dropped", h.attempts_dropped},
                            {"skipped", h.skipped},
                            {"shadowed", h.shadowed},
                            {"failed", h.failed}});
        }
        ctx.out << nlohmann::ordered_json{{"changed_revision", revision}, {"hosts", list}}.dump(2) << '\n';
        return kExitOk;
    }
    if (hosts.empty()) {
        ctx.out << "no host has reported yet: is `smtpfence agent` running?\n";
        return kExitOk;
    }
    std::vector<std::vector<std::string>> rows{{"HOST", "ROLES", "ALIVE", "REPORTED", "APPLIED", "IN-SYNC", "STORE",
                                                "FLEET", "LOCAL", "SYN-DROPPED", "ATTEMPTS-DROPPED"}};
    for (const auto& h : hosts) {
        std::string roles;
        for (const auto& r : h.roles) roles += (roles.empty() ? "" : ",") + r;
        rows.push_back(
            {h.host, roles.empty() ? "-" : roles, h.alive ? "yes" : "NO",
             h.has_status && h.status_at_unix ? format_age(now > h.status_at_unix ? now - h.status_at_unix : 0) + " ago"
                                              : "-",
             std::to_string(h.applied_revision), h.applied_revision >= revision ? "yes" : "NO",
             h.store_connected ? "connected" : "unreachable", std::to_string(h.fleet_rules),
             std::to_string(h.local_rules), std::to_string(h.syn_dropped), std::to_string(h.attempts_dropped)});
    }
    ctx.out << "the fleet's last change: revision " << revision << '\n'
            << table(rows, {false, false, false, false, true, false, false, true, true, true, true});
    for (const auto& h : hosts) {
        for (const auto& s : h.skipped) ctx.out << "! " << h.host << ": skipped a bad rule: " << s << '\n';
        for (const auto& s : h.shadowed) ctx.out << "! " << h.host << ": a local rule holds " << s << '\n';
        for (const auto& s : h.failed) ctx.out << "! " << h.host << ": could not apply " << s << '\n';
    }
    return kExitOk;
}

void register_fleet(CLI::App& app, std::vector<Command>& commands) {
    auto fleet = std::make_shared<FleetOptions>();
    auto* cmd = app.add_subcommand("fleet",
                                   "the rules of every entry point, through etcd: block, allow, limit, "
                                   "enforce, remove, list, status");
    cmd->require_subcommand(1);
    // --config and --insecure may also follow the verb: `fleet block X --config F`.
    cmd->fallthrough();
    cmd->add_option("--config", fleet->config, "the config file with etcd_endpoints and the etcd_* keys")
        ->envname("SMTPFENCE_CONFIG")
        ->capture_default_str();
    cmd->add_flag("--insecure", fleet->insecure, "allow http:// etcd endpoints (no TLS: a test cluster only)");

    for (Action action : {Action::Block, Action::Allow, Action::Limit}) {
        auto options = std::make_shared<FleetRuleOptions>();
        auto* sub = cmd->add_subcommand(action_name(action),
                                        std::string("the local `") + action_name(action) + "`, on every targeted host");
        add_cidr_argument(sub, *options);
        if (action == Action::Limit) {
            LimitTexts& terms = options->terms;
            sub->add_option("--rate", terms.rate, "new connections per key: N/s, N/min or N/h");
            sub->add_option("--burst", terms.burst, "connections a key may open at once");
            sub->add_option("--max-conns", terms.max_conns, "open SMTP connections per key");
            sub->add_option("--messages", terms.messages, "messages per key, 6/min to 1000/s");
            sub->add_option("--per", terms.per, "the key: source (default), rule, or /LEN");
        }
        add_reason_and_expiry_options(sub, *options);
        if (action != Action::Allow) add_drop_options(sub, *options);
        add_target_options(sub, options->target);
        commands.push_back({sub, [fleet, options, action](const CliContext& ctx) {
                                return run_fleet_rules(*fleet, *options, action, ctx);
                            }});
    }
    auto remove = std::make_shared<FleetRemoveOptions>();
    auto* rm = cmd->add_subcommand("remove", "remove fleet rules by their exact prefix and scope");
    rm->add_option("CIDR", remove->cidrs, "prefix of the rule to remove")->required();
    add_target_options(rm, remove->target);
    commands.push_back({rm, [fleet, remove](const CliContext& ctx) { return run_fleet_remove(*fleet, *remove, ctx); }});

    auto enforce = std::make_shared<FleetRemoveOptions>();
    auto* en = cmd->add_subcommand("enforce", "make dry-run fleet rules live");
    en->add_option("CIDR", enforce->cidrs, "prefix of the dry-run rule")->required();
    add_target_options(en, enforce->target);
    commands.push_back(
        {en, [fleet, enforce](const CliContext& ctx) { return run_fleet_enforce(*fleet, *enforce, ctx); }});

    auto list = std::make_shared<FleetListOptions>();
    auto* ls = cmd->add_subcommand("list", "every fleet rule with its scope, provenance and expiry");
    ls->add_flag("--json", list->json, "as JSON");
    commands.push_back({ls, [fleet, list](const CliContext& ctx) { return run_fleet_list(*fleet, *list, ctx); }});

    auto status = std::make_shared<FleetListOptions>();
    auto* st = cmd->add_subcommand("status", "every host: alive, revision applied, store, rules, drops");
    st->add_flag("--json", status->json, "as JSON");
    commands.push_back({st, [fleet, status](const CliContext& ctx) { return run_fleet_status(*fleet, *status, ctx); }});
}

}  // namespace smtpfence
