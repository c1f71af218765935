#include "output.h"

#include "limit_options.h"

#include <algorithm>
#include <ctime>
#include <sstream>

namespace smtpfence {

std::string format_age(uint64_t seconds) {
    constexpr uint64_t kMinute = 60, kHour = 60 * kMinute, kDay = 24 * kHour;
    auto two = [](uint64_t big, const char* big_unit, uint64_t small, const char* small_unit) {
        std::string s = std::to_string(big) + big_unit;
        if (small) s += std::to_string(small) + small_unit;
        return s;
    };
    if (seconds < kMinute) return std::to_string(seconds) + "s";
    if (seconds < kHour) return std::to_string(seconds / kMinute) + "m";
    if (seconds < kDay) return two(seconds / kHour, "h", seconds % kHour / kMinute, "m");
    return two(seconds / kDay, "d", seconds % kDay / kHour, "h");
}

std::string format_utc(uint64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {

// Left-aligned columns, the last one unpadded; numbers right-aligned.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& numeric) {
    std::vector<size_t> width(rows.front().size(), 0);
    for (const auto& row : rows) {
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    std::ostringstream out;
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            bool last = i + 1 == row.size();
            std::string pad(width[i] - row[i].size(), ' ');
            line += numeric[i] ? pad + row[i] : (last ? row[i] : row[i] + pad);
            if (!last) line += "  ";
        }
        line.erase(line.find_last_not_of(' ') + 1);
        out << line << '\n';
    }
    return out.str();
}

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
    return text + " per " + describe_key(limit.key_prefixlen, cidr);
}

namespace {

// The second line of a limit rule in `list`: its terms and what it did.
std::string limit_line(const Rule& r) {
    const rule_counters& c = r.counters;
    return describe_limit(r.limit, r.cidr) + "; " + std::to_string(r.tracked_keys) +
           (r.tracked_keys == 1 ? " key" : " keys") + " tracked; allowed " +
           std::to_string(c.matched - c.dropped) + ", dropped by rate " + std::to_string(c.rate_dropped) +
           ", by max-conns " + std::to_string(c.conns_dropped);
}

}  // namespace

std::string rules_text(const std::vector<Rule>& rules, uint64_t now_unix) {
    if (rules.empty()) return "no rules: every source may connect\n";
    std::vector<std::vector<std::string>> rows{{"ACTION", "SOURCE", "MATCHED", "DROPPED", "AGE", "BY", "REASON"}};
    for (const auto& r : rules) {
        std::string age = r.created_unix ? format_age(now_unix > r.created_unix ? now_unix - r.created_unix : 0) : "-";
        rows.push_back({action_name(r.action), format_cidr(r.cidr), std::to_string(r.counters.matched),
                        std::to_string(r.counters.dropped), age, r.created_by.empty() ? "-" : r.created_by,
                        r.reason.empty() ? "-" : r.reason});
    }
    std::istringstream lines(table(rows, {false, false, true, true, false, false, false}));
    std::ostringstream out;
    std::string line;
    std::getline(lines, line);
    out << line << '\n';
    for (const auto& r : rules) {
        std::getline(lines, line);
        out << line << '\n';
        if (r.action == Action::Limit) out << "        ↳ " << limit_line(r) << '\n';
    }
    return out.str();
}

nlohmann::ordered_json rule_json(const Rule& rule) {
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
        };
    }
    return {
        {"cidr", format_cidr(rule.cidr)},
        {"family", family_name(rule.cidr.family)},
        {"action", action_name(rule.action)},
        {"matched", rule.counters.matched},
        {"dropped", rule.counters.dropped},
        {"limit", limit},
        {"created_unix", rule.created_unix},
        {"created", rule.created_unix ? format_utc(rule.created_unix) : ""},
        {"created_by", rule.created_by},
        {"reason", rule.reason},
    };
}

nlohmann::ordered_json rules_json(const std::vector<Rule>& rules) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& r : rules) list.push_back(rule_json(r));
    return {{"rules", list}};
}

