// /etc/smtpfence/smtpfence.conf as `smtpfence boot` reads it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/errors.h"
#include "text/config.h"

namespace smtpfence {
namespace {

TEST(BootConfig, ReadsEverySetting) {
    BootConfig cfg = parse_boot_config(
        "# comment\ninterfaces = eth0, eth1 eth2\nmode = generic\nports = 25,2525  # trailing\n"
        "pin_dir = /sys/fs/bpf/mx\nstate_dir = /srv/fence\nmax_rules = 1000\n",
        "c");
    EXPECT_EQ(cfg.interfaces, (std::vector<std::string>{"eth0", "eth1", "eth2"}));
    EXPECT_EQ(cfg.mode, "generic");
    ASSERT_TRUE(cfg.ports);
    EXPECT_EQ(*cfg.ports, (PortSet{25, 2525}));
    EXPECT_EQ(cfg.pin_dir, "/sys/fs/bpf/mx");
    EXPECT_EQ(cfg.state_dir, "/srv/fence");
    EXPECT_EQ(cfg.max_rules, 1000u);
}

TEST(BootConfig, DefaultsLeaveThePortsAlone) {
    BootConfig cfg = parse_boot_config("interfaces = eth0\n", "c");
    EXPECT_EQ(cfg.mode, "auto");
    EXPECT_FALSE(cfg.ports);
    EXPECT_EQ(cfg.pin_dir, kDefaultPinDir);
    EXPECT_EQ(cfg.state_dir, kDefaultStateDir);
}

TEST(BootConfig, TheShippedExampleParses) {
    // The repository root, from this file's path (tests/unit/test_config.cpp).
    auto root = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
    std::ifstream in(root / "etc" / "smtpfence.conf");
    ASSERT_TRUE(in);
    std::stringstream text;
    text << in.rdbuf();
    BootConfig cfg = parse_boot_config(text.str(), "etc/smtpfence.conf");
    EXPECT_EQ(cfg.interfaces, std::vector<std::string>{"eth0"});
    EXPECT_EQ(cfg.pin_dir, kDefaultPinDir);
    EXPECT_EQ(cfg.state_dir, kDefaultStateDir);
}

TEST(BootConfig, ErrorsNameTheLine) {
    auto message = [](const std::string& text) {
        try {
            parse_boot_config(text, "smtpfence.conf");
        } catch (const UsageError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(message("interfaces = eth0\ncolour = blue\n"),
              "smtpfence.conf:2: unknown setting 'colour'; the settings are interfaces, mode, ports, pin_dir, "
              "state_dir, max_rules, host, roles, etcd_endpoints, etcd_ca, etcd_cert, etcd_key, etcd_user, "
              "etcd_password_file");
    EXPECT_NE(message("interfaces = eth0\nmode = fast\n").find("smtpfence.conf:2: mode 'fast'"), std::string::npos);
    EXPECT_NE(message("interfaces eth0\n").find("smtpfence.conf:1: expected `key = value`"), std::string::npos);
    EXPECT_NE(message("interfaces = eth0\nports = 0\n").find("smtpfence.conf:2:"), std::string::npos);
    EXPECT_NE(message("interfaces = eth0\npin_dir = relative\n").find("absolute path"), std::string::npos);
    EXPECT_NE(message("interfaces = eth0\nmax_rules = 5\n").find("max_rules"), std::string::npos);
    EXPECT_EQ(message("mode = auto\n"),
              "smtpfence.conf: no interfaces: name the ones to guard, e.g. `interfaces = eth0`");
    EXPECT_NE(message("interfaces =\n").find("no interfaces"), std::string::npos);
}

TEST(FleetConfig, ReadsTheFleetKeysAndNeedsNoInterfaces) {
    BootConfig cfg = parse_fleet_config(
        "host = mx1\nroles = mx, central\n"
        "etcd_endpoints = https://203.0.113.101:22379 https://203.0.113.102:22379\n"
        "etcd_ca = /etc/smtpfence/ca.pem\netcd_cert = /etc/smtpfence/c.pem\netcd_key = /etc/smtpfence/k.pem\n"
        "etcd_user = agent-mx1\netcd_password_file = /etc/smtpfence/etcd.password\n",
        "fleet.conf");
    EXPECT_TRUE(cfg.interfaces.empty());
    EXPECT_EQ("mx1", cfg.fleet.host);
    EXPECT_EQ((std::vector<std::string>{"mx", "central"}), cfg.fleet.roles);
    EXPECT_EQ(2u, cfg.fleet.etcd_endpoints.size());
    EXPECT_EQ("/etc/smtpfence/k.pem", cfg.fleet.etcd_key);
    EXPECT_EQ("agent-mx1", cfg.fleet.etcd_user);
    EXPECT_THROW(parse_boot_config("host = mx1\n", "boot.conf"), UsageError);  // boot still needs interfaces
}

TEST(FleetConfig, BadFleetValuesNameTheLine) {
    auto message = [](const std::string& text) {
        try {
            parse_fleet_config(text, "fleet.conf");
        } catch (const UsageError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_NE(message("roles = mx sub/1\n").find("fleet.conf:1: role 'sub/1' is not a name"), std::string::npos);
    EXPECT_NE(message("host = \n").find("fleet.conf:1: host '' is not a name"), std::string::npos);
    EXPECT_NE(message("etcd_endpoints = 203.0.113.1:2379\n").find("is not a URL"), std::string::npos);
    EXPECT_NE(message("etcd_key = key.pem\n").find("etcd_key must be an absolute path"), std::string::npos);
}

}  // namespace
}  // namespace smtpfence
