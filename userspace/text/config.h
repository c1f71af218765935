// /etc/smtpfence/smtpfence.conf: what `smtpfence boot` (the systemd unit)
// sets up at boot. One `key = value` per line, # comments:
//   interfaces = eth0 eth1      (required; blanks or commas between names)
//   mode = auto                 (auto | native | generic)
//   ports = 25,465,587          (optional: without it the saved ports stay)
//   pin_dir = /sys/fs/bpf/smtpfence
//   state_dir = /var/lib/smtpfence
//   max_rules = 65536           (per family, when the maps are first created)
// and, for `smtpfence agent` and `smtpfence fleet` (see README "The fleet"):
//   host = mx1                  (default: this machine's hostname)
//   roles = mx                  (any names; blanks or commas between them)
//   etcd_endpoints = https://203.0.113.101:2379, https://203.0.113.102:2379
//   etcd_ca = /etc/smtpfence/etcd-ca.pem
//   etcd_cert = /etc/smtpfence/etcd-client.pem
//   etcd_key = /etc/smtpfence/etcd-client-key.pem
//   etcd_user = agent-mx1       (optional: etcd's own users and roles)
//   etcd_password_file = /etc/smtpfence/etcd.password
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/defaults.h"
#include "text/ports.h"

namespace smtpfence {

// Where the fleet's store is and who this host is in it.
struct FleetSettings {
    std::string host;  // "": the caller fills in the hostname
    std::vector<std::string> roles;
    std::vector<std::string> etcd_endpoints;
    std::string etcd_ca, etcd_cert, etcd_key, etcd_user, etcd_password_file;
};

struct BootConfig {
    std::vector<std::string> interfaces;
    std::string mode = "auto";
    std::optional<PortSet> ports;
    std::string pin_dir = kDefaultPinDir;
    std::string state_dir = kDefaultStateDir;
    uint32_t max_rules = kDefaultMaxRules;
    FleetSettings fleet;
};

// A host or role name: 1 to 63 letters, digits, '.', '-' or '_' (it becomes
// part of etcd keys and of the agents' etcd roles). UsageError naming `what`.
void check_fleet_name(std::string_view what, std::string_view name);

// Parses a whole config; `source` names it in errors ("FILE:LINE: ...").
// Throws UsageError on an unknown key, a bad value or a missing interfaces line.
BootConfig parse_boot_config(std::string_view text, const std::string& source);
// The same, for `smtpfence fleet` on an admin's machine, which guards no
// interface: `interfaces` may be absent.
BootConfig parse_fleet_config(std::string_view text, const std::string& source);

}  // namespace smtpfence
