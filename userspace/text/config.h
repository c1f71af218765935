// /etc/smtpfence/smtpfence.conf: what `smtpfence boot` (the systemd unit)
// sets up at boot. One `key = value` per line, # comments:
//   interfaces = eth0 eth1      (required; blanks or commas between names)
//   mode = auto                 (auto | native | generic)
//   ports = 25,465,587          (optional: without it the saved ports stay)
//   pin_dir = /sys/fs/bpf/smtpfence
//   state_dir = /var/lib/smtpfence
//   max_rules = 65536           (per family, when the maps are first created)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/defaults.h"
#include "text/ports.h"

namespace smtpfence {

struct BootConfig {
    std::vector<std::string> interfaces;
    std::string mode = "auto";
    std::optional<PortSet> ports;
    std::string pin_dir = kDefaultPinDir;
    std::string state_dir = kDefaultStateDir;
    uint32_t max_rules = kDefaultMaxRules;
};

// Parses a whole config; `source` names it in errors ("FILE:LINE: ...").
// Throws UsageError on an unknown key, a bad value or a missing interfaces line.
BootConfig parse_boot_config(std::string_view text, const std::string& source);

}  // namespace smtpfence
