// What the fleet agent (`smtpfence agent`) last knew of the fleet's store,
// kept next to the state file (STATE_DIR/fleet-agent.json, rewritten
// atomically on every change), so that `status` and the metrics on this host
// show a store outage and which fleet revision is in force.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace smtpfence {

struct AgentState {
    std::string host;
    std::vector<std::string> roles;
    bool connected = false;
    uint64_t since_unix = 0;  // connected, or not, since then
    std::string endpoint;
    std::string last_error;
    int64_t revision = 0;  // the store revision whose rules are in force
    uint64_t applied_unix = 0;
    size_t fleet_rules = 0;
    std::vector<std::string> skipped;   // "KEY: why" (bad values in the store)
    std::vector<std::string> shadowed;  // prefixes a local rule holds
    std::vector<std::string> failed;    // fleet rules this host could not apply
};

std::string agent_state_path(const std::string& state_dir);
nlohmann::ordered_json agent_state_json(const AgentState& state);
// nullopt when there is no agent state (no agent ever ran here) or it is unreadable.
std::optional<AgentState> read_agent_state(const std::string& state_dir);
// Throws RuntimeError when it cannot be written.
void write_agent_state(const std::string& state_dir, const AgentState& state);

}  // namespace smtpfence
