#include "metrics.h"

#include <sstream>
#include <utility>

#include "observe.h"

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

struct RuleCounterMetric {
    const char* name;
    const char* help;
    __u64 rule_counters::*member;
};

constexpr RuleCounterMetric kRuleMetrics[] = {
    {"smtpfence_rule_matched_total",
     "SMTP SYN packets (retransmissions included) and port-less fragments the rule decided.",
     &rule_counters::matched},
    {"smtpfence_rule_connection_attempts_total",
     "SMTP connection attempts the rule decided (a retransmitted SYN counts once).", &rule_counters::attempts},
    {"smtpfence_rule_dropped_total", "Packets the rule dropped, for any reason.", &rule_counters::dropped},
    {"smtpfence_rule_dropped_attempts_total", "Connection attempts whose first SYN the rule dropped.",
     &rule_counters::dropped_attempts},
    {"smtpfence_rule_rate_dropped_total", "SYN packets a limit rule dropped because the key exceeded its rate.",
     &rule_counters::rate_dropped},
    {"smtpfence_rule_conns_dropped_total",
     "SYN packets a limit rule dropped because the key had its maximum of open connections.",
     &rule_counters::conns_dropped},
    {"smtpfence_rule_would_drop_total", "Packets a dry-run rule would have dropped (none were).",
     &rule_counters::would_drop},
    {"smtpfence_rule_would_drop_attempts_total",
     "Connection attempts whose first SYN a dry-run rule would have dropped (none were).",
     &rule_counters::would_drop_attempts},
};

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

MetricsView gather_metrics(const Fence& fence) {
    MetricsView view;
    view.version = SMTPFENCE_VERSION;
    view.rules = fence.rules();
    view.counters = fence.counters();
    view.rule_capacity = fence.capacity();
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

    e.family("smtpfence_packets_total", "counter", "Packets the XDP program judged, by result.");
    e.sample("smtpfence_packets_total", {{"result", "passed"}}, c.passed);
    e.sample("smtpfence_packets_total", {{"result", "dropped"}}, c.dropped);
    e.single("smtpfence_smtp_segments_total", "counter", "TCP segments to an SMTP port.", c.smtp);
    e.single("smtpfence_syn_packets_total", "counter",
             "SYN packets (SYN without ACK) to an SMTP port, retransmissions included.", c.smtp_syn);
    e.single("smtpfence_connection_attempts_total", "counter",
             "SMTP connection attempts: SYNs to an SMTP port, a retransmitted SYN (same source, ports and "
             "sequence number) counted once.",
             c.smtp_attempts);
    e.single("smtpfence_dropped_attempts_total", "counter", "SMTP connection attempts whose first SYN was dropped.",
             c.dropped_attempts);
    e.single("smtpfence_fragments_total", "counter", "TCP fragments judged by source alone (no port visible).",
             c.fragments);
    e.single("smtpfence_malformed_total", "counter", "Packets with truncated or invalid headers (always passed).",
             c.malformed);
    e.single("smtpfence_would_drop_total", "counter", "Packets a dry-run rule would have dropped.", c.would_drop);
    e.single("smtpfence_events_total", "counter", "Drop events written to the events ring buffer.", c.events);
    e.single("smtpfence_events_suppressed_total", "counter",
             "Drop events held back by the stream's rate limit or lost to a full ring buffer.",
             c.events_suppressed);

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

    for (const auto& m : kRuleMetrics) {
        e.family(m.name, "counter", m.help);
        for (const auto& r : v.rules) e.sample(m.name, rule_labels(r), r.counters.*m.member);
    }
    e.family("smtpfence_rule_tracked_keys", "gauge", "Keys (sources or prefixes) a limit rule holds state for.");
    for (const auto& r : v.rules) {
        if (r.action == Action::Limit) e.sample("smtpfence_rule_tracked_keys", rule_labels(r), r.tracked_keys);
    }

    e.single("smtpfence_sources_tracked", "gauge", "(source, port) entries in the per-source accounting.",
             v.sources_tracked);
    e.single("smtpfence_sources_capacity", "gauge",
             "Entries the per-source accounting holds before it forgets the least recently seen.",
             v.sources_capacity);
    return e.str();
}

}  // namespace smtpfence
