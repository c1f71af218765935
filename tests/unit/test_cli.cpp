// CLI argument errors: every bad input exits 2 with a message naming the
// problem, before anything is opened or changed. The pin directory used here
// does not exist, so any command that got past validation would exit 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/errors.h"
#include "cli/app.h"
#include "cli/commands.h"

namespace smtpfence {
namespace {

struct CliResult {
    int code;
    std::string out, err;
};

CliResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"smtpfence", "--pin-dir", "/nonexistent/smtpfence-unit"});
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out, err;
    int code = run_cli(static_cast<int>(argv.size()), argv.data(), out, err);
    return {code, out.str(), err.str()};
}

struct BadInput {
    std::vector<std::string> args;
    std::string message_part;
};

class CliUsageError : public testing::TestWithParam<BadInput> {};

TEST_P(CliUsageError, ExitsTwoAndExplains) {
    const BadInput& bad = GetParam();
    CliResult r = run(bad.args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find(bad.message_part), std::string::npos) << "stderr: " << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    BadInputs, CliUsageError,
    testing::Values(
        BadInput{{}, "subcommand"}, BadInput{{"frobnicate"}, "frobnicate"}, BadInput{{"block"}, "CIDR"},
        BadInput{{"block", "203.0.113.0/33"}, "/0 to /32"}, BadInput{{"block", "300.1.2.3"}, "300.1.2.3"},
        BadInput{{"allow", "2001:db8::/129"}, "/0 to /128"},
        BadInput{{"block", "203.0.113.7/24"}, "did you mean 203.0.113.0/24"},
        BadInput{{"block", "198.51.100.0/24", "bogus"}, "bogus"},
        BadInput{{"block", "198.51.100.0/24", "--reason", std::string(200, 'x')}, "--reason"},
        BadInput{{"block", "198.51.100.0/24", "--reason", "two\nlines"}, "one line"},
        BadInput{{"remove", "2001:db8::1/64"}, "host bits"}, BadInput{{"attach"}, "IFACE"},
        BadInput{{"attach", "lo", "--mode", "fast"}, "fast"},
        BadInput{{"attach", "lo", "--max-rules", "0"}, "max-rules"},
        BadInput{{"attach", "smtpfence-nosuch0"}, "no interface named 'smtpfence-nosuch0'"},
        BadInput{{"ports", "0"}, "out of range"}, BadInput{{"ports", ""}, "empty"},
        BadInput{{"ports", "25,smtp"}, "e.g. 25,465,587"}, BadInput{{"list", "--jsn"}, "--jsn"},
        BadInput{{"limit", "203.0.113.0/24"},
                 "limit needs --rate (e.g. --rate 5/s), --max-conns (e.g. --max-conns 3) and/or --messages"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "0/s"}, "--rate '0/s' needs a whole number"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "fast"}, "--rate 'fast' is not a rate"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "5/sec"}, "unit 'sec'"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "5/s", "--burst", "-1"}, "--burst '-1' must be"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "5/s", "--burst", "0"}, "--burst '0' must be"},
        BadInput{{"limit", "203.0.113.0/24", "--burst", "5"}, "--burst goes with --rate"},
        BadInput{{"limit", "203.0.113.0/24", "--max-conns", "3", "--burst", "5"}, "--burst goes with --rate"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "5/s", "--per", "/33"},
                 "--per /33 is longer than an IPv4 address"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "5/s", "--per", "/16"},
                 "--per /16 is wider than the rule 203.0.113.0/24"},
        BadInput{{"limit", "203.0.113.0/24", "--rate", "5/s", "--per", "sources"}, "--per 'sources'"},
        BadInput{{"limit", "203.0.113.0/24", "--messages", "1/min"}, "slower than the slowest pace, 6/min"},
        BadInput{{"limit", "203.0.113.0/24", "--messages", "2000/s"}, "faster than the fastest pace, 1000/s"},
        BadInput{{"limit", "203.0.113.0/24", "--messages", "fast"}, "--messages 'fast' is not a rate"},
        BadInput{{"limit", "203.0.113.0/24", "--messages", "5/s", "--dry-run"}, "--dry-run cannot go with --messages"},
        BadInput{{"limit", "203.0.113.0/24", "--max-conns", "0"}, "--max-conns '0' must be"},
        BadInput{{"limit", "198.51.100.0/24", "300.1.2.3", "203.0.113.0/24", "--rate", "5/s"}, "300.1.2.3"},
        BadInput{{"limit", "198.51.96.0/20", "203.0.113.0/24", "--rate", "5/s", "--per", "/22"},
                 "--per /22 is wider than the rule 203.0.113.0/24"},
        BadInput{{"block", "203.0.113.0/24", "--for", "90"}, "needs a unit"},
        BadInput{{"block", "203.0.113.0/24", "--for", "1h", "--until", "2030-01-01T00:00"}, "--until"},
        BadInput{{"block", "203.0.113.0/24", "--until", "2020-01-01T00:00Z"}, "is in the past"},
        BadInput{{"allow", "203.0.113.0/24", "--dry-run"}, "an allow drops nothing"},
        BadInput{{"limit", "203.0.113.0/24", "--max-conns", "3", "--dry-run"}, "live rules only"},
        BadInput{{"block", "0.0.0.0/0"}, "add --force"}, BadInput{{"limit", "::/0", "--rate", "5/s"}, "add --force"},
        BadInput{{"block", "198.51.100.0/24", "0.0.0.0/1"}, "add --force"}, BadInput{{"enforce"}, "CIDR"},
        BadInput{{"--warn-block-age", "soon", "list"}, "--warn-block-age"},
        BadInput{{"--warn-block-age", "3", "status"}, "--warn-block-age"},
        BadInput{{"boot", "--config", "/nonexistent/smtpfence.conf", "extra"}, "extra"}));

