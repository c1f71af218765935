#include <gtest/gtest.h>

#include "output.h"

namespace smtpfence {
namespace {

Rule make_rule(const char* cidr, Action action, uint64_t matched, uint64_t dropped, const char* reason) {
    Rule r;
    r.cidr = parse_cidr(cidr).cidr;
    r.action = action;
    r.counters = {matched, dropped, 0, 0};
    r.created_unix = 1795600000;
    r.created_by = "alice";
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
    std::vector<Rule> rules{make_rule("203.0.113.0/24", Action::Block, 1234, 1234, "notifier storm"),
                            make_rule("2001:db8::20", Action::Allow, 7, 0, "")};
    EXPECT_EQ(rules_text(rules, 1795600000 + 300),
              "ACTION  SOURCE            MATCHED  DROPPED  AGE  BY     REASON\n"
              "block   203.0.113.0/24       1234     1234  5m   alice  notifier storm\n"
              "allow   2001:db8::20/128        7        0  5m   alice  -\n");
}

TEST(RuleJson, HasTheSameFieldsAsTheText) {
    auto j = rule_json(make_rule("198.51.100.0/22", Action::Block, 3, 2, "upstream backlog"));
    EXPECT_EQ(j["cidr"], "198.51.100.0/22");
    EXPECT_EQ(j["family"], "ipv4");
    EXPECT_EQ(j["action"], "block");
    EXPECT_EQ(j["matched"], 3);
    EXPECT_EQ(j["dropped"], 2);
    EXPECT_EQ(j["created_unix"], 1795600000);
    EXPECT_EQ(j["created"], "2026-11-25T09:46:40Z");
    EXPECT_EQ(j["created_by"], "alice");
    EXPECT_EQ(j["reason"], "upstream backlog");
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
    st.counters = {100, 90, 10, 30, 12, 1, 2};
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
    EXPECT_EQ(j["counters"]["malformed"], 2);
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
