// What the agents report to the store, read back for `fleet status` and for
// the fleet commands that wait until every targeted host applied a change.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "etcd/client.h"
#include "text/config.h"

namespace smtpfence {

// The client settings of a config's etcd_* keys. `insecure` allows http://.
etcd::ClientConfig store_config(const FleetSettings& fleet, bool insecure);

// This host's name in the fleet: the config's `host`, else the hostname.
std::string fleet_host_name(const FleetSettings& fleet);

struct HostReport {
    std::string host;
    std::vector<std::string> roles;
    bool alive = false;            // its lease-bound info key exists
    int64_t applied_revision = 0;  // hosts/HOST/applied
    int64_t applied_at_ms = 0;     // when, on the host's clock
    bool has_status = false;       // hosts/HOST/status was read
    uint64_t status_at_unix = 0;   // when it reported last
    bool store_connected = false;  // the agent's own view of the store
    std::string last_error;
    uint64_t fleet_rules = 0, local_rules = 0, syn_dropped = 0, attempts_dropped = 0;
    std::vector<std::string> skipped, shadowed, failed;
    // What each fleet rule in force there counted, by "SCOPE~CIDR".
    struct RuleCounts {
        uint64_t attempts = 0, dropped_attempts = 0;
    };
    std::map<std::string, RuleCounts> rule_counts;
};

// Every host that ever reported (alive or not), by name.
std::vector<HostReport> read_host_reports(etcd::Client& client);

}  // namespace smtpfence
