// Prometheus text exposition (format 0.0.4) of everything the fence counts:
// `smtpfence metrics` for node_exporter's textfile collector, and GET
// /metrics of `smtpfence serve`. Sources never become labels: a flood from a
// million addresses must not become a million series; `top` is for sources.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fence/agent_state.h"
#include "fence/lists.h"
#include "fence/rule_store.h"
#include "text/rule.h"

namespace smtpfence {

// Everything one scrape reports.
struct MetricsView {
    std::string version;
    fence_stats counters{};
    std::vector<Rule> rules;
    uint32_t rule_capacity = 0;  // per address family
    std::vector<ListStatus> lists;  // in force; one series each, never one per prefix
    size_t attached_interfaces = 0;
    size_t sources_tracked = 0;
    uint32_t sources_capacity = 0;
    std::optional<AgentState> fleet;  // when this host runs the fleet agent
    uint64_t now_unix = 0;
};

// Reads the view from the pinned maps of an instance, and the fleet agent's
// state from `state_dir`.
MetricsView gather_metrics(const Fence& fence, const std::string& state_dir);

std::string metrics_text(const MetricsView& view);

// A label value inside its double quotes: backslash, double quote and line
// feed escaped as \\, \" and \n.
std::string escape_label_value(std::string_view value);
// HELP text: backslash and line feed escaped.
std::string escape_help(std::string_view text);

}  // namespace smtpfence
