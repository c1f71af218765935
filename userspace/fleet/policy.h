// The fleet's rules as they are kept in etcd: where each one lives (its key),
// what it says (a JSON value in the words of the CLI), whom it targets (its
// scope), and which of them a host enforces. Pure: no store, no maps.
//
// Key layout (one versioned prefix; see README "The fleet"):
//   /smtpfence/v1/policy/rules/SCOPE~CIDR   a rule; CIDR with '/' as '_',
//                                           SCOPE all | role=NAME | host=NAME
//   /smtpfence/v1/policy/echo/HOST          the agent's liveness probe (lease)
//   /smtpfence/v1/policy/changed            the fleet commands' last change
//   /smtpfence/v1/hosts/HOST/...            what the agent of HOST reports
// A rule's key is made from its scope and prefix, so repeating a command
// replaces the rule and `fleet remove` deletes exactly one key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/rule.h"

namespace smtpfence {

inline constexpr std::string_view kFleetPrefix = "/smtpfence/v1/";
inline constexpr std::string_view kFleetPolicyPrefix = "/smtpfence/v1/policy/";
inline constexpr std::string_view kFleetRulesPrefix = "/smtpfence/v1/policy/rules/";
inline constexpr std::string_view kFleetEchoPrefix = "/smtpfence/v1/policy/echo/";
// Written by every fleet command after its change: its mod_revision is the
// revision of the fleet's latest change, which a host that is in sync has
// applied (see `fleet status`).
inline constexpr std::string_view kFleetChangedKey = "/smtpfence/v1/policy/changed";
inline constexpr std::string_view kFleetHostsPrefix = "/smtpfence/v1/hosts/";

// Whom a fleet rule targets.
struct FleetScope {
    enum class Kind { All, Role, Host } kind = Kind::All;
    std::string name;  // Role, Host

    bool operator==(const FleetScope&) const = default;
};

// "all", "role=NAME", "host=NAME".
FleetScope parse_fleet_scope(std::string_view text);
std::string format_fleet_scope(const FleetScope& scope);
// True when a host named `host` with `roles` enforces rules of `scope`.
bool scope_targets(const FleetScope& scope, const std::string& host, const std::vector<std::string>& roles);

// A rule of the fleet: what the CLI would make locally, and whom it targets.
// spec.exact is true: its provenance is the admin's command's, kept as given.
struct FleetRule {
    FleetScope scope;
    RuleSpec spec;
    bool force = false;  // the admin confirmed a very broad prefix (--force)
};

std::string fleet_rule_key(const FleetScope& scope, const Cidr& cidr);
// The value stored at the key: {"action":"limit","cidr":"198.51.100.0/24",
// "scope":"role=mx","rate":"10/s","burst":10,"per":"source",
// "until":"2026-12-05T08:00:00Z","reason":"...","by":"alice",
// "origin":"admin1 (ssh from 203.0.113.7)","created":"2026-12-04T10:00:00Z"};
// absent fields mean what an absent option means.
std::string fleet_rule_json(const FleetRule& rule);
// Checks a stored rule exactly like the same command typed at the CLI, and
// that its key is the one its scope and prefix give. UsageError
// ("KEY: what is wrong") on anything else: the caller skips the key.
FleetRule parse_fleet_rule(std::string_view key, std::string_view json);

// The origin a fleet rule is recorded with in a host's kernel: "fleet SCOPE,
// ORIGIN", cut to fit (see is_fleet_origin).
std::string fleet_origin(const FleetRule& rule);

// A rule as read from the store, with its place in the store's history.
struct StoredFleetRule {
    FleetRule rule;
    int64_t mod_revision = 0;
};

// What a host enforces of `stored`: the rules that target it, one per
// prefix. For one prefix a host-scoped rule beats a role-scoped one, which
// beats one for all hosts; between rules of two of the host's roles, the one
// written last (higher mod_revision) wins. Across prefixes the kernel decides
// as for local rules: the longest prefix, and an allow inside a block wins.
// The specs are exact, with fleet origins, ordered by prefix.
std::vector<RuleSpec> fleet_rules_for_host(const std::vector<StoredFleetRule>& stored, const std::string& host,
                                           const std::vector<std::string>& roles);

}  // namespace smtpfence
