// What an admin in a hurry gets wrong, answered before anything is opened or
// changed: option-parser errors with the `smtpfence:` prefix and where to
// look, fencing a well-known non-SMTP port, deadlines beyond 10 years, text
// that is not UTF-8. The pin directory does not exist: a command that got
// past validation would exit 1.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/commands.h"
#include "text/ports.h"

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

TEST(ParseErrors, HaveThePrefixAndTheCommandsHelp) {
    struct Case {
        std::vector<std::string> args;
        std::string err;
    };
    for (const Case& c : std::vector<Case>{
             {{"block", "203.0.113.0/24", "--for"},
              "smtpfence: --for: 1 required TEXT missing; see `smtpfence block --help`\n"},
             {{"ports", "25", "587"},
              "smtpfence: The following argument was not expected: 587; see `smtpfence ports --help`\n"},
             {{"limit", "203.0.113.0/24", "--rate", "5/s", "--for", "1h", "--permanent"},
              "smtpfence: --for excludes --permanent; see `smtpfence limit --help`\n"},
             {{"list", "--jsn"},
              "smtpfence: The following argument was not expected: --jsn; see `smtpfence list --help`\n"},
             {{"--lock-timeout"}, "smtpfence: --lock-timeout: 1 required TEXT missing; see `smtpfence --help`\n"},
         }) {
        CliResult r = run(c.args);
        EXPECT_EQ(r.code, kExitUsage) << r.err;
        EXPECT_EQ(r.err, c.err);
        EXPECT_EQ(r.out, "");
    }
}

TEST(ParseErrors, HelpAndVersionStillExitZero) {
    CliResult help = run({"block", "--help"});
    EXPECT_EQ(help.code, kExitOk);
    EXPECT_NE(help.out.find("--permanent"), std::string::npos) << help.out;
    EXPECT_EQ(run({"--version"}).code, kExitOk);
}

TEST(Lifetime, AtMostTenYearsOf365Days) {
    CliResult over = run({"block", "203.0.113.0/24", "--for", "3651d"});
    EXPECT_EQ(over.code, kExitUsage);
    EXPECT_EQ(over.err,
              "smtpfence: --for '3651d' is longer than 10 years (3650d): a rule that stays takes --permanent\n");
    EXPECT_EQ(run({"block", "203.0.113.0/24", "--for", "3660d"}).code, kExitUsage);
    // 3650d is allowed: the command gets as far as the missing instance.
    EXPECT_EQ(run({"block", "203.0.113.0/24", "--for", "3650d"}).code, kExitRuntime);
    CliResult until = run({"block", "203.0.113.0/24", "--until", "2099-01-01T00:00Z"});
    EXPECT_EQ(until.code, kExitUsage);
    EXPECT_NE(until.err.find("is more than 10 years (3650 days) away"), std::string::npos) << until.err;
}

TEST(Ports, AWellKnownNonSmtpPortNeedsForce) {
    CliResult r = run({"ports", "22,25"});
    EXPECT_EQ(r.code, kExitUsage);
    EXPECT_EQ(r.err,
              "smtpfence: port 22 is ssh, not SMTP: fencing it drops that service's new connections from every "
              "blocked or limited source, and a block covering your own address locks you out of ssh. If that "
              "is what you mean, add --force; nothing was changed\n");
    CliResult two = run({"ports", "25,443,5432"});
    EXPECT_EQ(two.code, kExitUsage);
    EXPECT_NE(two.err.find("port 443 is https, port 5432 is postgresql, not SMTP"), std::string::npos) << two.err;
    EXPECT_EQ(run({"ports", "22,25", "--force"}).code, kExitRuntime);  // past the check, no instance
    EXPECT_EQ(run({"ports", "25,465,587,2525,24"}).code, kExitRuntime);
    for (uint16_t port : {21, 22, 53, 80, 443, 3306, 5432}) EXPECT_NE(non_smtp_service(port), "") << port;
    for (uint16_t port : {24, 25, 465, 587, 2525}) EXPECT_EQ(non_smtp_service(port), "") << port;
}

TEST(Utf8Input, AReasonOrAFileNameThatIsNotUtf8ExitsTwo) {
    CliResult reason = run({"block", "203.0.113.0/24", "--reason", "caf\xe9"});
    EXPECT_EQ(reason.code, kExitUsage);
    EXPECT_NE(reason.err.find("--reason is not UTF-8 (byte 0xE9 at position 4)"), std::string::npos) << reason.err;
    CliResult fleet = run({"fleet", "block", "203.0.113.0/24", "--reason", "caf\xe9"});
    EXPECT_EQ(fleet.code, kExitUsage) << fleet.err;
    CliResult file = run({"import", "/tmp/caf\xe9.txt", "--as", "drop"});
    EXPECT_EQ(file.code, kExitUsage);
    EXPECT_NE(file.err.find("the file name is not UTF-8"), std::string::npos) << file.err;
    EXPECT_NE(file.err.find("import - --as NAME < FILE"), std::string::npos) << file.err;
}

TEST(LockTimeout, ADurationOrZero) {
    EXPECT_EQ(parse_lock_timeout("0"), std::chrono::milliseconds{0});
    EXPECT_EQ(parse_lock_timeout("2m"), std::chrono::milliseconds{120'000});
    CliResult r = run({"--lock-timeout", "soon", "block", "203.0.113.0/24"});
    EXPECT_EQ(r.code, kExitUsage);
    EXPECT_NE(r.err.find("--lock-timeout 'soon'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(or 0: do not wait)"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace smtpfence
