// The state file: rules as the commands that make them, parsed back exactly,
// deterministic, written atomically; and the paths of state and audit log.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/errors.h"
#include "fence/state_file.h"
#include "text/rule_set.h"

namespace smtpfence {
namespace {

Rule sample_block() {
    Rule r;
    r.cidr = parse_cidr("203.0.113.0/24").cidr;
    r.action = Action::Block;
    r.expires_unix = 1796112000;
    r.reason = "notifier \"storm\" \\ #2";
    r.created_by = "alice";
    r.origin = "mx1 (ssh from 198.51.100.5)";
    r.created_unix = 1795600000;
    return r;
}

Rule sample_limit() {
    Rule r;
    r.cidr = parse_cidr("2001:db8:bad::/48").cidr;
    r.action = Action::Limit;
    r.limit = {6'000'000'000, 3, 0, 56};
    r.dry_run = true;
    r.created_by = "bob";
    r.origin = "mx2";
    r.created_unix = 1795600001;
    return r;
}

TEST(RuleCommand, ReadsLikeTheCommand) {
    EXPECT_EQ(rule_command(spec_of(sample_block())),
              R"x(block 203.0.113.0/24 --until 2026-12-01T08:00:00Z --reason "notifier \"storm\" \\ #2" --by alice )x"
              R"x(--origin "mx1 (ssh from 198.51.100.5)" --created 2026-11-25T09:46:40Z)x");
    EXPECT_EQ(rule_command(spec_of(sample_limit())),
              "limit 2001:db8:bad::/48 --rate 10/min --burst 3 --per /56 --dry-run --by bob --origin mx2 "
              "--created 2026-11-25T09:46:41Z");
}

TEST(RuleCommand, APaceIsKeyedByPerLikeTheRate) {
    Rule r;
    r.cidr = parse_cidr("198.51.100.16/28").cidr;
    r.action = Action::Limit;
    r.limit = {0, 0, 0, 28, 200'000'000};
    EXPECT_EQ(rule_command(spec_of(r)), "limit 198.51.100.16/28 --messages 5/s --per rule");
    r.limit = {1'000'000'000, 2, 0, 32, 2'000'000'000};
    EXPECT_EQ(rule_command(spec_of(r)), "limit 198.51.100.16/28 --rate 1/s --burst 2 --messages 30/min --per source");
}

TEST(RuleSetFile, RoundTripsEveryField) {
    Rule allow;
    allow.cidr = parse_cidr("203.0.113.25").cidr;
    allow.action = Action::Allow;
    Rule conns;
    conns.cidr = parse_cidr("198.51.100.0/24").cidr;
    conns.action = Action::Limit;
    conns.limit = {0, 0, 3, 32};
    conns.reason = "max-conns only";
    Rule paced;  // a /32: its key is the rule and the source at once
    paced.cidr = parse_cidr("198.51.100.20").cidr;
    paced.action = Action::Limit;
    paced.limit = {0, 0, 0, 32, 200'000'000};
    Rule paced_rate;
    paced_rate.cidr = parse_cidr("203.0.113.64/26").cidr;
    paced_rate.action = Action::Limit;
    paced_rate.limit = {1'000'000'000, 1, 0, 32, 2'000'000'000};
    std::vector<Rule> rules{sample_limit(), sample_block(), allow, conns, paced, paced_rate};
    std::string text = format_rule_set({25, 2525}, rules);
    RuleSet set = parse_rule_set(text, "test.rules");
    ASSERT_TRUE(set.ports);
    EXPECT_EQ(*set.ports, (PortSet{25, 2525}));
    ASSERT_EQ(set.rules.size(), 6u);
    // v4 before v6, by address: the order is the file's.
    EXPECT_EQ(format_cidr(set.rules[0].cidr), "198.51.100.0/24");
    EXPECT_EQ(format_cidr(set.rules[5].cidr), "2001:db8:bad::/48");
    for (const auto& rule : rules) {
        auto it = std::find_if(set.rules.begin(), set.rules.end(),
                               [&](const RuleSpec& s) { return s.cidr == rule.cidr; });
        ASSERT_NE(it, set.rules.end());
        EXPECT_TRUE(matches_spec(rule, *it)) << rule_command(*it);
        EXPECT_TRUE(it->exact);
    }
    // Formatting what was parsed gives the same text: a fixed point.
    std::vector<Rule> again;
    for (const auto& spec : set.rules) {
        Rule r;
        r.cidr = spec.cidr, r.action = spec.action, r.limit = spec.limit, r.dry_run = spec.dry_run;
        r.expires_unix = spec.expires_unix, r.reason = spec.reason, r.created_by = spec.created_by;
        r.origin = spec.origin, r.created_unix = spec.created_unix;
        again.push_back(r);
    }
    EXPECT_EQ(format_rule_set(*set.ports, again), text);
}

TEST(RuleSetFile, HasNoTimestampOfItsOwn) {
    std::string a = format_rule_set({25}, {sample_block()});
    EXPECT_EQ(a.rfind("# smtpfence rule set (map layout 4): 1 rule.\n", 0), 0u) << a;
    EXPECT_EQ(format_rule_set({25}, {sample_block()}), a);
}

TEST(RuleSetFile, CommentsBlankLinesAndMissingPorts) {
    RuleSet set = parse_rule_set("# hand-written\n\nblock 198.51.100.7   # one host\n", "f");
    EXPECT_FALSE(set.ports);
    ASSERT_EQ(set.rules.size(), 1u);
    EXPECT_EQ(format_cidr(set.rules[0].cidr), "198.51.100.7/32");
    EXPECT_EQ(set.rules[0].created_unix, 0u);
}

struct BadLine {
    std::string text;
    std::string message_part;
};

class RuleSetFileError : public testing::TestWithParam<BadLine> {};

TEST_P(RuleSetFileError, NamesFileAndLine) {
    try {
        parse_rule_set("ports 25\n" + GetParam().text + "\n", "saved.rules");
        ADD_FAILURE() << GetParam().text << " was accepted";
    } catch (const UsageError& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.rfind("saved.rules:2: ", 0), 0u) << msg;
        EXPECT_NE(msg.find(GetParam().message_part), std::string::npos) << msg;
    }
}

INSTANTIATE_TEST_SUITE_P(BadLines, RuleSetFileError,
                         testing::Values(BadLine{"frobnicate 1.2.3.4", "'frobnicate' is not a rule"},
                                         BadLine{"block", "needs a prefix"},
                                         BadLine{"block 203.0.113.7/24", "did you mean"},
                                         BadLine{"block 203.0.113.0/24 --reason \"open", "quote is not closed"},
                                         BadLine{"block 203.0.113.0/24 --reason", "--reason needs a value"},
                                         BadLine{"block 203.0.113.0/24 --rate 5/s", "unknown option --rate for block"},
                                         BadLine{"block 203.0.113.0/24 --for 1h", "--until"},
                                         BadLine{"block 203.0.113.0/24 --until soon", "--until 'soon'"},
                                         BadLine{"block 203.0.113.0/24 --dry-run --dry-run", "given twice"},
                                         BadLine{"allow 203.0.113.0/24 --dry-run", "drops nothing"},
                                         BadLine{"limit 203.0.113.0/24 --max-conns 3 --dry-run", "live rules only"},
                                         BadLine{"limit 203.0.113.0/24", "limit needs --rate"},
                                         BadLine{"limit 203.0.113.0/24 --rate 5/s --per /16", "wider than the rule"},
                                         BadLine{"ports 25", "ports is given twice"},
                                         BadLine{"block ::ffff:203.0.113.0/120", "write it as 203.0.113.0/24"},
                                         BadLine{"block 203.0.113.0/24 --bogus 1", "unknown option --bogus"}));

TEST(RuleSetFile, ASecondRuleForAPrefixIsAnError) {
    EXPECT_THROW(parse_rule_set("block 203.0.113.0/24\nallow 203.0.113.0/24\n", "f"), UsageError);
}

TEST(Paths, StateFileFromPinDirAndAuditLogFromStateDir) {
    EXPECT_EQ(state_file_path("/var/lib/smtpfence", "/sys/fs/bpf/smtpfence"), "/var/lib/smtpfence/smtpfence.rules");
    EXPECT_EQ(state_file_path("/tmp/s", "/sys/fs/bpf/smtpfence-e2e-42/"), "/tmp/s/smtpfence-e2e-42.rules");
    EXPECT_EQ(audit_log_path("/var/lib/smtpfence"), "/var/log/smtpfence/audit.log");
    EXPECT_EQ(audit_log_path("/var/lib/smtpfence/"), "/var/log/smtpfence/audit.log");
    EXPECT_EQ(audit_log_path("/tmp/s"), "/tmp/s/audit.log");
}

class TempDir : public testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/smtpfence-unit-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_;
};

