// How rules look to an admin: aligned text for terminals, and JSON with the
// same fields for scripts (`list`, `list --json`, `serve /rules`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "text/defaults.h"
#include "text/durations.h"
#include "text/rule.h"

namespace smtpfence {

// Seconds since the rule was created (0 when its creation time is unknown
// or in the future).
uint64_t rule_age(const Rule& rule, uint64_t now_unix);

// True when `rule` is a live block older than `warn_block_age_s` (0: never).
// Limits and dry runs are not warned about: a limit defers only the excess,
// so a sender's queue keeps draining; a dry run defers nothing.
bool block_too_old(const Rule& rule, uint64_t now_unix, uint64_t warn_block_age_s);

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

}  // namespace smtpfence
