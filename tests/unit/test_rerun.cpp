// Re-running a rule command on a prefix that has a rule: what the command
// does not say is kept, and a live rule does not become a dry run by accident.
#include <gtest/gtest.h>

#include "base/errors.h"
#include "text/rerun.h"

namespace smtpfence {
namespace {

constexpr uint64_t kDeadline = 1796112000;

Rule live_block() {
    Rule r;
    r.cidr = parse_cidr("203.0.113.0/24").cidr;
    r.action = Action::Block;
    r.reason = "notifier storm";
    r.expires_unix = kDeadline;
    r.counters.dropped = 42;
    return r;
}

Rule rate_limit() {
    Rule r;
    r.cidr = parse_cidr("203.0.113.0/24").cidr;
    r.action = Action::Limit;
    r.limit = {.interval_ns = 100'000'000, .burst = 10, .max_conns = 3, .key_prefixlen = 24};
    r.reason = "slow down";
    return r;
}

RuleSpec asked(Action action, const std::string& reason = "") {
    RuleSpec s;
    s.cidr = parse_cidr("203.0.113.0/24").cidr;
    s.action = action;
    s.reason = reason;
    return s;
}

TEST(Rerun, ABlockRerunWithoutForKeepsItsDeadlineAndReason) {
    const RuleSpec spec = rerun_spec(asked(Action::Block), live_block(), {});
    EXPECT_EQ(spec.expires_unix, kDeadline);
    EXPECT_EQ(spec.reason, "notifier storm");
}

TEST(Rerun, ForUntilOrPermanentReplaceTheDeadline) {
    RuleSpec a = asked(Action::Block, "new reason");
    a.expires_unix = 0;  // --permanent
    const RuleSpec spec = rerun_spec(a, live_block(), {.expiry = true});
    EXPECT_EQ(spec.expires_unix, 0u);
    EXPECT_EQ(spec.reason, "new reason");
}

TEST(Rerun, ABlockThatBecomesALimitKeepsItsStory) {
    RuleSpec a = asked(Action::Limit);
    a.limit.message_interval_ns = 200'000'000;
    const RuleSpec spec = rerun_spec(a, live_block(), {.limit = {.messages = "5/s"}});
    EXPECT_EQ(spec.reason, "notifier storm");
    EXPECT_EQ(spec.expires_unix, kDeadline);
    EXPECT_EQ(spec.limit.message_interval_ns, 200'000'000u);
    EXPECT_EQ(spec.limit.interval_ns, 0u);  // a block had no rate to keep
}

TEST(Rerun, AnAllowIsAnotherStory) {
    const RuleSpec spec = rerun_spec(asked(Action::Allow), live_block(), {});
    EXPECT_EQ(spec.reason, "");
    EXPECT_EQ(spec.expires_unix, 0u);
    EXPECT_FALSE(same_incident(Action::Allow, Action::Block));
    EXPECT_TRUE(same_incident(Action::Limit, Action::Block));
}

TEST(Rerun, MessagesOnARateLimitKeepsTheRateTheCapAndTheKey) {
    RuleSpec a = asked(Action::Limit);
    a.limit.message_interval_ns = 200'000'000;
    a.limit.key_prefixlen = 32;  // the default --per source, not given
    const RuleSpec spec = rerun_spec(a, rate_limit(), {.limit = {.messages = "5/s"}});
    EXPECT_EQ(spec.limit, (LimitSpec{.interval_ns = 100'000'000,
                                     .burst = 10,
                                     .max_conns = 3,
                                     .key_prefixlen = 24,
                                     .message_interval_ns = 200'000'000}));
}

TEST(Rerun, TermsGivenReplaceTheirOldValues) {
    RuleSpec a = asked(Action::Limit);
    a.limit = {.interval_ns = 1'000'000'000, .burst = 1, .key_prefixlen = 32};
    const RuleSpec spec = rerun_spec(a, rate_limit(), {.limit = {.rate = "1/s", .per = "source"}});
    EXPECT_EQ(spec.limit, (LimitSpec{.interval_ns = 1'000'000'000, .burst = 1, .max_conns = 3, .key_prefixlen = 32}));
}

TEST(Rerun, ALiveBlockIsNotTurnedIntoADryRunWithoutForce) {
    RuleSpec a = asked(Action::Block);
    a.dry_run = true;
    try {
        check_weakening(live_block(), a, false);
        FAIL() << "a live block became a dry run";
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(),
                     "block 203.0.113.0/24 is live (it dropped 42 SYN packets so far): --dry-run would stop it "
                     "dropping anything. If that is what you mean, add --force; nothing was changed");
    }
    EXPECT_NO_THROW(check_weakening(live_block(), a, true));
    Rule dry = live_block();
    dry.dry_run = true;
    EXPECT_NO_THROW(check_weakening(dry, a, false));  // already a dry run
    EXPECT_NO_THROW(check_weakening(live_block(), asked(Action::Block), false));
}

}  // namespace
}  // namespace smtpfence
