#include "fleet/policy.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "text/cidr.h"
#include "text/config.h"
#include "text/durations.h"
#include "text/limit_options.h"
#include "text/rule_options.h"
#include "text/rule_set.h"

namespace smtpfence {

namespace {

// The JSON fields that are options of the rule's command, in the order the
// command names them; "force" and "scope" are the fleet's own.
const std::vector<std::pair<std::string, std::string>> kOptionFields = {
    {"rate", "--rate"},     {"burst", "--burst"},     {"max_conns", "--max-conns"}, {"messages", "--messages"},
    {"per", "--per"},       {"until", "--until"},     {"reason", "--reason"},       {"by", "--by"},
    {"origin", "--origin"}, {"created", "--created"},
};

std::string cidr_key_part(const Cidr& cidr) {
    std::string text = format_cidr(cidr);
    std::replace(text.begin(), text.end(), '/', '_');
    return text;
}

// A field's value as the command-line word it stands for: strings as they
// are, whole numbers as digits; anything else is not a value of the CLI.
std::string option_word(const std::string& field, const nlohmann::json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number_unsigned()) return std::to_string(value.get<uint64_t>());
    throw UsageError("\"" + field + "\" must be a string or a whole number, not " + value.dump());
}

}  // namespace

FleetScope parse_fleet_scope(std::string_view text) {
    if (text == "all") return {};
    for (auto [tag, kind] : {std::pair{std::string_view("role="), FleetScope::Kind::Role},
                             std::pair{std::string_view("host="), FleetScope::Kind::Host}}) {
        if (text.substr(0, tag.size()) == tag) {
            std::string_view name = text.substr(tag.size());
            check_fleet_name(kind == FleetScope::Kind::Role ? "role" : "host", name);
            return {kind, std::string(name)};
        }
    }
    throw UsageError("scope '" + std::string(text) + "' is not all, role=NAME or host=NAME");
}

std::string format_fleet_scope(const FleetScope& scope) {
    switch (scope.kind) {
    case FleetScope::Kind::Role: return "role=" + scope.name;
    case FleetScope::Kind::Host: return "host=" + scope.name;
    case FleetScope::Kind::All: break;
    }
    return "all";
}

bool scope_targets(const FleetScope& scope, const std::string& host, const std::vector<std::string>& roles) {
    switch (scope.kind) {
    case FleetScope::Kind::Role: return std::find(roles.begin(), roles.end(), scope.name) != roles.end();
    case FleetScope::Kind::Host: return scope.name == host;
    case FleetScope::Kind::All: break;
    }
    return true;
}

std::string fleet_rule_key(const FleetScope& scope, const Cidr& cidr) {
    return std::string(kFleetRulesPrefix) + format_fleet_scope(scope) + "~" + cidr_key_part(cidr);
}

std::string fleet_rule_json(const FleetRule& rule) {
    const RuleSpec& spec = rule.spec;
    nlohmann::ordered_json j;
    j["action"] = action_name(spec.action);
    j["cidr"] = format_cidr(spec.cidr);
    j["scope"] = format_fleet_scope(rule.scope);
    if (spec.action == Action::Limit) {
        const LimitSpec& l = spec.limit;
        if (l.interval_ns) {
            j["rate"] = format_rate(l.interval_ns);
            j["burst"] = l.burst;
        }
        if (l.max_conns) j["max_conns"] = l.max_conns;
        if (l.message_interval_ns) j["messages"] = format_rate(l.message_interval_ns);
        j["per"] = describe_key(l.key_prefixlen, spec.cidr);
    }
    if (spec.dry_run) j["dry_run"] = true;
    if (rule.force) j["force"] = true;
    if (spec.expires_unix) j["until"] = format_utc(spec.expires_unix);
    if (!spec.reason.empty()) j["reason"] = spec.reason;
    if (!spec.created_by.empty()) j["by"] = spec.created_by;
    if (!spec.origin.empty()) j["origin"] = spec.origin;
    if (spec.created_unix) j["created"] = format_utc(spec.created_unix);
    return j.dump();
}

