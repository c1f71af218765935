#include "fleet/reconcile.h"

#include <algorithm>
#include <map>

#include "text/cidr.h"
#include "text/durations.h"
#include "text/rule_set.h"

namespace smtpfence {

ReconcileResult reconcile_fleet_rules(FenceSession& session, const std::vector<RuleSpec>& wanted, std::ostream& log) {
    Fence& fence = session.fence();
    ReconcileResult result;
    const std::vector<Rule> current = fence.rules();
    std::map<Cidr, const Rule*> in_kernel;
    for (const auto& r : current) in_kernel[r.cidr] = &r;

    const uint64_t now = unix_now();
    std::map<Cidr, const RuleSpec*> keep;
    std::vector<const RuleSpec*> to_apply;
    for (const auto& spec : wanted) {
        if (spec.expires_unix && spec.expires_unix <= now) {
            result.expired++;
            continue;
        }
        auto it = in_kernel.find(spec.cidr);
        if (it != in_kernel.end() && !is_fleet_origin(it->second->origin)) {
            result.shadowed.push_back(format_cidr(spec.cidr));
            continue;
        }
        keep[spec.cidr] = &spec;
        if (it != in_kernel.end() && matches_spec(*it->second, spec)) {
            result.unchanged++;
        } else {
            to_apply.push_back(&spec);
        }
    }
    std::stable_sort(to_apply.begin(), to_apply.end(),
                     [](const RuleSpec* a, const RuleSpec* b) { return a->cidr.prefixlen > b->cidr.prefixlen; });
    for (const RuleSpec* spec : to_apply) {
        const bool existed = in_kernel.count(spec->cidr) > 0;
        try {
            fence.add_rule(*spec);
        } catch (const std::exception& e) {
            // One rule this host cannot enforce (pacing without a usable
            // qdisc, a full map) must not keep the others out. Its prefix
            // stays in `keep`: a failed update leaves the old fleet rule in
            // place rather than nothing, the fleet's latest word this host
            // could apply.
            result.failed.push_back(format_cidr(spec->cidr) + ": " + e.what());
            log << "fleet rule not applied: " << rule_command(*spec) << ": " << e.what() << '\n';
            continue;
        }
        session.record(existed ? "fleet-update" : "fleet-add", rule_command(*spec));
        log << (existed ? "updated: " : "added: ") << rule_command(*spec) << '\n';
        (existed ? result.updated : result.added)++;
    }

    std::vector<const Rule*> extra;
    for (const auto& r : current) {
        if (is_fleet_origin(r.origin) && !keep.count(r.cidr)) extra.push_back(&r);
    }
    std::stable_sort(extra.begin(), extra.end(),
                     [](const Rule* a, const Rule* b) { return a->cidr.prefixlen < b->cidr.prefixlen; });
    for (const Rule* r : extra) {
        fence.remove_rule(r->cidr);
        session.record("fleet-remove", *r);
        log << "removed: " << rule_command(spec_of(*r)) << '\n';
        result.removed++;
    }
    return result;
}

}  // namespace smtpfence
