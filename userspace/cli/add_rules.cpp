#include "cli/add_rules.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <optional>

#include "fence/provenance.h"
#include "fence/rule_store.h"
#include "fence/session.h"
#include "output/rules.h"
#include "text/durations.h"
#include "text/rerun.h"

namespace smtpfence {

namespace {

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

// A rule's aspects an admin checks when re-running its command: what it is,
// whether it drops, when it ends, why.
std::vector<std::string> aspects(const RuleSpec& spec, uint64_t now) {
    std::string kind = action_name(spec.action);
    if (spec.action == Action::Limit) kind += " " + describe_limit(spec.limit, spec.cidr);
    std::string mode;  // an allow drops nothing, live or not
    if (spec.action != Action::Allow) mode = spec.dry_run ? "dry run" : "live";
    return {kind, mode, spec.expires_unix ? "expires " + format_time_left(spec.expires_unix, now) : "permanent",
            spec.reason.empty() ? "no reason" : "reason \"" + spec.reason + "\""};
}

// What re-running changes in `existing`: "was: live, expires in 1h20m; now:
// dry run, permanent" (only what changes), or "unchanged"; and that a
// deadline was kept by omission.
std::string describe_rerun(const Rule& existing, const RuleSpec& spec, const RerunSaid& said, uint64_t now) {
    const std::vector<std::string> was = aspects(spec_of(existing), now), is = aspects(spec, now);
    std::string before, after;
    for (size_t i = 0; i < was.size(); ++i) {
        if (was[i] == is[i]) continue;
        before += (before.empty() ? "" : ", ") + (was[i].empty() ? std::string("-") : was[i]);
        after += (after.empty() ? "" : ", ") + (is[i].empty() ? std::string("-") : is[i]);
    }
    std::string text = before.empty() ? "unchanged" : "was: " + before + "; now: " + after;
    if (!said.expiry && spec.expires_unix && spec.expires_unix == existing.expires_unix) {
        text += "; keeps its deadline (" + format_time_left(spec.expires_unix, now) + "; --permanent drops it)";
    }
    return text;
}

}  // namespace

void add_cidr_argument(CLI::App* cmd, RuleOptions& options) {
    cmd->add_option("CIDR", options.cidrs, "source address or prefix, IPv4 or IPv6")->required();
}

void add_reason_and_expiry_options(CLI::App* cmd, RuleOptions& options) {
    cmd->add_option("--reason", options.reason, "why, for whoever reads `smtpfence list` next");
    auto* for_opt = cmd->add_option("--for", options.for_text,
                                    "the rule ends by itself after this long: 90m, 2h, 1d12h, 45s");
    auto* until_opt = cmd->add_option("--until", options.until,
                                      "the rule ends by itself at this time: 2026-12-01T08:00 (local), or with Z / "
                                      "+HH:MM");
    until_opt->excludes(for_opt);
    cmd->add_flag("--permanent", options.permanent,
                  "no deadline (re-run on a rule in force without --for, --until or --permanent, the local "
                  "commands keep its deadline)")
        ->excludes(for_opt)
        ->excludes(until_opt);
}

void add_drop_options(CLI::App* cmd, RuleOptions& options) {
    cmd->add_flag("--dry-run", options.dry_run,
                  "count what the rule would drop, drop nothing (`smtpfence enforce CIDR` makes it live)");
    cmd->add_flag("--force", options.force,
                  "allow a prefix shorter than /8 (IPv4) or /32 (IPv6), or turning a live rule into a dry run");
}

std::vector<RuleSpec> rule_specs_of(const RuleOptions& options, Action action, const LimitTexts& limit,
                                    std::ostream& err) {
    check_reason(options.reason);
    uint64_t deadline = rule_deadline(options.for_text, options.until, unix_now());
    std::vector<RuleSpec> specs;
    for (const auto& cidr : parse_cidrs(options.cidrs, err)) {
        RuleSpec spec;
        spec.cidr = cidr;
        spec.action = action;
        if (action == Action::Limit) spec.limit = limit_spec_of(limit, cidr);
        spec.dry_run = options.dry_run;
        spec.expires_unix = deadline;
        spec.reason = options.reason;
        check_dry_run(spec);
        check_breadth(cidr, action, options.force);
        specs.push_back(std::move(spec));
    }
    return specs;
}

int add_rules(const RuleOptions& options, Action action, const LimitTexts& limit, const CliContext& ctx) {
    std::ostream& out = ctx.out;
    std::ostream& err = ctx.err;
    auto now = static_cast<uint64_t>(std::time(nullptr));
    // Every prefix is checked before anything changes.
    std::vector<RuleSpec> specs = rule_specs_of(options, action, limit, err);
    FenceSession session = open_session(ctx);
    Fence& fence = session.fence();
    if (std::any_of(specs.begin(), specs.end(), [](const RuleSpec& s) { return s.limit.message_interval_ns != 0; })) {
        fence.check_pacing_possible();
    }
    // A prefix that has a rule keeps what the command does not say; every
    // such change is checked before anything changes.
    const RerunSaid said{!options.for_text.empty() || !options.until.empty() || options.permanent, limit};
    std::vector<std::optional<Rule>> before;
    for (auto& spec : specs) {
        before.push_back(fence.find_rule(spec.cidr));
        if (!before.back()) continue;
        spec = rerun_spec(spec, *before.back(), said);
        check_dry_run(spec);
        check_weakening(*before.back(), spec, options.force);
    }
    std::vector<Rule> existing = fence.rules();
    std::vector<HostAddress> host = host_addresses();
    for (const auto& spec : specs) {
        for (const auto& w : coverage_warnings(spec.cidr, action, existing, host)) err << "warning: " << w << '\n';
    }
    std::string by = invoking_user(), origin = invoking_origin();
    for (size_t i = 0; i < specs.size(); ++i) {
        RuleSpec& spec = specs[i];
        spec.created_by = by;
        spec.origin = origin;
        AddResult r = fence.add_rule(spec);
        out << describe_spec(spec, now) << ": ";
        switch (r.change) {
        case RuleChange::Added: out << "added"; break;
        case RuleChange::Updated: out << "updated in place"; break;
        case RuleChange::Replaced: out << "replaced the " << action_name(*r.previous) << " rule"; break;
        }
        if (before[i]) out << "; " << describe_rerun(*before[i], spec, said, now);
        out << '\n';
        static const std::map<RuleChange, std::string> events{
            {RuleChange::Added, "add"}, {RuleChange::Updated, "update"}, {RuleChange::Replaced, "replace"}};
        if (auto rule = fence.find_rule(spec.cidr)) session.record(events.at(r.change), *rule);
    }
    session.commit();
    if (fence.attachments().empty()) {
        err << "warning: no interface is attached in " << ctx.pin_dir
            << ": rules are stored but not enforced until `smtpfence attach IFACE`\n";
    }
    return kExitOk;
}

}  // namespace smtpfence
