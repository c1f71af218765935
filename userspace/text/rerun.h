// Re-running a rule command for a prefix that already has a rule, as an admin
// in a hurry does (from the shell's history, or to make sure): what the
// command does not say is kept, and a live rule is not turned into a dry run
// by accident.
#pragma once

#include "text/rule.h"
#include "text/rule_options.h"

namespace smtpfence {

// What a rule command said, beyond the spec it makes.
struct RerunSaid {
    bool expiry = false;  // --for, --until or --permanent
    LimitTexts limit;     // the limit terms as typed ("" = not given)
};

// True when both actions fence a source (block, limit): a change between them
// is the same incident handled another way (a block becomes a pace), so the
// rule keeps its story: reason, age, deadline. An allow is another story.
bool same_incident(Action a, Action b);

// `asked` completed from `existing`, the rule in force for its prefix:
// - for the same incident (see same_incident): no --reason keeps the reason,
//   and no --for/--until/--permanent keeps the deadline (an emergency block
//   re-run does not become permanent by omission);
// - from a limit to a limit: each term not given (--rate with its --burst,
//   --max-conns, --messages, --per) is kept.
RuleSpec rerun_spec(const RuleSpec& asked, const Rule& existing, const RerunSaid& said);

// UsageError when `spec` would turn `existing`, a live block or limit, into a
// dry run (it would stop dropping) and `force` is false.
void check_weakening(const Rule& existing, const RuleSpec& spec, bool force);

}  // namespace smtpfence
