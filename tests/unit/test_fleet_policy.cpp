// The fleet's rules in etcd: keys, the JSON value, validation like the CLI's,
// and which rule a host enforces when scopes overlap.
#include <gtest/gtest.h>

#include "base/errors.h"
#include "fleet/policy.h"
#include "text/cidr.h"
#include "text/durations.h"
#include "text/limit_options.h"

namespace smtpfence {
namespace {

Cidr cidr(const char* text) {
    return parse_cidr(text).cidr;
}

FleetRule block_rule(const char* prefix, FleetScope scope) {
    FleetRule rule;
    rule.scope = std::move(scope);
    rule.spec.cidr = cidr(prefix);
    rule.spec.action = Action::Block;
    rule.spec.reason = "notifier storm";
    rule.spec.created_by = "alice";
    rule.spec.origin = "admin1 (ssh from 203.0.113.7)";
    rule.spec.created_unix = 1796000000;
    return rule;
}

TEST(FleetPolicy, KeysNameScopeAndPrefix) {
    EXPECT_EQ("/smtpfence/v1/policy/rules/all~198.51.100.0_24", fleet_rule_key({}, cidr("198.51.100.0/24")));
    EXPECT_EQ("/smtpfence/v1/policy/rules/role=mx~2001:db8::_32",
              fleet_rule_key({FleetScope::Kind::Role, "mx"}, cidr("2001:db8::/32")));
    EXPECT_EQ("/smtpfence/v1/policy/rules/host=mx1~203.0.113.7_32",
              fleet_rule_key({FleetScope::Kind::Host, "mx1"}, cidr("203.0.113.7")));
}

TEST(FleetPolicy, ScopesParseAndTarget) {
    EXPECT_EQ((FleetScope{FleetScope::Kind::Role, "submission"}), parse_fleet_scope("role=submission"));
    EXPECT_EQ("host=central1", format_fleet_scope(parse_fleet_scope("host=central1")));
    EXPECT_THROW(parse_fleet_scope("role="), UsageError);
    EXPECT_THROW(parse_fleet_scope("role=m x"), UsageError);
    EXPECT_THROW(parse_fleet_scope("everyone"), UsageError);
    const std::vector<std::string> roles = {"submission"};
    EXPECT_TRUE(scope_targets({}, "sub1", roles));
    EXPECT_TRUE(scope_targets({FleetScope::Kind::Role, "submission"}, "sub1", roles));
    EXPECT_FALSE(scope_targets({FleetScope::Kind::Role, "mx"}, "sub1", roles));
    EXPECT_TRUE(scope_targets({FleetScope::Kind::Host, "sub1"}, "sub1", roles));
    EXPECT_FALSE(scope_targets({FleetScope::Kind::Host, "sub2"}, "sub1", roles));
}

TEST(FleetPolicy, JsonRoundTripsEveryOption) {
    FleetRule rule = block_rule("198.51.100.0/24", {FleetScope::Kind::Role, "mx"});
    rule.spec.action = Action::Limit;
    rule.spec.limit.interval_ns = parse_rate("10/s");
    rule.spec.limit.burst = 20;
    rule.spec.limit.max_conns = 3;
    rule.spec.limit.message_interval_ns = parse_message_rate("5/s");
    rule.spec.limit.key_prefixlen = 32;
    rule.spec.expires_unix = 1796003600;
    rule.spec.exact = true;
    const std::string key = fleet_rule_key(rule.scope, rule.spec.cidr);
    const std::string json = fleet_rule_json(rule);
    EXPECT_NE(json.find("\"rate\":\"10/s\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"until\":\"2026-"), std::string::npos) << json;
    FleetRule back = parse_fleet_rule(key, json);
    EXPECT_EQ(rule.scope, back.scope);
    EXPECT_EQ(rule.spec.cidr, back.spec.cidr);
    EXPECT_EQ(rule.spec.limit, back.spec.limit);
    EXPECT_EQ(rule.spec.expires_unix, back.spec.expires_unix);
    EXPECT_EQ(rule.spec.reason, back.spec.reason);
    EXPECT_EQ(rule.spec.created_by, back.spec.created_by);
    EXPECT_EQ(rule.spec.origin, back.spec.origin);
    EXPECT_EQ(rule.spec.created_unix, back.spec.created_unix);
}

// A key written by hand is checked like the command it stands for; the
// error names the key, so the agent can report and skip it.
TEST(FleetPolicy, BadStoredRulesAreRefusedWithTheirKey) {
    const std::string key = "/smtpfence/v1/policy/rules/all~198.51.100.0_24";
    auto error_of = [&](const std::string& k, const std::string& json) {
        try {
            parse_fleet_rule(k, json);
        } catch (const UsageError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_NE(error_of(key, "{not json").find(key + ": "), std::string::npos);
    EXPECT_NE(error_of(key, R"({"action":"block","cidr":"198.51.100.300/24","scope":"all"})").find("198.51.100.300"),
              std::string::npos);
    EXPECT_NE(error_of(key, R"({"action":"limit","cidr":"198.51.100.0/24","scope":"all","rate":"fast"})").find("rate"),
              std::string::npos);
    EXPECT_NE(error_of(key, R"({"action":"drop","cidr":"198.51.100.0/24","scope":"all"})").find("drop"),
              std::string::npos);
    EXPECT_NE(
        error_of(key, R"({"action":"block","cidr":"198.51.100.0/24","scope":"all","colour":"red"})").find("colour"),
        std::string::npos);
    EXPECT_NE(error_of(key, R"({"action":"block","cidr":"198.51.100.0/24","scope":"role=mx"})")
                  .find("belongs at /smtpfence/v1/policy/rules/role=mx~198.51.100.0_24"),
              std::string::npos);
    EXPECT_NE(
        error_of("/smtpfence/v1/policy/rules/all~0.0.0.0_0", R"({"action":"block","cidr":"0.0.0.0/0","scope":"all"})")
            .find("--force"),
        std::string::npos);
    EXPECT_EQ("accepted", error_of("/smtpfence/v1/policy/rules/all~0.0.0.0_0",
                                   R"({"action":"block","cidr":"0.0.0.0/0","scope":"all","force":true})"));
}

TEST(FleetPolicy, HostBeatsRoleBeatsAllAndTheLastRoleRuleWins) {
    std::vector<StoredFleetRule> stored;
    FleetRule all = block_rule("198.51.100.0/24", {});
    FleetRule mx = block_rule("198.51.100.0/24", {FleetScope::Kind::Role, "mx"});
    mx.spec.action = Action::Allow;
    FleetRule mine = block_rule("198.51.100.0/24", {FleetScope::Kind::Host, "mx1"});
    mine.spec.action = Action::Limit;
    mine.spec.limit.interval_ns = parse_rate("1/s");
    mine.spec.limit.burst = 1;
    mine.spec.limit.key_prefixlen = 32;
    FleetRule other_host = block_rule("203.0.113.0/24", {FleetScope::Kind::Host, "sub1"});
    stored = {{all, 5}, {mx, 6}, {mine, 4}, {other_host, 7}};

    auto on_mx1 = fleet_rules_for_host(stored, "mx1", {"mx"});
    ASSERT_EQ(1u, on_mx1.size());
    EXPECT_EQ(Action::Limit, on_mx1[0].action);
    EXPECT_EQ("fleet host=mx1, admin1 (ssh from 203.0.113.7)", on_mx1[0].origin);
    EXPECT_TRUE(is_fleet_origin(on_mx1[0].origin));

    auto on_mx2 = fleet_rules_for_host(stored, "mx2", {"mx"});
    ASSERT_EQ(1u, on_mx2.size());
    EXPECT_EQ(Action::Allow, on_mx2[0].action);

    auto on_sub1 = fleet_rules_for_host(stored, "sub1", {"submission"});
    ASSERT_EQ(2u, on_sub1.size());
    EXPECT_EQ(Action::Block, on_sub1[0].action);
    EXPECT_EQ(cidr("203.0.113.0/24"), on_sub1[1].cidr);

    // Two of a host's roles name the same prefix: the rule written last wins.
    FleetRule central = block_rule("198.51.100.0/24", {FleetScope::Kind::Role, "central"});
    auto on_both = fleet_rules_for_host({{mx, 6}, {central, 9}}, "c1", {"mx", "central"});
    ASSERT_EQ(1u, on_both.size());
    EXPECT_EQ(Action::Block, on_both[0].action);
}

TEST(FleetPolicy, OnlyFleetOriginsAreTheAgents) {
    EXPECT_TRUE(is_fleet_origin("fleet all, admin1"));
    EXPECT_FALSE(is_fleet_origin("mx1 (ssh from 203.0.113.7)"));
    EXPECT_FALSE(is_fleet_origin("fleetwood"));
    FleetRule long_origin = block_rule("198.51.100.0/24", {FleetScope::Kind::Host, "a-very-long-host-name-indeed"});
    long_origin.spec.origin = std::string(63, 'o');
    EXPECT_EQ(FENCE_ORIGIN_LEN - 1u, fleet_origin(long_origin).size());
}

}  // namespace
}  // namespace smtpfence
