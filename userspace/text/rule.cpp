#include "text/rule.h"

#include <tuple>

namespace smtpfence {

const char* action_name(Action action) {
    switch (action) {
    case Action::Allow: return "allow";
    case Action::Block: return "block";
    case Action::Limit: return "limit";
    }
    return "?";
}

RuleSpec spec_of(const Rule& rule) {
    RuleSpec spec;
    spec.cidr = rule.cidr;
    spec.action = rule.action;
    spec.limit = rule.action == Action::Limit ? rule.limit : LimitSpec{};
    spec.dry_run = rule.dry_run;
    spec.expires_unix = rule.expires_unix;
    spec.reason = rule.reason;
    spec.created_by = rule.created_by;
    spec.origin = rule.origin;
    spec.created_unix = rule.created_unix;
    spec.exact = true;
    return spec;
}

bool matches_spec(const Rule& rule, const RuleSpec& spec) {
    RuleSpec have = spec_of(rule);
    RuleSpec want = spec;
    want.exact = true;
    if (want.action != Action::Limit) want.limit = {};
    auto fields = [](const RuleSpec& r) {
        return std::tie(r.cidr, r.action, r.limit, r.dry_run, r.expires_unix, r.reason, r.created_by, r.origin,
                        r.created_unix);
    };
    return fields(have) == fields(want);
}

}  // namespace smtpfence
