// `smtpfence agent`: keeps this host's fleet rules equal to the store's.
//
// The loop (see README "The fleet"): list the rules under
// /smtpfence/v1/policy/ at one revision, apply those that target this host,
// then watch from the next revision and apply every response as a unit.
// Whenever the watch ends (a member went away, quorum was lost, the start
// revision was compacted), it lists again and applies the difference:
// never resuming at a compacted revision (etcd bug #18089), and never
// clearing a rule because the store is unreachable. The pinned maps keep
// enforcing what was last applied, deadlines included, and the state file
// restores it at boot without the store.
//
// A second thread reports to the store: hosts/HOST/info on a lease (the
// host is alive while it lasts), hosts/HOST/applied (the revision in force,
// written with every change) and hosts/HOST/status (rules and counters).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "etcd/config.h"
#include "fence/agent_state.h"

namespace smtpfence {

struct AgentSettings {
    std::string host;
    std::vector<std::string> roles;
    std::vector<std::string> interfaces;
    std::string pin_dir, state_dir;
    bool to_syslog = true;
    etcd::ClientConfig store;
    std::chrono::milliseconds report_interval{10'000};  // hosts/HOST/status
    int64_t lease_ttl_s = 15;                           // hosts/HOST/info lives this long without the agent
};

// Runs until `stop` is true. Throws only on a bad setup (UsageError) or when
// the fence cannot be opened; store failures are retried with backoff.
void run_fleet_agent(const AgentSettings& settings, const std::atomic<bool>& stop, std::ostream& log);

}  // namespace smtpfence
