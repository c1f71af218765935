// `status`: everything in force in one place — interfaces, program, ports,
// rules, counters, the state file's health — and what deserves attention.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "fence/agent_state.h"
#include "fence/attach.h"
#include "fence/state_file.h"
#include "smtpfence_abi.h"
#include "text/defaults.h"
#include "text/ports.h"
#include "text/rule.h"

namespace smtpfence {

// Everything `status` shows, gathered in one place.
struct StatusView {
    std::string version;
    std::string pin_dir;
    uint32_t program_id = 0;
    std::vector<Attachment> attachments;
    PortSet ports;
    std::vector<Rule> rules;
    uint32_t capacity = 0;
    size_t lists = 0;              // imported lists in force
    uint64_t list_prefixes = 0;    // their prefixes
    fence_stats counters{};
    uint64_t now_unix = 0;
    StateFileHealth state;
    uint64_t warn_block_age_s = kDefaultWarnBlockAgeSeconds;
    // Attached interfaces where rules are paced but smtpfence's HTB root is
    // missing (someone replaced it): "eth0 (root qdisc fq_codel 8001:)".
    std::vector<std::string> unpaced_interfaces;
    std::optional<AgentState> fleet;    // when this host runs the fleet agent
    std::vector<std::string> warnings;  // see status_warnings
};

// What deserves the admin's attention: nothing attached, a state file that
// is missing, broken or out of step with the kernel, dry-run rules, blocks
// older than warn_block_age_s, paced rules an interface does not pace, the
// fleet's store unreachable, fleet rules skipped or not applied.
std::vector<std::string> status_warnings(const StatusView& status);

std::string status_text(const StatusView& status);
nlohmann::ordered_json status_json(const StatusView& status);

}  // namespace smtpfence
