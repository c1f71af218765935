#include <gtest/gtest.h>

#include "fence/counters.h"
#include "output/rules.h"
#include "output/status.h"
#include "output/table.h"

namespace smtpfence {
namespace {

Rule make_rule(const char* cidr, Action action, uint64_t matched, uint64_t dropped, const char* reason,
               uint64_t attempts = 0, uint64_t dropped_attempts = 0) {
    Rule r;
    r.cidr = parse_cidr(cidr).cidr;
    r.action = action;
    r.counters = {.matched = matched, .dropped = dropped, .attempts = attempts, .dropped_attempts = dropped_attempts};
    r.created_unix = 1795600000;
    r.created_by = "alice";
    r.origin = "mx1";
    r.reason = reason;
    return r;
}

TEST(FormatAge, PicksTheTwoLargestUnits) {
    EXPECT_EQ(format_age(0), "0s");
    EXPECT_EQ(format_age(59), "59s");
    EXPECT_EQ(format_age(60), "1m");
    EXPECT_EQ(format_age(3599), "59m");
    EXPECT_EQ(format_age(3600), "1h");
    EXPECT_EQ(format_age(2 * 3600 + 10 * 60 + 5), "2h10m");
    EXPECT_EQ(format_age(86400), "1d");
    EXPECT_EQ(format_age(3 * 86400 + 4 * 3600 + 59), "3d4h");
}

TEST(FormatUtc, IsIso8601Utc) {
    EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_utc(1795645101), "2026-11-25T22:18:21Z");
}

TEST(RulesText, EmptySaysEverySourceMayConnect) {
    EXPECT_EQ(rules_text({}, 0), "no rules: every source may connect\n");
}

TEST(RulesText, AlignsColumnsAndRightAlignsCounters) {
    std::vector<Rule> rules{make_rule("203.0.113.0/24", Action::Block, 1234, 1234, "notifier storm", 200, 200),
                            make_rule("2001:db8::20", Action::Allow, 7, 0, "", 7, 0)};
    EXPECT_EQ(
        rules_text(rules, 1795600000 + 300),
        "ACTION  SOURCE            MATCHED  DROPPED  ATTEMPTS  DROPPED-ATTEMPTS  AGE  EXPIRES  SET    BY     FROM  "
        "REASON\n"
        "block   203.0.113.0/24       1234     1234       200               200  5m   never    local  alice  mx1   "
        "notifier storm\n"
        "allow   2001:db8::20/128        7        0         7                 0  5m   never    local  alice  mx1   "
        "-\n");
}

TEST(RuleJson, HasTheSameFieldsAsTheText) {
    auto j = rule_json(make_rule("198.51.100.0/22", Action::Block, 3, 2, "upstream backlog", 1, 1));
    EXPECT_EQ(j["cidr"], "198.51.100.0/22");
    EXPECT_EQ(j["family"], "ipv4");
    EXPECT_EQ(j["action"], "block");
    EXPECT_EQ(j["matched"], 3);
    EXPECT_EQ(j["dropped"], 2);
    EXPECT_EQ(j["attempts"], 1);
    EXPECT_EQ(j["dropped_attempts"], 1);
    EXPECT_EQ(j["created_unix"], 1795600000);
    EXPECT_EQ(j["created"], "2026-11-25T09:46:40Z");
    EXPECT_EQ(j["created_by"], "alice");
    EXPECT_EQ(j["reason"], "upstream backlog");
}

// ------------------------------------------------------------------- limits

Rule make_limit(const char* cidr, rule_counters counters, LimitSpec limit, uint64_t tracked_keys, const char* reason) {
    Rule r = make_rule(cidr, Action::Limit, counters.matched, counters.dropped, reason);
    r.counters = counters;
    r.limit = limit;
    r.tracked_keys = tracked_keys;
    return r;
}

// 5/s burst 5 per rule, as in the README.
Rule upstream_limit() {
    return make_limit("198.51.100.0/22", {40, 23, 23, 0, 0, 24, 7, 0}, {200'000'000, 5, 0, 22}, 1,
                      "upstream unloading its backlog");
}
// 10/min burst 3, at most 2 open, per /56.
Rule v6_limit() {
    return make_limit("2001:db8:bad::/48", {1234, 1000, 600, 400, 0, 400, 250, 0}, {6'000'000'000, 3, 2, 56}, 17, "");
}
// At most 3 open per source, no rate.
Rule conns_limit() {
    return make_limit("10.20.0.0/16", {5, 0, 0, 0, 0, 5, 0, 0}, {0, 0, 3, 32}, 0, "max-conns only");
}

TEST(DescribeLimit, RateCapAndKey) {
    EXPECT_EQ(describe_limit(upstream_limit().limit, upstream_limit().cidr), "5/s burst 5 per rule");
    EXPECT_EQ(describe_limit(v6_limit().limit, v6_limit().cidr), "10/min burst 3, at most 2 open per /56");
    EXPECT_EQ(describe_limit(conns_limit().limit, conns_limit().cidr), "at most 3 open per source");
    EXPECT_EQ(describe_limit({3'600'000'000'000, 1, 0, 64}, parse_cidr("2001:db8::/32").cidr),
              "1/h burst 1 per source");
    EXPECT_EQ(describe_limit({2'000'000'000, 1, 0, 24}, parse_cidr("10.0.0.0/8").cidr), "30/min burst 1 per /24");
}

TEST(RulesText, ReadmeLimitExample) {
    Rule r = upstream_limit();
    r.created_by = "root";
    EXPECT_EQ(rules_text({r}, 1795600000 + 3),
              "ACTION  SOURCE           MATCHED  DROPPED  ATTEMPTS  DROPPED-ATTEMPTS  AGE  EXPIRES  SET    BY    FROM  "
              "REASON\n"
              "limit   198.51.100.0/22       40       23        24                 7  3s   never    local  root  mx1   "
              "upstream unloading its backlog\n"
              "        ↳ 5/s burst 5 per rule; 1 key tracked; SYN packets allowed 17, dropped by rate 23, by "
              "max-conns 0; attempts 24, dropped 7\n");
}

TEST(RulesText, LimitRulesGetASecondLineWithTermsKeysAndCounters) {
    std::vector<Rule> rules{make_rule("203.0.113.0/24", Action::Block, 10, 10, "storm"), upstream_limit(), v6_limit(),
                            conns_limit()};
    EXPECT_EQ(
        rules_text(rules, 1795600000 + 3),
        "ACTION  SOURCE             MATCHED  DROPPED  ATTEMPTS  DROPPED-ATTEMPTS  AGE  EXPIRES  SET    BY     FROM  "
        "REASON\n"
        "block   203.0.113.0/24          10       10         0                 0  3s   never    local  alice  mx1   "
        "storm\n"
        "limit   198.51.100.0/22         40       23        24                 7  3s   never    local  alice  mx1   "
        "upstream unloading its backlog\n"
        "        ↳ 5/s burst 5 per rule; 1 key tracked; SYN packets allowed 17, dropped by rate 23, by "
        "max-conns 0; attempts 24, dropped 7\n"
        "limit   2001:db8:bad::/48     1234     1000       400               250  3s   never    local  alice  mx1   "
        "-\n"
        "        ↳ 10/min burst 3, at most 2 open per /56; 17 keys tracked; SYN packets allowed 234, dropped "
        "by rate 600, by max-conns 400; attempts 400, dropped 250\n"
        "limit   10.20.0.0/16             5        0         5                 0  3s   never    local  alice  mx1   "
        "max-conns only\n"
        "        ↳ at most 3 open per source; 0 keys tracked; SYN packets allowed 5, dropped by rate 0, by "
        "max-conns 0; attempts 5, dropped 0\n");
}

TEST(RuleJson, LimitObjectForALimitRule) {
    auto j = rule_json(upstream_limit());
    nlohmann::ordered_json expected = {
        {"cidr", "198.51.100.0/22"},
        {"family", "ipv4"},
        {"action", "limit"},
        {"dry_run", false},
        {"matched", 40},
        {"attempts", 24},
        {"dropped", 23},
        {"dropped_attempts", 7},
        {"rate_dropped", 23},
        {"conns_dropped", 0},
        {"would_drop", 0},
        {"would_drop_attempts", 0},
        {"limit",
         {{"rate", "5/s"},
          {"interval_ns", 200000000},
          {"burst", 5},
          {"max_conns", 0},
          {"per", "rule"},
          {"key_prefixlen", 22},
          {"tracked_keys", 1},
          {"allowed", 17},
          {"rate_dropped", 23},
          {"conns_dropped", 0},
          {"messages", nullptr},
          {"message_interval_ns", 0},
          {"messages_paced", 0},
          {"pace_packets", 0},
          {"pace_overflow", 0},
          {"pace_refused", 0}}},
        {"created_unix", 1795600000},
        {"created", "2026-11-25T09:46:40Z"},
        {"created_by", "alice"},
        {"origin", "mx1"},
        {"set", "local"},
        {"reason", "upstream unloading its backlog"},
        {"expires_unix", 0},
        {"expires", nullptr},
        {"expires_in_s", nullptr},
        {"rule_id", 0},
        {"age_warning", false},
    };
    EXPECT_EQ(j.dump(), expected.dump());  // same fields, same order

    auto v6 = rule_json(v6_limit());
    EXPECT_EQ(v6.at("family"), "ipv6");
    EXPECT_EQ(v6.at("limit").dump(),
              R"({"rate":"10/min","interval_ns":6000000000,"burst":3,"max_conns":2,"per":"/56","key_prefixlen":56,)"
              R"("tracked_keys":17,"allowed":234,"rate_dropped":600,"conns_dropped":400,"messages":null,)"
              R"("message_interval_ns":0,"messages_paced":0,"pace_packets":0,"pace_overflow":0,"pace_refused":0})");
}

TEST(RuleJson, LimitWithoutARateHasANullRate) {
    auto j = rule_json(conns_limit());
    EXPECT_EQ(j.at("limit").dump(),
              R"({"rate":null,"interval_ns":0,"burst":0,"max_conns":3,"per":"source","key_prefixlen":32,)"
              R"("tracked_keys":0,"allowed":5,"rate_dropped":0,"conns_dropped":0,"messages":null,)"
              R"("message_interval_ns":0,"messages_paced":0,"pace_packets":0,"pace_overflow":0,"pace_refused":0})");
}

TEST(RuleJson, LimitIsNullForBlockAndAllow) {
    for (Action action : {Action::Block, Action::Allow}) {
        Rule r = make_rule("203.0.113.0/24", action, 3, 2, "");
        r.limit = {200'000'000, 5, 3, 32};  // ignored unless the action is limit
        r.tracked_keys = 4;
        auto j = rule_json(r);
        ASSERT_TRUE(j.contains("limit")) << j.dump();
        EXPECT_TRUE(j.at("limit").is_null()) << j.dump();
    }
}

StatusView sample_status() {
    StatusView st;
    st.version = "0.1.0";
    st.pin_dir = "/sys/fs/bpf/smtpfence";
    st.program_id = 42;
    st.attachments = {{"eth0", 2, "native", 42, 7}};
    st.ports = {25, 587};
    st.rules = {make_rule("203.0.113.0/24", Action::Block, 0, 0, ""),
                make_rule("203.0.113.20", Action::Allow, 0, 0, ""),
                make_rule("2001:db8::/32", Action::Block, 0, 0, "")};
    st.capacity = 65536;
    st.counters = {.seen = 100,
                   .passed = 90,
                   .dropped = 10,
                   .smtp = 30,
                   .smtp_syn = 12,
                   .smtp_attempts = 4,
                   .dropped_attempts = 3,
                   .fragments = 1,
                   .malformed = 2};
    return st;
}

TEST(StatusJson, CountsRulesPerFamilyAndAction) {
    auto j = status_json(sample_status());
    EXPECT_EQ(j["program_id"], 42);
    EXPECT_EQ(j["interfaces"][0]["name"], "eth0");
    EXPECT_EQ(j["interfaces"][0]["mode"], "native");
    EXPECT_EQ(j["ports"], nlohmann::json::array({25, 587}));
    EXPECT_EQ(j["rules"]["ipv4"]["block"], 1);
    EXPECT_EQ(j["rules"]["ipv4"]["allow"], 1);
    EXPECT_EQ(j["rules"]["ipv6"]["block"], 1);
    EXPECT_EQ(j["rules"]["capacity"], 65536);
    EXPECT_EQ(j["counters"]["seen"], 100);
    EXPECT_EQ(j["counters"]["smtp_syn"], 12);
    EXPECT_EQ(j["counters"]["smtp_attempts"], 4);
    EXPECT_EQ(j["counters"]["dropped_attempts"], 3);
    EXPECT_EQ(j["counters"]["malformed"], 2);
}

TEST(StatusJson, HasEveryGlobalCounterLikeStats) {
    auto j = status_json(sample_status());
    ASSERT_EQ(j["counters"].size(), std::size(kGlobalCounters)) << j["counters"].dump();
    for (const auto& counter : kGlobalCounters) EXPECT_TRUE(j["counters"].contains(counter.name)) << counter.name;
}

TEST(RuleJson, HasEveryRuleCounterLikeStats) {
    auto j = rule_json(upstream_limit());
    for (const auto& counter : kRuleCounters) {
        ASSERT_TRUE(j.contains(counter.name)) << counter.name;
        EXPECT_EQ(j[counter.name], upstream_limit().counters.*counter.member) << counter.name;
    }
}

TEST(StatusJson, LimitsIsEmptyWithoutLimitRules) {
    auto j = status_json(sample_status());
    ASSERT_TRUE(j.contains("limits"));
    EXPECT_EQ(j.at("limits"), nlohmann::ordered_json::array());
    EXPECT_EQ(j["rules"]["ipv4"]["limit"], 0);
    EXPECT_EQ(j["rules"]["ipv6"]["limit"], 0);
}

TEST(StatusJson, LimitsListsEveryLimitRuleAsInList) {
    StatusView st = sample_status();
    st.rules = {make_rule("203.0.113.0/24", Action::Block, 0, 0, ""), upstream_limit(),
                make_rule("203.0.113.20", Action::Allow, 0, 0, ""), v6_limit(), conns_limit()};
    auto j = status_json(st);
    EXPECT_EQ(j["rules"]["ipv4"]["block"], 1);
    EXPECT_EQ(j["rules"]["ipv4"]["allow"], 1);
    EXPECT_EQ(j["rules"]["ipv4"]["limit"], 2);
    EXPECT_EQ(j["rules"]["ipv6"]["block"], 0);
    EXPECT_EQ(j["rules"]["ipv6"]["limit"], 1);
    const auto& limits = j.at("limits");
    ASSERT_EQ(limits.size(), 3u) << limits.dump();
    EXPECT_EQ(limits[0].dump(), rule_json(upstream_limit()).dump());
    EXPECT_EQ(limits[1].dump(), rule_json(v6_limit()).dump());
    EXPECT_EQ(limits[2].dump(), rule_json(conns_limit()).dump());
    EXPECT_EQ(limits[0]["cidr"], "198.51.100.0/22");
    EXPECT_EQ(limits[0]["limit"]["rate"], "5/s");
    EXPECT_EQ(limits[1]["cidr"], "2001:db8:bad::/48");
    EXPECT_EQ(limits[1]["limit"]["per"], "/56");
    EXPECT_EQ(limits[1]["limit"]["conns_dropped"], 400);
    EXPECT_EQ(limits[2]["cidr"], "10.20.0.0/16");
    EXPECT_TRUE(limits[2]["limit"]["rate"].is_null());
    // The key order of the whole document.
    std::vector<std::string> keys;
    for (const auto& [key, value] : j.items()) keys.push_back(key);
    EXPECT_EQ(keys, (std::vector<std::string>{"version", "layout_version", "pin_dir", "program_id", "interfaces",
                                              "ports", "rules", "lists", "limits", "rule_list", "warn_block_age_s", "state_file",
                                              "counters", "fleet", "warnings"}));
    EXPECT_TRUE(j["fleet"].is_null());  // no fleet agent on this host
}

TEST(StatusText, ShowsEveryRuleWithItsLimitLine) {
    StatusView st = sample_status();
    st.rules = {make_rule("203.0.113.0/24", Action::Block, 0, 0, "storm"), upstream_limit(), v6_limit()};
    st.now_unix = 1795600000 + 3;
    std::string text = status_text(st);
    EXPECT_NE(
        text.find(
            "IPv4 1 block, 0 allow, 1 limit; IPv6 0 block, 0 allow, 1 limit; capacity 65536 per family\n"
            "  ACTION  SOURCE             MATCHED  DROPPED  ATTEMPTS  DROPPED-ATTEMPTS  AGE  EXPIRES  SET    BY     "
            "FROM  REASON\n"
            "  block   203.0.113.0/24           0        0         0                 0  3s   never    local  alice  "
            "mx1   storm\n"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("          ↳ 10/min burst 3, at most 2 open per /56; 17 keys tracked; "
                        "SYN packets allowed 234, dropped by rate 600, by max-conns 400; attempts 400, dropped 250\n"
                        "lists:      0 (0 prefixes)\n"
                        "packets:"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("packets:    seen 100, passed 90, dropped 10; SMTP 30 (SYN packets 12, a dry run would have "
                        "dropped 0), port-less fragments 1, malformed 2\n"
                        "attempts:   4 SMTP connection attempts (a retransmitted SYN counts once), 3 dropped\n"),
              std::string::npos)
        << text;
}

TEST(StatusText, ShowsTheStateFileAndWarnings) {
    StatusView st = sample_status();
    st.now_unix = 1795600000 + 120;
    st.state = {"/var/lib/smtpfence/smtpfence.rules", true, "", 3, 0, false, 1795600000};
    st.warnings = status_warnings(st);
    std::string text = status_text(st);
    EXPECT_NE(text.find("state file: /var/lib/smtpfence/smtpfence.rules: 3 rules, matches the kernel, written "
                        "2026-11-25T09:46:40Z (2m ago)\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("warnings:   none\n"), std::string::npos) << text;

    st.state.differing = 2;
    st.rules[0].dry_run = true;
    st.warnings = status_warnings(st);
    text = status_text(st);
    EXPECT_NE(text.find("3 rules, 2 differ from the kernel"), std::string::npos) << text;
    EXPECT_NE(text.find("  - the state file and the kernel differ (2 rules; an interrupted run?): `smtpfence save "
                        "/var/lib/smtpfence/smtpfence.rules` saves what is in force, `smtpfence restore` goes back "
                        "to the file\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("  - 1 rule is a dry run: counted, not enforced (`smtpfence enforce CIDR`)\n"),
              std::string::npos)
        << text;
}

// A host in a fleet: the agent's view of the store, and an outage as a warning.
TEST(StatusText, ShowsTheFleetAndAStoreOutage) {
    StatusView st = sample_status();
    st.state = {"/var/lib/smtpfence/smtpfence.rules", true, "", 3, 0, false, 1795600000};
    AgentState f;
    f.host = "mx1";
    f.roles = {"mx"};
    f.connected = true;
    f.since_unix = 1795600000;
    f.endpoint = "https://203.0.113.101:2379";
    f.revision = 42;
    st.fleet = f;
    st.warnings = status_warnings(st);
    std::string text = status_text(st);
    EXPECT_NE(text.find("fleet:      host mx1 (roles mx), revision 42 in force; store connected "
                        "(https://203.0.113.101:2379) since 2026-11-25T09:46:40Z\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("warnings:   none\n"), std::string::npos) << text;
    EXPECT_EQ(status_json(st)["fleet"]["revision"], 42);

    st.fleet->connected = false;
    st.fleet->last_error = "no etcd endpoint answered";
    st.fleet->skipped = {"/smtpfence/v1/policy/rules/all~x: bad"};
    st.warnings = status_warnings(st);
    text = status_text(st);
    EXPECT_NE(text.find("store UNREACHABLE since"), std::string::npos) << text;
    EXPECT_NE(text.find("  - the fleet's store is unreachable since 2026-11-25T09:46:40Z (no etcd endpoint answered): "
                        "the fleet rules of revision 42 stay in force; the agent retries\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("a fleet rule in the store is invalid, skipped: /smtpfence/v1/policy/rules/all~x: bad"),
              std::string::npos)
        << text;
}

TEST(StatusWarnings, MissingOrBrokenStateFile) {
    StatusView st = sample_status();
    st.state.path = "/x/s.rules";
    auto w = status_warnings(st);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0],
              "no state file at /x/s.rules: the rules would not survive a reboot; `smtpfence save /x/s.rules` "
              "saves what is in force");
    st.state.exists = true;
    st.state.error = "/x/s.rules:3: bad";
    w = status_warnings(st);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].rfind("the state file is unusable: /x/s.rules:3: bad", 0), 0u) << w[0];
    st.attachments.clear();
    EXPECT_EQ(status_warnings(st).front(), "no interface is attached: no rule is enforced (`smtpfence attach IFACE`)");
}

TEST(RulesText, ShowsTimeLeftAndDryRuns) {
    Rule r = make_rule("203.0.113.0/24", Action::Block, 9, 0, "maybe");
    r.dry_run = true;
    r.counters.would_drop = 9;
    r.counters.attempts = 2;
    r.counters.would_drop_attempts = 2;
    r.expires_unix = 1795600000 + 90 * 60;
    EXPECT_EQ(
        rules_text({r}, 1795600000 + 60),
        "ACTION           SOURCE          MATCHED  DROPPED  ATTEMPTS  DROPPED-ATTEMPTS  AGE  EXPIRES   SET    BY     "
        "FROM  REASON\n"
        "block (dry run)  203.0.113.0/24        9        0         2                 0  1m   in 1h29m  local  alice  "
        "mx1   maybe\n"
        "        ↳ dry run: would have dropped 9 SYN packets (2 attempts); drops nothing (`smtpfence enforce "
        "203.0.113.0/24` makes it live)\n");
    auto j = rule_json(r, 1795600000 + 60);
    EXPECT_EQ(j["dry_run"], true);
    EXPECT_EQ(j["would_drop"], 9);
    EXPECT_EQ(j["would_drop_attempts"], 2);
    EXPECT_EQ(j["expires"], "2026-11-25T11:16:40Z");
    EXPECT_EQ(j["expires_in_s"], 89 * 60);
}

// ------------------------------------------------------------------- old blocks

constexpr uint64_t kDay = 86400;

TEST(BlockTooOld, LiveBlocksPastTheThresholdOnly) {
    Rule block = make_rule("203.0.113.0/24", Action::Block, 0, 0, "storm");
    const uint64_t created = block.created_unix;
    EXPECT_FALSE(block_too_old(block, created + 3 * kDay, 3 * kDay)) << "exactly 3d is not older than 3d";
    EXPECT_TRUE(block_too_old(block, created + 3 * kDay + 1, 3 * kDay));
    EXPECT_FALSE(block_too_old(block, created + 30 * kDay, 0)) << "0: never warn";
    EXPECT_TRUE(block_too_old(block, created + 2 * kDay, kDay)) << "the threshold is configurable";
    Rule dry = block;
    dry.dry_run = true;
    EXPECT_FALSE(block_too_old(dry, created + 9 * kDay, 3 * kDay)) << "a dry run defers nothing";
    EXPECT_FALSE(block_too_old(upstream_limit(), created + 9 * kDay, 3 * kDay)) << "a limit defers only the excess";
    EXPECT_FALSE(block_too_old(make_rule("203.0.113.20", Action::Allow, 0, 0, ""), created + 9 * kDay, 3 * kDay));
    Rule unknown = block;
    unknown.created_unix = 0;
    EXPECT_FALSE(block_too_old(unknown, created + 9 * kDay, 3 * kDay)) << "no creation time, no age";
}

TEST(RulesText, MarksABlockOlderThanTheThreshold) {
    std::vector<Rule> rules{make_rule("203.0.113.0/24", Action::Block, 80, 80, "storm", 10, 10),
                            make_rule("203.0.113.20", Action::Allow, 3, 0, "their MX", 3, 0)};
    const uint64_t now = 1795600000 + 4 * kDay + 2 * 3600;
    EXPECT_EQ(
        rules_text(rules, now, 3 * kDay),
        "ACTION  SOURCE           MATCHED  DROPPED  ATTEMPTS  DROPPED-ATTEMPTS  AGE     EXPIRES  SET    BY     FROM  "
        "REASON\n"
        "block   203.0.113.0/24        80       80        10                10  4d2h !  never    local  alice  mx1   "
        "storm\n"
        "        ↳ ! blocked for 4d2h, longer than 3d: senders bounce deferred mail when their queue lifetime "
        "ends (Postfix 5d, Exim about 4d)\n"
        "allow   203.0.113.20/32        3        0         3                 0  4d2h    never    local  alice  mx1   "
        "their MX\n");
    EXPECT_EQ(rules_text(rules, now, 5 * kDay).find('!'), std::string::npos) << "not older than 5d";
    EXPECT_EQ(rules_text(rules, now, 0).find('!'), std::string::npos);
    auto j = rules_json(rules, now, 3 * kDay);
    EXPECT_EQ(j["rules"][0]["age_warning"], true);
    EXPECT_EQ(j["rules"][1]["age_warning"], false);
    EXPECT_EQ(rules_json(rules, now, 5 * kDay)["rules"][0]["age_warning"], false);
}

TEST(StatusWarnings, BlocksOlderThanTheThreshold) {
    StatusView st = sample_status();
    st.state = {"/var/lib/smtpfence/smtpfence.rules", true, "", 3, 0, false, 1795600000};
    st.now_unix = 1795600000 + 4 * kDay;
    st.rules[2].created_unix = 1795600000 + 2 * kDay;  // 2001:db8::/32: 2 days old
    st.warn_block_age_s = 3 * kDay;
    auto w = status_warnings(st);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0],
              "1 block is older than 3d: 203.0.113.0/24 (4d); senders bounce the mail a block defers when "
              "their queue lifetime ends (Postfix 5d, Exim about 4d): lift or narrow it (`smtpfence remove "
              "CIDR`); --warn-block-age sets the threshold");
    st.warn_block_age_s = kDay;
    w = status_warnings(st);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].rfind("2 blocks are older than 1d: 203.0.113.0/24 (4d), 2001:db8::/32 (2d); ", 0), 0u) << w[0];
    st.warn_block_age_s = 0;
    EXPECT_TRUE(status_warnings(st).empty());

    st.warn_block_age_s = 3 * kDay;
    st.warnings = status_warnings(st);
    std::string text = status_text(st);
    EXPECT_NE(text.find("  - 1 block is older than 3d: 203.0.113.0/24 (4d); "), std::string::npos) << text;
    EXPECT_NE(text.find("  block   203.0.113.0/24 "), std::string::npos) << text;
    EXPECT_NE(text.find("4d !"), std::string::npos) << text;
    auto j = status_json(st);
    EXPECT_EQ(j["warn_block_age_s"], 3 * kDay);
    EXPECT_EQ(j["warnings"].size(), 1u);
    EXPECT_EQ(j["rule_list"][0]["age_warning"], true);
    EXPECT_EQ(j["rule_list"][2]["age_warning"], false);
}

TEST(StatusText, WarnsWhenNothingIsAttached) {
    StatusView st = sample_status();
    st.attachments.clear();
    std::string text = status_text(st);
    EXPECT_NE(text.find("none attached: the rules below are not enforced"), std::string::npos) << text;
    EXPECT_NE(text.find("ports:      25,587"), std::string::npos) << text;
    EXPECT_NE(text.find("IPv4 1 block, 1 allow, 0 limit; IPv6 1 block, 0 allow, 0 limit"), std::string::npos) << text;
}

}  // namespace
}  // namespace smtpfence
