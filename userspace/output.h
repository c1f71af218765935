// How rules and state look to an admin: aligned text for terminals, and JSON
// with the same fields for scripts (`--json`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "durations.h"
#include "fence.h"
#include "state_file.h"

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
    fence_stats counters{};
    uint64_t now_unix = 0;
    StateFileHealth state;
    std::vector<std::string> warnings;  // see status_warnings
};

// What deserves the admin's attention: nothing attached, a state file that
// is missing, broken or out of step with the kernel, dry-run rules.
std::vector<std::string> status_warnings(const StatusView& status);

// Rows as aligned columns, two spaces apart: `numeric` columns right-aligned,
// the last column unpadded.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& numeric);

// "42s", "5m", "2h10m", "3d4h".
std::string format_age(uint64_t seconds);
// "2026-11-25T22:10:37Z".
std::string format_utc(uint64_t unix_seconds);

// "5/s burst 5, at most 3 open per source".
std::string describe_limit(const LimitSpec& limit, const Cidr& cidr);

std::string rules_text(const std::vector<Rule>& rules, uint64_t now_unix);
// `now_unix` turns deadlines into time left.
nlohmann::ordered_json rule_json(const Rule& rule, uint64_t now_unix = unix_now());
nlohmann::ordered_json rules_json(const std::vector<Rule>& rules, uint64_t now_unix = unix_now());

std::string status_text(const StatusView& status);
nlohmann::ordered_json status_json(const StatusView& status);

}  // namespace smtpfence
