#include "output/observe_output.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "output/rules.h"
#include "output/table.h"
#include "text/durations.h"

namespace smtpfence {

namespace {

using nlohmann::ordered_json;

uint64_t to_unix_ns(uint64_t monotonic_ns, int64_t unix_offset_ns) {
    int64_t unix_ns = static_cast<int64_t>(monotonic_ns) + unix_offset_ns;
    return unix_ns > 0 ? static_cast<uint64_t>(unix_ns) : 0;
}

std::string upper_dashed(const char* name) {
    std::string s = name;
    for (char& c : s) c = c == '_' ? '-' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string rule_action_text(const Rule& r) {
    return std::string(action_name(r.action)) + (r.dry_run ? " (dry run)" : "");
}

std::string source_text(Family family, const uint8_t* addr) {
    std::array<uint8_t, 16> a;
    std::memcpy(a.data(), addr, a.size());
    return format_address(family, a);
}

std::string ports_text(const std::vector<uint16_t>& ports) {
    std::string s;
    for (uint16_t p : ports) s += (s.empty() ? "" : ",") + std::to_string(p);
    return s;
}

// "5s" since `then`, both CLOCK_MONOTONIC.
std::string age_text(uint64_t then_ns, uint64_t now_ns) {
    return format_age(now_ns > then_ns ? (now_ns - then_ns) / 1000000000ull : 0);
}

ordered_json rule_ref_json(const std::optional<RuleRef>& rule) {
    if (!rule) return nullptr;
    return {{"id", rule->rule_id},
            {"cidr", format_cidr(rule->cidr)},
            {"action", action_name(rule->action)},
            {"list", rule->list.empty() ? ordered_json(nullptr) : ordered_json(rule->list)},
            {"dry_run", rule->dry_run},
            {"removed", rule->removed}};
}

}  // namespace

const char* verdict_name(uint8_t verdict) {
    switch (verdict) {
    case FENCE_VERDICT_PASSED: return "passed";
    case FENCE_VERDICT_BLOCKED: return "blocked";
    case FENCE_VERDICT_RATE: return "rate_dropped";
    case FENCE_VERDICT_CONNS: return "conns_dropped";
    case FENCE_VERDICT_WOULD_DROP: return "would_drop";
    }
    return "unknown";
}

std::string format_monotonic(uint64_t monotonic_ns, int64_t unix_offset_ns) {
    return format_utc(to_unix_ns(monotonic_ns, unix_offset_ns) / 1000000000ull);
}

std::string format_per_second(double rate) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", rate);
    return buf;
}

// ------------------------------------------------------------------ stats

std::string stats_text(const StatsSnapshot& snap, const StatsRates* rates, int64_t unix_offset_ns) {
    std::ostringstream out;
    out << "smtpfence stats  " << format_monotonic(snap.taken_ns, unix_offset_ns);
    if (rates) out << "  rates over " << format_per_second(rates->interval_s) << " s";
    out << '\n';

    std::vector<std::vector<std::string>> global{{"COUNTER", "TOTAL"}};
    if (rates) global.front().push_back("/S");
    for (size_t i = 0; i < std::size(kGlobalCounters); ++i) {
        global.push_back({kGlobalCounters[i].name, std::to_string(snap.global.*kGlobalCounters[i].member)});
        if (rates) global.back().push_back(format_per_second(rates->global[i]));
    }
    out << table(global, {false, true, true}) << '\n';

    if (snap.rules.empty()) {
        out << "no rules\n";
        return out.str();
    }
    std::vector<std::vector<std::string>> rows{{"RULE", "ACTION"}};
    for (const auto& field : kRuleCounters) rows.front().push_back(upper_dashed(field.name));
    for (size_t r = 0; r < snap.rules.size(); ++r) {
        const Rule& rule = snap.rules[r];
        rows.push_back({format_cidr(rule.cidr), rule_action_text(rule)});
        for (const auto& field : kRuleCounters) rows.back().push_back(std::to_string(rule.counters.*field.member));
        if (!rates) continue;
        // A second line with the rule's rates ("-" for a rule that is new since the last draw).
        rows.push_back({"", "/s"});
        for (size_t i = 0; i < std::size(kRuleCounters); ++i) {
            const auto& rr = rates->rules[r];
            rows.back().push_back(rr ? format_per_second(rr->per_second[i]) : "-");
        }
    }
    std::vector<bool> numeric(rows.front().size(), true);
    numeric[0] = numeric[1] = false;
    out << table(rows, numeric);
    return out.str();
}

std::string stats_line(const StatsSnapshot& snap, const StatsRates& rates, int64_t unix_offset_ns) {
    std::ostringstream out;
    out << format_monotonic(snap.taken_ns, unix_offset_ns);
    for (size_t i = 0; i < std::size(kGlobalCounters); ++i) {
        out << ' ' << kGlobalCounters[i].name << '=' << snap.global.*kGlobalCounters[i].member << " ("
            << format_per_second(rates.global[i]) << "/s)";
    }
    for (size_t r = 0; r < snap.rules.size(); ++r) {
        const Rule& rule = snap.rules[r];
        out << "; " << action_name(rule.action) << (rule.dry_run ? "(dry-run)" : "") << ' ' << format_cidr(rule.cidr);
        for (size_t i = 0; i < std::size(kRuleCounters); ++i) {
            out << ' ' << kRuleCounters[i].name << '=' << rule.counters.*kRuleCounters[i].member;
            if (rates.rules[r]) out << " (" << format_per_second(rates.rules[r]->per_second[i]) << "/s)";
        }
    }
    out << '\n';
    return out.str();
}

ordered_json stats_json(const StatsSnapshot& snap, const StatsRates* rates, int64_t unix_offset_ns) {
    ordered_json counters = ordered_json::object(), global_rates = nullptr;
    for (const auto& field : kGlobalCounters) counters[field.name] = snap.global.*field.member;
    if (rates) {
        global_rates = ordered_json::object();
        for (size_t i = 0; i < std::size(kGlobalCounters); ++i)
            global_rates[kGlobalCounters[i].name] = rates->global[i];
    }
    ordered_json rules = ordered_json::array();
    for (size_t r = 0; r < snap.rules.size(); ++r) {
        const Rule& rule = snap.rules[r];
        ordered_json rule_counters = ordered_json::object(), rule_rates = nullptr;
        for (const auto& field : kRuleCounters) rule_counters[field.name] = rule.counters.*field.member;
        if (rates && rates->rules[r]) {
            rule_rates = ordered_json::object();
            for (size_t i = 0; i < std::size(kRuleCounters); ++i) {
                rule_rates[kRuleCounters[i].name] = rates->rules[r]->per_second[i];
            }
        }
        rules.push_back({{"cidr", format_cidr(rule.cidr)},
                         {"action", action_name(rule.action)},
                         {"dry_run", rule.dry_run},
                         {"rule_id", rule.rule_id},
                         {"counters", rule_counters},
                         {"rates", rule_rates}});
    }
    return {{"time", format_monotonic(snap.taken_ns, unix_offset_ns)},
            {"interval_s", rates ? ordered_json(rates->interval_s) : ordered_json(nullptr)},
            {"counters", counters},
            {"rates", global_rates},
            {"rules", rules}};
}

// ------------------------------------------------------------------ top

std::string describe_rule_ref(const RuleRef& rule) {
    std::string s = std::string(action_name(rule.action)) + " " + format_cidr(rule.cidr);
    if (!rule.list.empty()) return s + " (list " + rule.list + ")";
    if (rule.removed) return s + " (removed)";
    if (rule.dry_run) return s + " (dry run)";
    return s;
}

std::string top_text(const TopView& view, int64_t unix_offset_ns) {
    std::ostringstream out;
    out << "smtpfence top  " << format_monotonic(view.taken_ns, unix_offset_ns) << "  rates over "
        << format_per_second(view.interval_s) << " s  " << view.sources_tracked << " of " << view.sources_capacity
        << " source entries tracked";
    if (view.port) out << "  port " << *view.port;
    out << '\n';
    if (view.rows.empty()) {
        out << "no SMTP connection attempts seen\n";
        return out.str();
    }
    // Connection attempts first (a retransmitted SYN counts once), then SYN
    // packets; the verdict columns count SYN packets.
    std::vector<std::vector<std::string>> rows{{"SOURCE", "PORTS", "ATTEMPTS/S", "ATTEMPTS", "DROPPED-ATTEMPTS",
                                                "SYN-PACKETS/S", "SYN-PACKETS", "PASSED", "BLOCKED", "LIMITED",
                                                "WOULD-DROP", "FIRST-SEEN", "LAST-SEEN", "LAST", "RULE"}};
    for (const auto& r : view.rows) {
        rows.push_back({format_address(r.family, r.addr), ports_text(r.ports), format_per_second(r.attempts_per_s),
                        std::to_string(r.attempts), std::to_string(r.dropped_attempts),
                        format_per_second(r.syn_packets_per_s), std::to_string(r.syn_packets), std::to_string(r.passed),
                        std::to_string(r.blocked), std::to_string(r.limited), std::to_string(r.would_drop),
                        age_text(r.first_seen_ns, view.taken_ns) + " ago",
                        age_text(r.last_seen_ns, view.taken_ns) + " ago", verdict_name(r.last_verdict),
                        r.last_rule ? describe_rule_ref(*r.last_rule) : "-"});
    }
    out << table(rows, {false, false, true, true, true, true, true, true, true, true, true, true, true, false, false});
    return out.str();
}

std::string top_line(const TopView& view, int64_t unix_offset_ns) {
    std::ostringstream out;
    out << format_monotonic(view.taken_ns, unix_offset_ns) << ' ' << view.sources_tracked << '/' << view.sources_capacity
        << " tracked";
    for (size_t i = 0; i < view.rows.size(); ++i) {
        const TopRow& r = view.rows[i];
        out << (i == 0 ? ": " : "; ") << format_address(r.family, r.addr) << " ports=" << ports_text(r.ports) << ' '
            << format_per_second(r.attempts_per_s) << "/s attempts=" << r.attempts
            << " dropped_attempts=" << r.dropped_attempts << " syn_packets=" << r.syn_packets << " ("
            << format_per_second(r.syn_packets_per_s) << "/s) passed=" << r.passed << " blocked=" << r.blocked
            << " limited=" << r.limited << " would_drop=" << r.would_drop << " last=" << verdict_name(r.last_verdict);
        if (r.last_rule) {
            out << " rule=" << action_name(r.last_rule->action) << ':' << format_cidr(r.last_rule->cidr)
                << (r.last_rule->removed   ? "(removed)"
                    : r.last_rule->dry_run ? "(dry-run)"
                                           : "");
        }
    }
    out << '\n';
    return out.str();
}

ordered_json top_json(const TopView& view, int64_t unix_offset_ns) {
    ordered_json sources = ordered_json::array();
    for (const auto& r : view.rows) {
        sources.push_back({{"source", format_address(r.family, r.addr)},
                           {"family", r.family == Family::V4 ? "ipv4" : "ipv6"},
                           {"ports", r.ports},
                           {"attempts_per_s", r.attempts_per_s},
                           {"attempts", r.attempts},
                           {"dropped_attempts", r.dropped_attempts},
                           {"syn_packets_per_s", r.syn_packets_per_s},
                           {"syn_packets", r.syn_packets},
                           {"passed", r.passed},
                           {"blocked", r.blocked},
                           {"limited", r.limited},
                           {"would_drop", r.would_drop},
                           {"first_seen", format_monotonic(r.first_seen_ns, unix_offset_ns)},
                           {"last_seen", format_monotonic(r.last_seen_ns, unix_offset_ns)},
                           {"last_verdict", verdict_name(r.last_verdict)},
                           {"rule", rule_ref_json(r.last_rule)}});
    }
    return {{"time", format_monotonic(view.taken_ns, unix_offset_ns)},
            {"interval_s", view.interval_s},
            {"port", view.port ? ordered_json(*view.port) : ordered_json(nullptr)},
            {"sources_tracked", view.sources_tracked},
            {"sources_capacity", view.sources_capacity},
            {"sources", sources}};
}

// ------------------------------------------------------------------ events

namespace {

Cidr event_rule_cidr(const fence_event& e) {
    return masked_cidr(static_cast<Family>(e.family), e.addr, e.prefixlen);
}

const char* event_headline(uint8_t verdict) {
    switch (verdict) {
    case FENCE_VERDICT_RATE: return "first drop (rate)";
    case FENCE_VERDICT_CONNS: return "first drop (max-conns)";
    case FENCE_VERDICT_WOULD_DROP: return "would drop (dry run)";
    default: return "first drop";
    }
}

}  // namespace

std::string event_text(const fence_event& e, int64_t unix_offset_ns, std::string_view list) {
    std::ostringstream out;
    out << format_monotonic(e.time_ns, unix_offset_ns) << ' ' << event_headline(e.verdict) << ": "
        << source_text(static_cast<Family>(e.family), e.addr) << " -> port " << e.port << " by "
        << action_name(static_cast<Action>(e.action)) << ' ' << format_cidr(event_rule_cidr(e));
    if (list.empty()) {
        out << " (rule " << e.rule_id << ")\n";
    } else {
        out << " (list " << list << ")\n";
    }
    return out.str();
}

ordered_json event_json(const fence_event& e, int64_t unix_offset_ns, std::string_view list) {
    return {{"type", "drop"},
            {"time", format_monotonic(e.time_ns, unix_offset_ns)},
            {"time_unix_ns", to_unix_ns(e.time_ns, unix_offset_ns)},
            {"source", source_text(static_cast<Family>(e.family), e.addr)},
            {"family", e.family == 4 ? "ipv4" : "ipv6"},
            {"port", e.port},
            {"verdict", verdict_name(e.verdict)},
            {"rule_id", e.rule_id},
            {"rule", format_cidr(event_rule_cidr(e))},
            {"list", list.empty() ? ordered_json(nullptr) : ordered_json(list)},
            {"action", action_name(static_cast<Action>(e.action))}};
}

std::string suppressed_text(uint64_t count, uint64_t total, uint64_t now_unix_ns) {
    return format_utc(now_unix_ns / 1000000000ull) + " " + std::to_string(count) + (count == 1 ? " event" : " events") +
           " held back by the kernel (stream rate limit or full ring buffer; " + std::to_string(total) +
           " since the maps were created)\n";
}

ordered_json suppressed_json(uint64_t count, uint64_t total, uint64_t now_unix_ns) {
    return {{"type", "suppressed"},
            {"time", format_utc(now_unix_ns / 1000000000ull)},
            {"time_unix_ns", now_unix_ns},
            {"count", count},
            {"total", total}};
}

}  // namespace smtpfence