namespace {

struct RuleCounts {
    size_t block = 0, allow = 0, limit = 0;
};

RuleCounts count_rules(const std::vector<Rule>& rules, Family family) {
    RuleCounts c;
    for (const auto& r : rules) {
        if (r.cidr.family != family) continue;
        switch (r.action) {
        case Action::Block: c.block++; break;
        case Action::Allow: c.allow++; break;
        case Action::Limit: c.limit++; break;
        }
    }
    return c;
}

nlohmann::ordered_json counters_json(const fence_stats& s) {
    return {{"seen", s.seen},         {"passed", s.passed},       {"dropped", s.dropped},
            {"smtp", s.smtp},         {"smtp_syn", s.smtp_syn},   {"fragments", s.fragments},
            {"malformed", s.malformed}};
}

}  // namespace

std::string status_text(const StatusView& st) {
    std::ostringstream out;
    out << "smtpfence " << st.version << "  pin dir " << st.pin_dir << "  program id "
        << (st.program_id ? std::to_string(st.program_id) : "none") << '\n';
    if (st.attachments.empty()) {
        out << "interfaces: none attached: the rules below are not enforced (`smtpfence attach IFACE`)\n";
    } else {
        std::vector<std::vector<std::string>> rows{{"INTERFACE", "MODE", "PROGRAM", "LINK"}};
        for (const auto& a : st.attachments) {
            rows.push_back({a.name, a.mode, a.program_id ? std::to_string(a.program_id) : "-",
                            a.link_id ? std::to_string(a.link_id) : "-"});
        }
        out << "interfaces:\n";
        std::istringstream lines(table(rows, {false, false, true, true}));
        for (std::string line; std::getline(lines, line);) out << "  " << line << '\n';
    }
    out << "ports:      " << format_port_list(st.ports) << '\n';
    RuleCounts v4 = count_rules(st.rules, Family::V4), v6 = count_rules(st.rules, Family::V6);
    out << "rules:      IPv4 " << v4.block << " block, " << v4.allow << " allow, " << v4.limit << " limit; IPv6 "
        << v6.block << " block, " << v6.allow << " allow, " << v6.limit << " limit; capacity " << st.capacity
        << " per family\n";
    for (const auto& r : st.rules) {
        if (r.action == Action::Limit) out << "limit:      " << format_cidr(r.cidr) << ": " << limit_line(r) << '\n';
    }
    const fence_stats& c = st.counters;
    out << "packets:    seen " << c.seen << ", passed " << c.passed << ", dropped " << c.dropped << "; SMTP "
        << c.smtp << " (new connections " << c.smtp_syn << "), port-less fragments " << c.fragments
        << ", malformed " << c.malformed << '\n';
    return out.str();
}

nlohmann::ordered_json status_json(const StatusView& st) {
    nlohmann::ordered_json interfaces = nlohmann::ordered_json::array();
    for (const auto& a : st.attachments) {
        interfaces.push_back({{"name", a.name},
                              {"ifindex", a.ifindex},
                              {"mode", a.mode},
                              {"program_id", a.program_id},
                              {"link_id", a.link_id}});
    }
    nlohmann::ordered_json limits = nlohmann::ordered_json::array();
    for (const auto& r : st.rules) {
        if (r.action == Action::Limit) limits.push_back(rule_json(r));
    }
    auto counts = [&](Family f) {
        RuleCounts c = count_rules(st.rules, f);
        return nlohmann::ordered_json{{"block", c.block}, {"allow", c.allow}, {"limit", c.limit}};
    };
    return {
        {"version", st.version},
        {"pin_dir", st.pin_dir},
        {"program_id", st.program_id},
        {"interfaces", interfaces},
        {"ports", st.ports},
        {"rules", {{"ipv4", counts(Family::V4)}, {"ipv6", counts(Family::V6)}, {"capacity", st.capacity}}},
        {"limits", limits},
        {"counters", counters_json(st.counters)},
    };
}

}  // namespace smtpfence
