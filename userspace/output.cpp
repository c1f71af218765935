#include "output.h"

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

std::string rules_text(const std::vector<Rule>& rules, uint64_t now_unix) {
    if (rules.empty()) return "no rules: every source may connect\n";
    std::vector<std::vector<std::string>> rows{{"ACTION", "SOURCE", "MATCHED", "DROPPED", "AGE", "BY", "REASON"}};
    for (const auto& r : rules) {
        std::string age = r.created_unix ? format_age(now_unix > r.created_unix ? now_unix - r.created_unix : 0) : "-";
        rows.push_back({action_name(r.action), format_cidr(r.cidr), std::to_string(r.counters.matched),
                        std::to_string(r.counters.dropped), age, r.created_by.empty() ? "-" : r.created_by,
                        r.reason.empty() ? "-" : r.reason});
    }
    return table(rows, {false, false, true, true, false, false, false});
}

nlohmann::ordered_json rule_json(const Rule& rule) {
    return {
        {"cidr", format_cidr(rule.cidr)},
        {"family", family_name(rule.cidr.family)},
        {"action", action_name(rule.action)},
        {"matched", rule.counters.matched},
        {"dropped", rule.counters.dropped},
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
    size_t block = 0, allow = 0;
};

RuleCounts count_rules(const std::vector<Rule>& rules, Family family) {
    RuleCounts c;
    for (const auto& r : rules) {
        if (r.cidr.family != family) continue;
        (r.action == Action::Block ? c.block : c.allow)++;
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
    out << "rules:      IPv4 " << v4.block << " block, " << v4.allow << " allow; IPv6 " << v6.block << " block, "
        << v6.allow << " allow; capacity " << st.capacity << " per family\n";
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
    auto counts = [&](Family f) {
        RuleCounts c = count_rules(st.rules, f);
        return nlohmann::ordered_json{{"block", c.block}, {"allow", c.allow}};
    };
    return {
        {"version", st.version},
        {"pin_dir", st.pin_dir},
        {"program_id", st.program_id},
        {"interfaces", interfaces},
        {"ports", st.ports},
        {"rules", {{"ipv4", counts(Family::V4)}, {"ipv6", counts(Family::V6)}, {"capacity", st.capacity}}},
        {"counters", counters_json(st.counters)},
    };
}

}  // namespace smtpfence
