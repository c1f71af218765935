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

// A block older than this gets a warning in `list` and `status`: senders keep
// the mail a block defers only for their queue lifetime (Postfix
// maximal_queue_lifetime 5 days, Exim's default retry rule about 4 days), then
// bounce it. Set with --warn-block-age / SMTPFENCE_WARN_BLOCK_AGE; 0 = never.
inline constexpr uint64_t kDefaultWarnBlockAgeSeconds = 3 * 86400;

// True when `rule` is a live block older than `warn_block_age_s` (0: never).
// Limits and dry runs are not warned about: a limit defers only the excess,
// so a sender's queue keeps draining; a dry run defers nothing.
bool block_too_old(const Rule& rule, uint64_t now_unix, uint64_t warn_block_age_s);

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
    uint64_t warn_block_age_s = kDefaultWarnBlockAgeSeconds;
    // Attached interfaces where rules are paced but smtpfence's HTB root is
    // missing (someone replaced it): "eth0 (root qdisc fq_codel 8001:)".
    std::vector<std::string> unpaced_interfaces;
    std::vector<std::string> warnings;  // see status_warnings
};

// What deserves the admin's attention: nothing attached, a state file that
// is missing, broken or out of step with the kernel, dry-run rules, blocks
// older than warn_block_age_s, paced rules an interface does not pace.
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

// Blocks older than `warn_block_age_s` are marked ("!" after the age and a
// line saying why).
std::string rules_text(const std::vector<Rule>& rules, uint64_t now_unix,
                       uint64_t warn_block_age_s = kDefaultWarnBlockAgeSeconds);
// `now_unix` turns deadlines into time left; "age_warning" is block_too_old.
nlohmann::ordered_json rule_json(const Rule& rule, uint64_t now_unix = unix_now(),
                                 uint64_t warn_block_age_s = kDefaultWarnBlockAgeSeconds);
nlohmann::ordered_json rules_json(const std::vector<Rule>& rules, uint64_t now_unix = unix_now(),
                                  uint64_t warn_block_age_s = kDefaultWarnBlockAgeSeconds);

std::string status_text(const StatusView& status);
nlohmann::ordered_json status_json(const StatusView& status);

}  // namespace smtpfence
