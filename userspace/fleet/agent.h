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

// What the agent last knew, for `status` and `fleet status` on this host:
// STATE_DIR/fleet-agent.json, rewritten atomically on every change.
struct AgentState {
    std::string host;
    std::vector<std::string> roles;
    bool connected = false;
    uint64_t since_unix = 0;  // connected or not since then
    std::string endpoint;
    std::string last_error;
    int64_t revision = 0;  // the store revision whose rules are in force
    uint64_t applied_unix = 0;
    size_t fleet_rules = 0;
    std::vector<std::string> skipped;   // "KEY: why" (bad values in the store)
    std::vector<std::string> shadowed;  // prefixes a local rule holds
    std::vector<std::string> failed;    // fleet rules this host could not apply
};

std::string agent_state_path(const std::string& state_dir);
std::optional<AgentState> read_agent_state(const std::string& state_dir);

// Runs until `stop` is true. Throws only on a bad setup (UsageError) or when
// the fence cannot be opened; store failures are retried with backoff.
void run_fleet_agent(const AgentSettings& settings, const std::atomic<bool>& stop, std::ostream& log);

}  // namespace smtpfence
