#include "output.h"

#include "durations.h"
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
           (r.counters.would_drop_attempts == 1 ? " attempt)" : " attempts)") + "; drops nothing (`smtpfence enforce " + format_cidr(r.cidr) + "` makes it live)";
}

uint64_t rule_age(const Rule& r, uint64_t now_unix) {
    return now_unix > r.created_unix ? now_unix - r.created_unix : 0;
}

// The line under a block older than the warning threshold.
std::string old_block_line(const Rule& r, uint64_t now_unix, uint64_t warn_block_age_s) {
    return "! blocked for " + format_age(rule_age(r, now_unix)) + ", longer than " + format_age(warn_block_age_s) +
           ": senders bounce deferred mail when their queue lifetime ends (Postfix 5d, Exim about 4d)";
}

}  // namespace

bool block_too_old(const Rule& r, uint64_t now_unix, uint64_t warn_block_age_s) {
    return warn_block_age_s && r.action == Action::Block && !r.dry_run && r.created_unix &&
           rule_age(r, now_unix) > warn_block_age_s;
}

std::string rules_text(const std::vector<Rule>& rules, uint64_t now_unix, uint64_t warn_block_age_s) {
    if (rules.empty()) return "no rules: every source may connect\n";
    // MATCHED and DROPPED count SYN packets (a sender retransmits a dropped
    // SYN several times); ATTEMPTS and DROPPED-ATTEMPTS count each once.
    std::vector<std::vector<std::string>> rows{{"ACTION", "SOURCE", "MATCHED", "DROPPED", "ATTEMPTS",
                                                "DROPPED-ATTEMPTS", "AGE", "EXPIRES", "BY", "FROM", "REASON"}};
    for (const auto& r : rules) {
        std::string age = r.created_unix ? format_age(rule_age(r, now_unix)) : "-";
        if (block_too_old(r, now_unix, warn_block_age_s)) age += " !";
        rows.push_back({action_label(r), format_cidr(r.cidr), std::to_string(r.counters.matched),
                        std::to_string(r.counters.dropped), std::to_string(r.counters.attempts),
                        std::to_string(r.counters.dropped_attempts), age,
                        format_time_left(r.expires_unix, now_unix), r.created_by.empty() ? "-" : r.created_by,
                        r.origin.empty() ? "-" : r.origin, r.reason.empty() ? "-" : r.reason});
    }
    std::istringstream lines(
        table(rows, {false, false, true, true, true, true, false, false, false, false, false}));
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
    return {
        {"cidr", format_cidr(rule.cidr)},
        {"family", family_name(rule.cidr.family)},
        {"action", action_name(rule.action)},
        {"dry_run", rule.dry_run},
        {"matched", rule.counters.matched},
        {"dropped", rule.counters.dropped},
        {"would_drop", rule.counters.would_drop},
        {"attempts", rule.counters.attempts},
        {"dropped_attempts", rule.counters.dropped_attempts},
        {"would_drop_attempts", rule.counters.would_drop_attempts},
        {"limit", limit},
        {"created_unix", rule.created_unix},
        {"created", rule.created_unix ? format_utc(rule.created_unix) : ""},
        {"created_by", rule.created_by},
        {"origin", rule.origin},
        {"reason", rule.reason},
        {"expires_unix", rule.expires_unix},
        {"expires", rule.expires_unix ? nlohmann::ordered_json(format_utc(rule.expires_unix)) : nlohmann::ordered_json(nullptr)},
        {"expires_in_s", expires_in},
        {"rule_id", rule.rule_id},
        {"age_warning", block_too_old(rule, now_unix, warn_block_age_s)},
    };
}

nlohmann::ordered_json rules_json(const std::vector<Rule>& rules, uint64_t now_unix, uint64_t warn_block_age_s) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& r : rules) list.push_back(rule_json(r, now_unix, warn_block_age_s));
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
    return {{"seen", s.seen},
            {"passed", s.passed},
            {"dropped", s.dropped},
            {"smtp", s.smtp},
            {"smtp_syn", s.smtp_syn},
            {"smtp_attempts", s.smtp_attempts},
            {"dropped_attempts", s.dropped_attempts},
            {"fragments", s.fragments},
            {"malformed", s.malformed},
            {"would_drop", s.would_drop}};
}

}  // namespace

