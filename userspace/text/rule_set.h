// The rule set as text: the commands that made it, one per line, so that a
// saved file reads like what the admin typed and `restore` can re-apply it
// exactly. The state file and `save` write this; `restore` and `boot` read it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/ports.h"
#include "text/rule.h"

namespace smtpfence {

// What a rule set file holds.
struct RuleSet {
    std::optional<PortSet> ports;  // absent: restore leaves the ports alone
    std::vector<RuleSpec> rules;   // every spec exact (see RuleSpec::exact)
};

// One rule as the command that re-creates it:
// `block 203.0.113.0/24 --until 2026-12-01T08:00:00Z --reason "notifier storm"
//  --by alice --origin mx1 --created 2026-11-26T01:00:00Z`.
std::string rule_command(const RuleSpec& spec);

// The words of one such command (["limit", "198.51.100.0/24", "--rate",
// "5/s", ...]) as an exact RuleSpec, checked as on the command line.
// UsageError at the first bad word.
RuleSpec parse_rule_words(const std::vector<std::string>& words);

// The whole file: a header comment, the ports, the rules (v4 before v6, by
// address then prefix length). No timestamp of its own, so the same rule set
// always reads the same, byte for byte.
std::string format_rule_set(const PortSet& ports, const std::vector<Rule>& rules);

// Parses a whole file; `source` names it in errors ("FILE:LINE: ..."). Throws
// UsageError at the first bad line; nothing is half-read.
RuleSet parse_rule_set(std::string_view text, const std::string& source);

}  // namespace smtpfence