using WriteFileAtomically = TempDir;

TEST_F(WriteFileAtomically, ReplacesWholeAndLeavesNoTemporary) {
    std::string path = dir_ + "/x.rules";
    write_file_atomically(path, "one\n");
    write_file_atomically(path, "two\n");
    EXPECT_EQ(read_file(path), std::optional<std::string>("two\n"));
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), std::filesystem::directory_iterator()), 1);
    EXPECT_EQ(read_file(dir_ + "/absent"), std::nullopt);
    EXPECT_THROW(write_file_atomically(dir_ + "/no/such/dir/x", "x"), RuntimeError);
}

using CheckStateFile = TempDir;

TEST_F(CheckStateFile, ComparesWithTheKernel) {
    std::string path = dir_ + "/s.rules";
    StateFileHealth h = check_state_file(path, {25}, {});
    EXPECT_FALSE(h.exists);
    write_file_atomically(path, format_rule_set({25}, {sample_block(), sample_limit()}));
    h = check_state_file(path, {25}, {sample_block(), sample_limit()});
    EXPECT_TRUE(h.exists);
    EXPECT_EQ(h.error, "");
    EXPECT_EQ(h.rules, 2u);
    EXPECT_EQ(h.differing, 0u);
    EXPECT_FALSE(h.ports_differ);
    EXPECT_GT(h.written_unix, 0u);
    Rule changed = sample_block();
    changed.reason = "other";
    Rule extra = sample_block();
    extra.cidr = parse_cidr("198.51.100.0/24").cidr;
    h = check_state_file(path, {25, 587}, {changed, extra});  // one changed, one extra, one missing
    EXPECT_EQ(h.differing, 3u);
    EXPECT_TRUE(h.ports_differ);
    write_file_atomically(path, "block nonsense\n");
    h = check_state_file(path, {25}, {});
    EXPECT_NE(h.error.find("s.rules:1:"), std::string::npos) << h.error;
}

}  // namespace
}  // namespace smtpfence