std::vector<std::string> status_warnings(const StatusView& st) {
    std::vector<std::string> w;
    if (st.attachments.empty()) {
        w.push_back("no interface is attached: no rule is enforced (`smtpfence attach IFACE`)");
    }
    for (const auto& a : st.attachments) {
        if (a.mode == "detached") w.push_back(a.name + " is pinned but not attached (the interface is gone?)");
    }
    const StateFileHealth& sf = st.state;
    const std::string save_now = "`smtpfence save " + sf.path + "` saves what is in force";
    if (!sf.exists) {
        w.push_back("no state file at " + sf.path + ": the rules would not survive a reboot; " + save_now);
    } else if (!sf.error.empty()) {
        w.push_back("the state file is unusable: " + sf.error + "; " + save_now);
    } else if (sf.differing || sf.ports_differ) {
        w.push_back("the state file and the kernel differ (" + std::to_string(sf.differing) + " rules" +
                    (sf.ports_differ ? ", the ports" : "") + "; an interrupted run?): " + save_now +
                    ", `smtpfence restore` goes back to the file");
    }
    for (const auto& i : st.unpaced_interfaces) {
        w.push_back("--messages does not pace on " + i + ": smtpfence's HTB root is gone; `smtpfence attach " +
                    i.substr(0, i.find(' ')) + "` sets it up again");
    }
    size_t dry = std::count_if(st.rules.begin(), st.rules.end(), [](const Rule& r) { return r.dry_run; });
    if (dry) {
        w.push_back(std::to_string(dry) + (dry == 1 ? " rule is a dry run" : " rules are dry runs") +
                    ": counted, not enforced (`smtpfence enforce CIDR`)");
    }
    std::string old_blocks;
    size_t old = 0;
    for (const auto& r : st.rules) {
        if (!block_too_old(r, st.now_unix, st.warn_block_age_s)) continue;
        old_blocks += (old++ ? ", " : "") + format_cidr(r.cidr) + " (" + format_age(rule_age(r, st.now_unix)) + ")";
    }
    if (old) {
        w.push_back(std::to_string(old) + (old == 1 ? " block is" : " blocks are") + " older than " +
                    format_age(st.warn_block_age_s) + ": " + old_blocks +
                    "; senders bounce the mail a block defers when their queue lifetime ends (Postfix 5d, Exim "
                    "about 4d): lift or narrow it (`smtpfence remove CIDR`); --warn-block-age sets the threshold");
    }
    return w;
}

namespace {

std::string state_line(const StateFileHealth& sf, uint64_t now_unix) {
    std::string text = sf.path + ": ";
    if (!sf.exists) return text + "missing";
    if (!sf.error.empty()) return text + "unusable";
    text += std::to_string(sf.rules) + (sf.rules == 1 ? " rule, " : " rules, ");
    if (sf.differing || sf.ports_differ) {
        text += std::to_string(sf.differing) + " differ from the kernel" + (sf.ports_differ ? " (and the ports)" : "");
    } else {
        text += "matches the kernel";
    }
    if (sf.written_unix) {
        text += ", written " + format_utc(sf.written_unix) + " (" +
                format_age(now_unix > sf.written_unix ? now_unix - sf.written_unix : 0) + " ago)";
    }
    return text;
}

}  // namespace

std::string status_text(const StatusView& st) {
    std::ostringstream out;
    out << "smtpfence " << st.version << "  pin dir " << st.pin_dir << "  program id "
        << (st.program_id ? std::to_string(st.program_id) : "none") << "  map layout " << FENCE_LAYOUT_VERSION
        << '\n';
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
    out << "state file: " << state_line(st.state, st.now_unix) << '\n';
    RuleCounts v4 = count_rules(st.rules, Family::V4), v6 = count_rules(st.rules, Family::V6);
    out << "rules:      IPv4 " << v4.block << " block, " << v4.allow << " allow, " << v4.limit << " limit; IPv6 "
        << v6.block << " block, " << v6.allow << " allow, " << v6.limit << " limit; capacity " << st.capacity
        << " per family\n";
    std::istringstream rule_lines(rules_text(st.rules, st.now_unix, st.warn_block_age_s));
    for (std::string line; std::getline(rule_lines, line);) out << "  " << line << '\n';
    const fence_stats& c = st.counters;
    out << "packets:    seen " << c.seen << ", passed " << c.passed << ", dropped " << c.dropped << "; SMTP "
        << c.smtp << " (SYN packets " << c.smtp_syn << ", a dry run would have dropped " << c.would_drop
        << "), port-less fragments " << c.fragments << ", malformed " << c.malformed << '\n';
    out << "attempts:   " << c.smtp_attempts << " SMTP connection attempts (a retransmitted SYN counts once), "
        << c.dropped_attempts << " dropped\n";
    if (st.warnings.empty()) {
        out << "warnings:   none\n";
    } else {
        out << "warnings:\n";
        for (const auto& w : st.warnings) out << "  - " << w << '\n';
    }
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
        return nlohmann::ordered_json{{"block", c.block}, {"allow", c.allow}, {"limit", c.limit}};
    };
    nlohmann::ordered_json limits = nlohmann::ordered_json::array();
    for (const auto& r : st.rules) {
        if (r.action == Action::Limit) limits.push_back(rule_json(r, st.now_unix, st.warn_block_age_s));
    }
    const StateFileHealth& sf = st.state;
    return {
        {"version", st.version},
        {"layout_version", FENCE_LAYOUT_VERSION},
        {"pin_dir", st.pin_dir},
        {"program_id", st.program_id},
        {"interfaces", interfaces},
        {"ports", st.ports},
        {"rules", {{"ipv4", counts(Family::V4)}, {"ipv6", counts(Family::V6)}, {"capacity", st.capacity}}},
        {"limits", limits},
        {"rule_list", rules_json(st.rules, st.now_unix, st.warn_block_age_s).at("rules")},
        {"warn_block_age_s", st.warn_block_age_s},
        {"state_file",
         {{"path", sf.path},
          {"exists", sf.exists},
          {"error", sf.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(sf.error)},
          {"rules", sf.rules},
          {"differing", sf.differing},
          {"ports_differ", sf.ports_differ},
          {"matches_kernel", sf.exists && sf.error.empty() && !sf.differing && !sf.ports_differ},
          {"written_unix", sf.written_unix}}},
        {"counters", counters_json(st.counters)},
        {"warnings", st.warnings},
    };
}

}  // namespace smtpfence