TEST(Cli, HelpExitsZeroAndListsEverySubcommand) {
    CliResult r = run({"--help"});
    EXPECT_EQ(r.code, 0);
    for (const char* cmd : {"attach", "detach", "block", "allow", "remove", "ports", "list", "status", "enforce",
                            "save", "restore", "flush", "reap", "boot"}) {
        EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd << " missing from:\n" << r.out;
    }
}

TEST(Cli, ValidCommandWithoutAnInstanceIsARuntimeFailure) {
    CliResult r = run({"block", "203.0.113.0/24"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("smtpfence attach IFACE"), std::string::npos) << r.err;
}

TEST(Cli, ValidLimitWithoutAnInstanceIsARuntimeFailure) {
    // The limit cases above exit 2 because of their input, not because limit always does.
    for (std::vector<std::string> args :
         {std::vector<std::string>{"limit", "203.0.113.0/24", "--rate", "5/s"},
          {"limit", "2001:db8:bad::/48", "--rate", "10/min", "--burst", "3", "--max-conns", "2", "--per", "/56"},
          {"limit", "198.51.100.0/22", "--max-conns", "3", "--per", "rule"}}) {
        CliResult r = run(args);
        EXPECT_EQ(r.code, 1) << r.err;
        EXPECT_NE(r.err.find("smtpfence attach IFACE"), std::string::npos) << r.err;
    }
}

TEST(Cli, UnblockIsAnAliasOfRemove) {
    CliResult r = run({"unblock", "203.0.113.0/24"});
    EXPECT_EQ(r.code, 1) << r.err;  // parsed, then no instance
    EXPECT_NE(r.err.find("no smtpfence instance"), std::string::npos) << r.err;
}

TEST(Cli, RestoreOfABadFileExitsTwoBeforeOpeningAnything) {
    char tmpl[] = "/tmp/smtpfence-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string file = std::string(tmpl) + "/bad.rules";
    {
        std::ofstream out(file);
        out << "ports 25\nblock 203.0.113.0/24\nblock 203.0.113.7/24\n";
    }
    CliResult r = run({"restore", file});
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("bad.rules:3: "), std::string::npos) << r.err;
    std::filesystem::remove_all(tmpl);
}

TEST(Cli, WarnBlockAgeIsADurationOrOff) {
    EXPECT_EQ(parse_warn_block_age("3d"), 3u * 86400);
    EXPECT_EQ(parse_warn_block_age("36h"), 36u * 3600);
    EXPECT_EQ(parse_warn_block_age("0"), 0u);
    EXPECT_EQ(parse_warn_block_age("off"), 0u);
    EXPECT_THROW(parse_warn_block_age("3"), UsageError);
    EXPECT_THROW(parse_warn_block_age("-1d"), UsageError);
    // Valid: parsed, then no instance.
    CliResult r = run({"--warn-block-age", "5d", "list"});
    EXPECT_EQ(r.code, 1) << r.err;
}

TEST(Cli, WarnBlockAgeFromTheEnvironment) {
    ::setenv("SMTPFENCE_WARN_BLOCK_AGE", "never-ish", 1);
    CliResult r = run({"list"});
    ::unsetenv("SMTPFENCE_WARN_BLOCK_AGE");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("--warn-block-age"), std::string::npos) << r.err;
}

TEST(Cli, BootWithoutItsConfigIsARuntimeError) {
    CliResult r = run({"boot", "--config", "/nonexistent/smtpfence.conf"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("no config file /nonexistent/smtpfence.conf"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace smtpfence
