#include "output/rules.h"

#include <sstream>

#include "fence/counters.h"
#include "output/table.h"
#include "text/durations.h"
#include "text/limit_options.h"

namespace smtpfence {

namespace {

const char* family_name(Family family) {
    return family == Family::V4 ? "ipv4" : "ipv6";
}

}  // namespace

std::string describe_limit(const LimitSpec& limit, const Cidr& cidr) {
    std::string text;
    if (limit.interval_ns) text = format_rate(limit.interval_ns) + " burst " + std::to_string(limit.burst);
    if (limit.max_conns) {
        text += (text.empty() ? "" : ", ") + std::string("at most ") + std::to_string(limit.max_conns) + " open";
    }
    if (limit.message_interval_ns) {
        text += (text.empty() ? "" : ", ") + std::string("messages ") + format_rate(limit.message_interval_ns);
    }
    return text + " per " + describe_key(limit.key_prefixlen, cidr);
}

namespace {

// The second line of a limit rule in `list`: its terms and what it did.
std::string limit_line(const Rule& r) {
    const rule_counters& c = r.counters;
    std::string paced;
    if (r.limit.message_interval_ns) {
        paced = "; messages paced " + std::to_string(r.pace.messages) + " (" + std::to_string(r.pace.packets) +
                " packets held back), let through unpaced " + std::to_string(r.pace.overflow) +
                ", connections refused while behind " + std::to_string(r.pace.refused);
    }
    return describe_limit(r.limit, r.cidr) + paced + "; " + std::to_string(r.tracked_keys) +
           (r.tracked_keys == 1 ? " key" : " keys") + " tracked; SYN packets allowed " +
           std::to_string(c.matched - c.dropped) + ", dropped by rate " + std::to_string(c.rate_dropped) +
           ", by max-conns " + std::to_string(c.conns_dropped) + "; attempts " + std::to_string(c.attempts) +
           ", dropped " + std::to_string(c.dropped_attempts);
}

}  // namespace

namespace {

std::string action_label(const Rule& r) {
    return std::string(action_name(r.action)) + (r.dry_run ? " (dry run)" : "");
}

// The line under a dry-run rule: what it would have done.
std::string dry_run_line(const Rule& r) {
    return "dry run: would have dropped " + std::to_string(r.counters.would_drop) + " SYN packets (" +
           std::to_string(r.counters.would_drop_attempts) +
           (r.counters.would_drop_attempts == 1 ? " attempt)" : " attempts)") + "; drops nothing (`smtpfence enforce " +
           format_cidr(r.cidr) + "` makes it live)";
}

// The line under a block older than the warning threshold.
std::string old_block_line(const Rule& r, uint64_t now_unix, uint64_t warn_block_age_s) {
    return "! blocked for " + format_age(rule_age(r, now_unix)) + ", longer than " + format_age(warn_block_age_s) +
           ": senders bounce deferred mail when their queue lifetime ends (Postfix 5d, Exim about 4d)";
}

}  // namespace

uint64_t rule_age(const Rule& r, uint64_t now_unix) {
    return now_unix > r.created_unix ? now_unix - r.created_unix : 0;
}

bool block_too_old(const Rule& r, uint64_t now_unix, uint64_t warn_block_age_s) {
    return warn_block_age_s && r.action == Action::Block && !r.dry_run && r.created_unix &&
           rule_age(r, now_unix) > warn_block_age_s;
}

std::string rules_text(const std::vector<Rule>& rules, uint64_t now_unix, uint64_t warn_block_age_s) {
    if (rules.empty()) return "no rules: every source may connect\n";
    // MATCHED and DROPPED count SYN packets (a sender retransmits a dropped
    // SYN several times); ATTEMPTS and DROPPED-ATTEMPTS count each once.
    std::vector<std::vector<std::string>> rows{{"ACTION", "SOURCE", "MATCHED", "DROPPED", "ATTEMPTS",
                                                "DROPPED-ATTEMPTS", "AGE", "EXPIRES", "SET", "BY", "FROM", "REASON"}};
    for (const auto& r : rules) {
        std::string age = r.created_unix ? format_age(rule_age(r, now_unix)) : "-";
        if (block_too_old(r, now_unix, warn_block_age_s)) age += " !";
        rows.push_back({action_label(r), format_cidr(r.cidr), std::to_string(r.counters.matched),
                        std::to_string(r.counters.dropped), std::to_string(r.counters.attempts),
                        std::to_string(r.counters.dropped_attempts), age, format_time_left(r.expires_unix, now_unix),
                        rule_set_name(r.origin), r.created_by.empty() ? "-" : r.created_by,
                        r.origin.empty() ? "-" : r.origin, r.reason.empty() ? "-" : r.reason});
    }
    std::istringstream lines(
        table(rows, {false, false, true, true, true, true, false, false, false, false, false, false}));
    std::ostringstream out;
    std::string line;
    std::getline(lines, line);
    out << line << '\n';
    for (const auto& r : rules) {
        std::getline(lines, line);
        out << line << '\n';
        if (r.action == Action::Limit) out << "        ↳ " << limit_line(r) << '\n';
        if (r.dry_run) out << "        ↳ " << dry_run_line(r) << '\n';
        if (block_too_old(r, now_unix, warn_block_age_s)) {
            out << "        ↳ " << old_block_line(r, now_unix, warn_block_age_s) << '\n';
        }
    }
    return out.str();
}

nlohmann::ordered_json rule_json(const Rule& rule, uint64_t now_unix, uint64_t warn_block_age_s) {
    nlohmann::ordered_json limit = nullptr;
    if (rule.action == Action::Limit) {
        const LimitSpec& l = rule.limit;
        limit = {
            {"rate", l.interval_ns ? nlohmann::ordered_json(format_rate(l.interval_ns)) : nullptr},
            {"interval_ns", l.interval_ns},
            {"burst", l.burst},
            {"max_conns", l.max_conns},
            {"per", describe_key(l.key_prefixlen, rule.cidr)},
            {"key_prefixlen", l.key_prefixlen},
            {"tracked_keys", rule.tracked_keys},
            {"allowed", rule.counters.matched - rule.counters.dropped},
            {"rate_dropped", rule.counters.rate_dropped},
            {"conns_dropped", rule.counters.conns_dropped},
            {"messages", l.message_interval_ns ? nlohmann::ordered_json(format_rate(l.message_interval_ns)) : nullptr},
            {"message_interval_ns", l.message_interval_ns},
            {"messages_paced", rule.pace.messages},
            {"pace_packets", rule.pace.packets},
            {"pace_overflow", rule.pace.overflow},
            {"pace_refused", rule.pace.refused},
        };
    }
    nlohmann::ordered_json expires_in = nullptr;
    if (rule.expires_unix) expires_in = rule.expires_unix > now_unix ? rule.expires_unix - now_unix : 0;
    nlohmann::ordered_json j = {
        {"cidr", format_cidr(rule.cidr)},
        {"family", family_name(rule.cidr.family)},
        {"action", action_name(rule.action)},
        {"dry_run", rule.dry_run},
    };
    for (const auto& counter : kRuleCounters) j[counter.name] = rule.counters.*counter.member;
    j.update(nlohmann::ordered_json{
        {"limit", limit},
        {"created_unix", rule.created_unix},
        {"created", rule.created_unix ? format_utc(rule.created_unix) : ""},
        {"created_by", rule.created_by},
        {"origin", rule.origin},
        {"set", rule_set_name(rule.origin)},
        {"reason", rule.reason},
        {"expires_unix", rule.expires_unix},
        {"expires",
         rule.expires_unix ? nlohmann::ordered_json(format_utc(rule.expires_unix)) : nlohmann::ordered_json(nullptr)},
        {"expires_in_s", expires_in},
        {"rule_id", rule.rule_id},
        {"age_warning", block_too_old(rule, now_unix, warn_block_age_s)},
    });
    return j;
}

nlohmann::ordered_json rules_json(const std::vector<Rule>& rules, uint64_t now_unix, uint64_t warn_block_age_s) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& r : rules) list.push_back(rule_json(r, now_unix, warn_block_age_s));
    return {{"rules", list}};
}

}  // namespace smtpfence
