#include "output/status.h"

#include <algorithm>
#include <sstream>

#include "fence/counters.h"
#include "output/rules.h"
#include "output/table.h"
#include "text/durations.h"

namespace smtpfence {

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
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& counter : kGlobalCounters) j[counter.name] = s.*counter.member;
    return j;
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
    if (st.fleet && !st.fleet->connected) {
        w.push_back("the fleet's store is unreachable since " + format_utc(st.fleet->since_unix) + " (" +
                    st.fleet->last_error + "): the fleet rules of revision " + std::to_string(st.fleet->revision) +
                    " stay in force; the agent retries");
    }
    if (st.fleet) {
        for (const auto& s : st.fleet->skipped) w.push_back("a fleet rule in the store is invalid, skipped: " + s);
        for (const auto& s : st.fleet->failed) w.push_back("a fleet rule could not be applied here: " + s);
        for (const auto& s : st.fleet->shadowed) {
            w.push_back("a local rule holds " + s + ", where the fleet has a rule: the local one applies");
        }
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
        << (st.program_id ? std::to_string(st.program_id) : "none") << "  map layout " << FENCE_LAYOUT_VERSION << '\n';
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
    out << "lists:      " << st.lists << " (" << st.list_prefixes << (st.list_prefixes == 1 ? " prefix" : " prefixes")
        << ")" << (st.lists ? "; see `smtpfence lists`" : "") << '\n';
    const fence_stats& c = st.counters;
    if (st.fleet) {
        const AgentState& f = *st.fleet;
        std::string roles;
        for (const auto& r : f.roles) roles += (roles.empty() ? "" : ",") + r;
        out << "fleet:      host " << f.host << " (roles " << (roles.empty() ? "none" : roles) << "), revision "
            << f.revision << " in force; store " << (f.connected ? "connected (" + f.endpoint + ")" : "UNREACHABLE")
            << " since " << format_utc(f.since_unix) << '\n';
    }
    out << "packets:    seen " << c.seen << ", passed " << c.passed << ", dropped " << c.dropped << "; SMTP " << c.smtp
        << " (SYN packets " << c.smtp_syn << ", a dry run would have dropped " << c.would_drop
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
        {"lists", {{"count", st.lists}, {"prefixes", st.list_prefixes}}},
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
        {"fleet", st.fleet ? agent_state_json(*st.fleet) : nlohmann::ordered_json(nullptr)},
        {"warnings", st.warnings},
    };
}

}  // namespace smtpfence
