#include "text/rerun.h"

#include "base/errors.h"

namespace smtpfence {

bool same_incident(Action a, Action b) {
    return a != Action::Allow && b != Action::Allow;
}

RuleSpec rerun_spec(const RuleSpec& asked, const Rule& existing, const RerunSaid& said) {
    RuleSpec spec = asked;
    if (!same_incident(existing.action, asked.action)) return spec;
    if (spec.reason.empty()) spec.reason = existing.reason;
    if (!said.expiry) spec.expires_unix = existing.expires_unix;
    if (asked.action == Action::Limit && existing.action == Action::Limit) {
        const LimitSpec& was = existing.limit;
        if (said.limit.rate.empty()) {
            spec.limit.interval_ns = was.interval_ns;
            spec.limit.burst = was.burst;
        }
        if (said.limit.max_conns.empty()) spec.limit.max_conns = was.max_conns;
        if (said.limit.messages.empty()) spec.limit.message_interval_ns = was.message_interval_ns;
        if (said.limit.per.empty()) spec.limit.key_prefixlen = was.key_prefixlen;
    }
    return spec;
}

void check_weakening(const Rule& existing, const RuleSpec& spec, bool force) {
    if (force || !spec.dry_run || existing.dry_run || existing.action == Action::Allow) return;
    throw UsageError(std::string(action_name(existing.action)) + " " + format_cidr(existing.cidr) +
                     " is live (it dropped " + std::to_string(existing.counters.dropped) +
                     " SYN packets so far): --dry-run would stop it dropping anything. If that is what you mean, "
                     "add --force; nothing was changed");
}

}  // namespace smtpfence
