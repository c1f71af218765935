// The checks every rule passes before it is added: dry-run limits, the
// breadth that needs --force, and the warnings about what a rule covers.
#include <gtest/gtest.h>

#include "base/errors.h"
#include "fence/provenance.h"
#include "text/rule_options.h"

namespace smtpfence {
namespace {

Cidr cidr(const char* text) {
    return parse_cidr(text).cidr;
}

TEST(NeedsForce, ShorterThanSlash8OrSlash32) {
    EXPECT_TRUE(needs_force(cidr("0.0.0.0/0")));
    EXPECT_TRUE(needs_force(cidr("0.0.0.0/7")));
    EXPECT_FALSE(needs_force(cidr("10.0.0.0/8")));
    EXPECT_TRUE(needs_force(cidr("::/0")));
    EXPECT_TRUE(needs_force(cidr("2000::/31")));
    EXPECT_FALSE(needs_force(cidr("2001:db8::/32")));
}

TEST(CheckBreadth, BlockAndLimitNeedForceAllowNever) {
    EXPECT_THROW(check_breadth(cidr("0.0.0.0/0"), Action::Block, false), UsageError);
    EXPECT_THROW(check_breadth(cidr("2000::/16"), Action::Limit, false), UsageError);
    EXPECT_NO_THROW(check_breadth(cidr("0.0.0.0/0"), Action::Block, true));
    EXPECT_NO_THROW(check_breadth(cidr("0.0.0.0/0"), Action::Allow, false));
    try {
        check_breadth(cidr("0.0.0.0/0"), Action::Block, false);
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(),
                     "block 0.0.0.0/0 covers every IPv4 sender (anything shorter than /8 does): if that "
                     "is what you mean, add --force");
    }
    try {
        check_breadth(cidr("2000::/16"), Action::Limit, false);
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(),
                     "limit 2000::/16 covers a whole /16 of the IPv6 Internet (anything shorter than /32 "
                     "does): if that is what you mean, add --force");
    }
}

TEST(CheckDryRun, AllowAndMaxConnsCannotDryRun) {
    RuleSpec spec;
    spec.cidr = cidr("203.0.113.0/24");
    spec.dry_run = true;
    spec.action = Action::Block;
    EXPECT_NO_THROW(check_dry_run(spec));
    spec.action = Action::Allow;
    EXPECT_THROW(check_dry_run(spec), UsageError);
    spec.action = Action::Limit;
    spec.limit = {200'000'000, 5, 0, 32};
    EXPECT_NO_THROW(check_dry_run(spec));
    spec.limit.max_conns = 3;
    EXPECT_THROW(check_dry_run(spec), UsageError);
    spec.dry_run = false;
    EXPECT_NO_THROW(check_dry_run(spec));
}

TEST(CoverageWarnings, HostAddressesAndAllowRules) {
    std::vector<HostAddress> host{
        {cidr("203.0.113.1"), "eth0"}, {cidr("2001:db8:1::1"), "eth0"}, {cidr("127.0.0.1"), "lo"}};
    Rule allow;
    allow.cidr = cidr("203.0.113.25");
    allow.action = Action::Allow;
    allow.reason = "their MX";
    Rule other_block;
    other_block.cidr = cidr("203.0.113.128/25");
    std::vector<Rule> rules{allow, other_block};

    auto w = coverage_warnings(cidr("203.0.113.0/24"), Action::Block, rules, host);
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0],
              "block 203.0.113.0/24 covers 203.0.113.1, an address of this host (eth0): SMTP connections "
              "from it to this host's guarded interfaces are judged by this rule");
    EXPECT_EQ(w[1],
              "block 203.0.113.0/24 covers the allow rule 203.0.113.25/32 (their MX), which keeps letting its "
              "sources in: remove it if they should be fenced too");
    EXPECT_TRUE(coverage_warnings(cidr("198.51.100.0/24"), Action::Limit, rules, host).empty());
    EXPECT_TRUE(coverage_warnings(cidr("203.0.113.0/24"), Action::Allow, rules, host).empty());
    EXPECT_EQ(coverage_warnings(cidr("2001:db8::/32"), Action::Limit, rules, host).size(), 1u);
    // A rule does not warn about itself.
    EXPECT_TRUE(coverage_warnings(cidr("203.0.113.25"), Action::Block, rules, {}).empty());
}

TEST(HostAddresses, IncludesLoopback) {
    auto host = host_addresses();
    bool loopback = std::any_of(host.begin(), host.end(),
                                [](const HostAddress& h) { return h.address == parse_cidr("127.0.0.1").cidr; });
    EXPECT_TRUE(loopback);
}

}  // namespace
}  // namespace smtpfence
