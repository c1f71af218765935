#include "output/metrics.h"

#include "text/durations.h"

#include <cstring>
#include <sstream>
#include <string_view>
#include <utility>

#include "fence/counters.h"
#include "fence/observe.h"
#include "fence/state_file.h"

namespace smtpfence {

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Writes metric families: HELP and TYPE once, then every sample of the family.
class Exposition {
public:
    void family(const std::string& name, const char* type, std::string_view help) {
        out_ << "# HELP " << name << ' ' << escape_help(help) << '\n' << "# TYPE " << name << ' ' << type << '\n';
    }
    void sample(const std::string& name, const Labels& labels, uint64_t value) {
        out_ << name;
        if (!labels.empty()) {
            out_ << '{';
            for (size_t i = 0; i < labels.size(); ++i) {
                out_ << (i ? "," : "") << labels[i].first << "=\"" << escape_label_value(labels[i].second) << '"';
            }
            out_ << '}';
        }
        out_ << ' ' << value << '\n';
    }
    void single(const std::string& name, const char* type, std::string_view help, uint64_t value) {
        family(name, type, help);
        sample(name, {}, value);
    }
    std::string str() const { return out_.str(); }

private:
    std::ostringstream out_;
};

Labels rule_labels(const Rule& r) {
    return {{"rule", format_cidr(r.cidr)}, {"action", action_name(r.action)}};
}

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string out;
    for (char c : value) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

MetricsView gather_metrics(const Fence& fence, const std::string& state_dir) {
    MetricsView view;
    view.fleet = read_agent_state(state_dir);
    view.now_unix = unix_now();
    view.version = SMTPFENCE_VERSION;
    view.rules = fence.rules();
    view.counters = fence.counters();
    view.rule_capacity = fence.capacity();
    for (ListStatus& list :
         FenceLists::open(fence.pin_dir(), list_store_dir(state_dir, fence.pin_dir())).lists()) {
        if (list.in_force) view.lists.push_back(std::move(list));
    }
    for (const auto& a : fence.attachments()) {
        if (a.mode != "detached") view.attached_interfaces++;
    }
    SourceTable sources(fence.pin_dir());
    view.sources_tracked = sources.snapshot().entries.size();
    view.sources_capacity = sources.capacity();
    return view;
}

std::string metrics_text(const MetricsView& v) {
    Exposition e;
    const fence_stats& c = v.counters;
    e.family("smtpfence_info", "gauge", "The smtpfence build that serves these metrics.");
    e.sample("smtpfence_info", {{"version", v.version}}, 1);
    e.single("smtpfence_attached_interfaces", "gauge", "Interfaces the XDP program is attached to.",
             v.attached_interfaces);

    const char* family = nullptr;
    for (const auto& counter : kGlobalCounters) {
        if (!counter.metric) continue;
        if (!family || std::string_view(family) != counter.metric) e.family(counter.metric, "counter", counter.help);
        family = counter.metric;
        if (counter.result) {
            e.sample(counter.metric, {{"result", counter.result}}, c.*counter.member);
        } else {
            e.sample(counter.metric, {}, c.*counter.member);
        }
    }

    size_t block = 0, allow = 0, limit = 0;
    for (const auto& r : v.rules) {
        switch (r.action) {
        case Action::Block: block++; break;
        case Action::Allow: allow++; break;
        case Action::Limit: limit++; break;
        }
    }
    e.family("smtpfence_rules", "gauge", "Rules in force, by action (IPv4 and IPv6 together).");
    e.sample("smtpfence_rules", {{"action", "block"}}, block);
    e.sample("smtpfence_rules", {{"action", "allow"}}, allow);
    e.sample("smtpfence_rules", {{"action", "limit"}}, limit);
    e.single("smtpfence_rules_capacity", "gauge", "Rules each address family can hold.", v.rule_capacity);

    for (const auto& counter : kRuleCounters) {
        e.family(counter.metric, "counter", counter.help);
        for (const auto& r : v.rules) e.sample(counter.metric, rule_labels(r), r.counters.*counter.member);
    }
    e.single("smtpfence_lists", "gauge", "Imported lists in force.", v.lists.size());
    const auto list_labels = [](const ListStatus& l) {
        return Labels{{"list", l.stored.name}, {"action", action_name(l.stored.action)}};
    };
    e.family("smtpfence_list_prefixes", "gauge", "Prefixes of an imported list (IPv4 and IPv6 together).");
    for (const auto& l : v.lists) e.sample("smtpfence_list_prefixes", list_labels(l), l.v4_prefixes + l.v6_prefixes);
    for (const auto& counter : kRuleCounters) {
        // The rule's counter, for a list: smtpfence_rule_X -> smtpfence_list_X.
        const std::string metric = "smtpfence_list_" + std::string(counter.metric).substr(std::strlen("smtpfence_rule_"));
        std::string help = counter.help;
        if (help.ends_with('.')) help.pop_back();
        e.family(metric, "counter", help + ", for an imported list: all its prefixes together.");
        for (const auto& l : v.lists) e.sample(metric, list_labels(l), l.counters.*counter.member);
    }
    e.family("smtpfence_rule_tracked_keys", "gauge", "Keys (sources or prefixes) a limit rule holds state for.");
    for (const auto& r : v.rules) {
        if (r.action == Action::Limit) e.sample("smtpfence_rule_tracked_keys", rule_labels(r), r.tracked_keys);
    }

    e.single("smtpfence_sources_tracked", "gauge", "(source, port) entries in the per-source accounting.",
             v.sources_tracked);
    e.single("smtpfence_sources_capacity", "gauge",
             "Entries the per-source accounting holds before it forgets the least recently seen.", v.sources_capacity);
    if (v.fleet) {
        const AgentState& f = *v.fleet;
        e.single("smtpfence_fleet_store_connected", "gauge",
                 "1 while the fleet agent reaches the fleet's store (etcd), 0 while it is unreachable.",
                 f.connected ? 1 : 0);
        e.single("smtpfence_fleet_store_state_seconds", "gauge",
                 "Seconds since the fleet's store became reachable or unreachable.",
                 v.now_unix > f.since_unix ? v.now_unix - f.since_unix : 0);
        e.single("smtpfence_fleet_revision_applied", "gauge", "The fleet store revision whose rules are in force.",
                 static_cast<uint64_t>(f.revision));
        e.single("smtpfence_fleet_rules_skipped", "gauge", "Fleet rules in the store that are invalid and skipped.",
                 f.skipped.size());
        e.single("smtpfence_fleet_rules_failed", "gauge", "Fleet rules this host could not apply.", f.failed.size());
    }
    return e.str();
}

}  // namespace smtpfence