FleetRule parse_fleet_rule(std::string_view key, std::string_view json) {
    const std::string where(key);
    try {
        nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object()) throw UsageError("the value is not a JSON object");
        auto text_field = [&](const char* name) {
            auto it = j.find(name);
            if (it == j.end() || !it->is_string()) throw UsageError(std::string("no \"") + name + "\" string");
            return it->get<std::string>();
        };
        auto flag_field = [&](const char* name) {
            auto it = j.find(name);
            if (it == j.end()) return false;
            if (!it->is_boolean()) throw UsageError(std::string("\"") + name + "\" must be true or false");
            return it->get<bool>();
        };
        FleetRule rule;
        rule.scope = parse_fleet_scope(text_field("scope"));
        const std::string action = text_field("action");
        if (action != "block" && action != "allow" && action != "limit") {
            throw UsageError("action '" + action + "' is not block, allow or limit");
        }
        // The same words a command line would have, through the same parser
        // as a saved rule set: a stored rule is checked like typed input.
        std::vector<std::string> words = {action, text_field("cidr")};
        for (const auto& [field, option] : kOptionFields) {
            if (auto it = j.find(field); it != j.end()) {
                words.push_back(option);
                words.push_back(option_word(field, *it));
            }
        }
        if (flag_field("dry_run")) words.push_back("--dry-run");
        rule.force = flag_field("force");
        for (const auto& [field, value] : j.items()) {
            bool known = field == "action" || field == "cidr" || field == "scope" || field == "dry_run" ||
                         field == "force" ||
                         std::any_of(kOptionFields.begin(), kOptionFields.end(),
                                     [&](const auto& f) { return f.first == field; });
            if (!known) throw UsageError("unknown field \"" + field + "\"");
        }
        rule.spec = parse_rule_words(words);
        check_breadth(rule.spec.cidr, rule.spec.action, rule.force);
        if (std::string expected = fleet_rule_key(rule.scope, rule.spec.cidr); expected != where) {
            throw UsageError("the rule belongs at " + expected);
        }
        return rule;
    } catch (const UsageError& e) {
        throw UsageError(where + ": " + e.what());
    }
}

std::string fleet_origin(const FleetRule& rule) {
    std::string origin = std::string(kFleetOriginTag) + format_fleet_scope(rule.scope);
    if (!rule.spec.origin.empty()) origin += ", " + rule.spec.origin;
    if (origin.size() > FENCE_ORIGIN_LEN - 1) origin.resize(FENCE_ORIGIN_LEN - 1);
    return origin;
}

std::vector<RuleSpec> fleet_rules_for_host(const std::vector<StoredFleetRule>& stored, const std::string& host,
                                           const std::vector<std::string>& roles) {
    auto rank = [](const FleetScope& scope) {
        switch (scope.kind) {
        case FleetScope::Kind::Host: return 2;
        case FleetScope::Kind::Role: return 1;
        case FleetScope::Kind::All: break;
        }
        return 0;
    };
    std::map<Cidr, const StoredFleetRule*> chosen;
    for (const auto& s : stored) {
        if (!scope_targets(s.rule.scope, host, roles)) continue;
        auto [it, inserted] = chosen.emplace(s.rule.spec.cidr, &s);
        if (inserted) continue;
        const StoredFleetRule& held = *it->second;
        int r = rank(s.rule.scope), held_rank = rank(held.rule.scope);
        if (r > held_rank || (r == held_rank && s.mod_revision > held.mod_revision)) it->second = &s;
    }
    std::vector<RuleSpec> specs;
    for (const auto& [cidr, s] : chosen) {
        RuleSpec spec = s->rule.spec;
        spec.origin = fleet_origin(s->rule);
        spec.exact = true;
        specs.push_back(std::move(spec));
    }
    return specs;
}

}  // namespace smtpfence
