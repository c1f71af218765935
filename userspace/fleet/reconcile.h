// Makes a host's fleet rules what the store says, without touching its local
// rules and without a moment where an unchanged rule is missing.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "fence/session.h"
#include "text/rule.h"

namespace smtpfence {

struct ReconcileResult {
    size_t added = 0, updated = 0, removed = 0, unchanged = 0;
    size_t expired = 0;                 // wanted, but their deadline has passed
    std::vector<std::string> shadowed;  // prefixes a local rule holds: the local rule stays
    std::vector<std::string> failed;    // "PREFIX: why" (e.g. pacing impossible here)

    bool changed() const { return added || updated || removed; }
};

// `wanted`: exact specs with fleet origins (fleet_rules_for_host). Adds and
// changes go first, longest prefix first (an allow is in force before the
// block around it), then the fleet rules no longer wanted are removed. A
// prefix that holds a local rule keeps it. Each change is audited in
// `session`; the caller commits.
ReconcileResult reconcile_fleet_rules(FenceSession& session, const std::vector<RuleSpec>& wanted, std::ostream& log);

}  // namespace smtpfence
