#include "fence/agent_state.h"

#include "fence/state_file.h"

namespace smtpfence {

std::string agent_state_path(const std::string& state_dir) {
    return state_dir + "/fleet-agent.json";
}

nlohmann::ordered_json agent_state_json(const AgentState& s) {
    return {{"host", s.host},
            {"roles", s.roles},
            {"connected", s.connected},
            {"since_unix", s.since_unix},
            {"endpoint", s.endpoint},
            {"last_error", s.last_error},
            {"revision", s.revision},
            {"applied_unix", s.applied_unix},
            {"fleet_rules", s.fleet_rules},
            {"skipped", s.skipped},
            {"shadowed", s.shadowed},
            {"failed", s.failed}};
}

std::optional<AgentState> read_agent_state(const std::string& state_dir) {
    auto text = read_file(agent_state_path(state_dir));
    if (!text) return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    try {
        AgentState s;
        s.host = j.value("host", "");
        s.roles = j.value("roles", std::vector<std::string>{});
        s.connected = j.value("connected", false);
        s.since_unix = j.value("since_unix", uint64_t{0});
        s.endpoint = j.value("endpoint", "");
        s.last_error = j.value("last_error", "");
        s.revision = j.value("revision", int64_t{0});
        s.applied_unix = j.value("applied_unix", uint64_t{0});
        s.fleet_rules = j.value("fleet_rules", size_t{0});
        s.skipped = j.value("skipped", std::vector<std::string>{});
        s.shadowed = j.value("shadowed", std::vector<std::string>{});
        s.failed = j.value("failed", std::vector<std::string>{});
        return s;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;  // a field of another type: not a state this build wrote
    }
}

void write_agent_state(const std::string& state_dir, const AgentState& state) {
    write_file_atomically(agent_state_path(state_dir), agent_state_json(state).dump(2) + "\n");
}

}  // namespace smtpfence
