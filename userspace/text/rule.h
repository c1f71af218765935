// What a rule is: as it is asked for (RuleSpec: by a command, a line of a
// state file, later the fleet store) and as it is read back from the kernel
// (Rule: with its slot, counters and provenance).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "smtpfence_abi.h"
#include "text/cidr.h"

namespace smtpfence {

enum class Action : uint8_t { Allow = FENCE_ACTION_ALLOW, Block = FENCE_ACTION_BLOCK, Limit = FENCE_ACTION_LIMIT };

// "allow", "block", "limit".
const char* action_name(Action action);

// What a `limit` rule meters. Sources whose first `key_prefixlen` bits agree
// share one key (one bucket, one connection count).
struct LimitSpec {
    uint64_t interval_ns = 0;  // one new connection per interval; 0 = no rate
    uint32_t burst = 0;        // connections a key may make at once (with a rate)
    uint32_t max_conns = 0;    // concurrent connections per key; 0 = no cap
    uint8_t key_prefixlen = 0;
    // One message per interval per key (--messages); 0 = not paced.
    uint64_t message_interval_ns = 0;

    bool operator==(const LimitSpec&) const = default;
};

struct Rule {
    Cidr cidr;
    Action action = Action::Block;
    uint32_t slot = 0;
    LimitSpec limit;            // Action::Limit only
    rule_counters counters{};   // summed over CPUs
    uint64_t tracked_keys = 0;  // Action::Limit: keys with limiter state now
    rule_pace pace{};           // limit.message_interval_ns != 0: its clock, class and counters
    uint32_t rule_id = 0;       // unique for the life of the maps (events and `top` name it)
    bool dry_run = false;       // counts would-drops, drops nothing
    uint64_t created_unix = 0;
    uint64_t expires_unix = 0;     // 0 = never
    uint64_t expires_boot_ns = 0;  // the kernel's deadline (CLOCK_BOOTTIME); 0 = never
    std::string created_by;
    std::string origin;  // where the command ran: host, and the ssh client
    std::string reason;
};

// A rule as it is asked for: by a command, or by a line of a state file.
struct RuleSpec {
    Cidr cidr;
    Action action = Action::Block;
    LimitSpec limit;            // Action::Limit only
    bool dry_run = false;       // counts would-drops, drops nothing
    uint64_t expires_unix = 0;  // wall-clock deadline; 0 = never
    std::string reason;
    std::string created_by;
    std::string origin;
    uint64_t created_unix = 0;
    // false (a command): the rule is created now by created_by from origin,
    // and when the prefix already has a rule of the same action its
    // provenance is kept, as is its reason when none is given. true (restore):
    // every field is taken as given.
    bool exact = false;
};

// A rule is the fleet's (made by `smtpfence agent` from the fleet's store,
// and changed only by it) when its origin starts with "fleet "; every other
// rule is local: the agent never touches it.
inline constexpr std::string_view kFleetOriginTag = "fleet ";
inline bool is_fleet_origin(std::string_view origin) {
    return origin.substr(0, kFleetOriginTag.size()) == kFleetOriginTag;
}
// "fleet" or "local".
inline const char* rule_set_name(std::string_view origin) {
    return is_fleet_origin(origin) ? "fleet" : "local";
}

// The spec that re-creates `rule` exactly.
RuleSpec spec_of(const Rule& rule);
// True when `rule` already is what `spec` asks for (so restoring it changes nothing).
bool matches_spec(const Rule& rule, const RuleSpec& spec);

}  // namespace smtpfence
