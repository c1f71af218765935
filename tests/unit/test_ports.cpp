#include "text/ports.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "base/errors.h"

namespace smtpfence {
namespace {

constexpr const char* kRule = "ports are numbers from 1 to 65535 separated by commas, e.g. 25,465,587";

// The message of the UsageError parse_port_list throws; fails the test if it does not.
std::string usage_error_of(std::string_view text) {
    try {
        const PortSet ports = parse_port_list(text);
        ADD_FAILURE() << "'" << text << "' parsed as " << format_port_list(ports);
    } catch (const UsageError& e) {
        return e.what();
    }
    return {};
}

TEST(DefaultSmtpPorts, AreSmtpSubmissionsAndSubmission) {
    EXPECT_EQ(default_smtp_ports(), (PortSet{25, 465, 587}));
    EXPECT_EQ(format_port_list(default_smtp_ports()), "25,465,587");
}

struct AcceptedCase {
    std::string input;
    PortSet ports;
};

std::ostream& operator<<(std::ostream& out, const AcceptedCase& c) {
    return out << "'" << c.input << "'";
}

class PortListAccepted : public testing::TestWithParam<AcceptedCase> {};

TEST_P(PortListAccepted, ParsesToTheSet) {
    EXPECT_EQ(parse_port_list(GetParam().input), GetParam().ports);
}

TEST_P(PortListAccepted, FormatParsesBackToTheSameSet) {
    const PortSet ports = parse_port_list(GetParam().input);
    EXPECT_EQ(parse_port_list(format_port_list(ports)), ports);
}

INSTANTIATE_TEST_SUITE_P(
    Table, PortListAccepted,
    testing::Values(AcceptedCase{"25", {25}}, AcceptedCase{"25,465,587", {25, 465, 587}},
                    AcceptedCase{"587,25,465", {25, 465, 587}}, AcceptedCase{"25, 465, 587", {25, 465, 587}},
                    AcceptedCase{" 25 , 465 ,587 ", {25, 465, 587}}, AcceptedCase{"\t25,\t2525", {25, 2525}},
                    AcceptedCase{"25,25,587,25", {25, 587}}, AcceptedCase{"1", {1}}, AcceptedCase{"65535", {65535}},
                    AcceptedCase{"1,65535", {1, 65535}}, AcceptedCase{"10", {10}}));

struct RejectedCase {
    std::string input;
    // A part of the message that names the offending item or problem.
    std::string message_part;
};

std::ostream& operator<<(std::ostream& out, const RejectedCase& c) {
    return out << "'" << c.input << "'";
}

class PortListRejected : public testing::TestWithParam<RejectedCase> {};

TEST_P(PortListRejected, ThrowsUsageErrorExplainingTheFormat) {
    const RejectedCase& c = GetParam();
    EXPECT_THROW(parse_port_list(c.input), UsageError);
    const std::string message = usage_error_of(c.input);
    EXPECT_NE(message.find(c.message_part), std::string::npos) << "input: '" << c.input << "'\nmessage: " << message;
    EXPECT_NE(message.find(kRule), std::string::npos) << message;
    EXPECT_NE(message.find("'" + c.input + "'"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PortListRejected,
    testing::Values(
        RejectedCase{"", "it is empty"}, RejectedCase{"   ", "it is empty"}, RejectedCase{",", "empty item"},
        RejectedCase{"25,,587", "empty item"}, RejectedCase{"25,", "empty item"}, RejectedCase{",25", "empty item"},
        RejectedCase{"25, ,587", "empty item"}, RejectedCase{"0", "port 0 is out of range"},
        RejectedCase{"25,0", "port 0 is out of range"}, RejectedCase{"65536", "port 65536 is out of range"},
        RejectedCase{"99999999999999999999", "out of range"}, RejectedCase{"smtp", "'smtp' is not a port number"},
        RejectedCase{"25,smtp", "'smtp' is not a port number"}, RejectedCase{"-1", "'-1' is not a port number"},
        RejectedCase{"+25", "'+25' is not a port number"}, RejectedCase{"025", "'025' is not a port number"},
        RejectedCase{"25;587", "'25;587' is not a port number"},
        RejectedCase{"25 587", "'25 587' is not a port number"}, RejectedCase{"0x19", "'0x19' is not a port number"},
        RejectedCase{"25-30", "'25-30' is not a port number"}));

TEST(FormatPortList, AscendingCommaSeparated) {
    EXPECT_EQ(format_port_list({587, 25, 465}), "25,465,587");
    EXPECT_EQ(format_port_list({2525}), "2525");
    EXPECT_EQ(format_port_list({1, 65535}), "1,65535");
    EXPECT_EQ(format_port_list({}), "");
}

}  // namespace
}  // namespace smtpfence
