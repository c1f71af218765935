#include "fleet/hosts.h"

#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "fleet/policy.h"

namespace smtpfence {

etcd::ClientConfig store_config(const FleetSettings& fleet, bool insecure) {
    etcd::ClientConfig c;
    c.endpoints = fleet.etcd_endpoints;
    c.ca_file = fleet.etcd_ca;
    c.cert_file = fleet.etcd_cert;
    c.key_file = fleet.etcd_key;
    c.user = fleet.etcd_user;
    c.password_file = fleet.etcd_password_file;
    c.insecure = insecure;
    return c;
}

std::string fleet_host_name(const FleetSettings& fleet) {
    if (!fleet.host.empty()) return fleet.host;
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "localhost";
    std::string host = name;
    // The short name: a key part and an etcd role name, as `host = ` takes it.
    if (auto dot = host.find('.'); dot != std::string::npos) host.resize(dot);
    return host;
}

std::vector<HostReport> read_host_reports(etcd::Client& client) {
    std::map<std::string, HostReport> hosts;
    const std::string prefix(kFleetHostsPrefix);
    for (const auto& kv : client.range_prefix(prefix).kvs) {
        std::string rest = kv.key.substr(prefix.size());
        auto slash = rest.find('/');
        if (slash == std::string::npos) continue;
        std::string name = rest.substr(0, slash), leaf = rest.substr(slash + 1);
        HostReport& h = hosts[name];
        h.host = name;
        nlohmann::json j = nlohmann::json::parse(kv.value, nullptr, false);
        if (!j.is_object()) continue;
        if (leaf == "info") {
            h.alive = kv.lease != 0;
            h.roles = j.value("roles", std::vector<std::string>{});
        } else if (leaf == "applied") {
            h.applied_revision = j.value("revision", int64_t{0});
            h.applied_at_ms = j.value("at_ms", int64_t{0});
        } else if (leaf == "status") {
            h.has_status = true;
            h.status_at_unix = j.value("at_unix", uint64_t{0});
            h.store_connected = j.value("connected", false);
            h.last_error = j.value("last_error", "");
            if (h.roles.empty()) h.roles = j.value("roles", std::vector<std::string>{});
            if (auto rules = j.find("rules"); rules != j.end() && rules->is_object()) {
                h.fleet_rules = rules->value("fleet", uint64_t{0});
                h.local_rules = rules->value("local", uint64_t{0});
            }
            h.syn_dropped = j.value("syn_dropped", uint64_t{0});
            h.attempts_dropped = j.value("attempts_dropped", uint64_t{0});
            h.skipped = j.value("skipped", std::vector<std::string>{});
            h.shadowed = j.value("shadowed", std::vector<std::string>{});
            h.failed = j.value("failed", std::vector<std::string>{});
            if (auto counts = j.find("rule_counters"); counts != j.end() && counts->is_array()) {
                for (const auto& c : *counts) {
                    if (!c.is_object()) continue;
                    h.rule_counts[c.value("scope", "") + "~" + c.value("cidr", "")] = {
                        c.value("attempts", uint64_t{0}), c.value("dropped_attempts", uint64_t{0})};
                }
            }
        }
    }
    std::vector<HostReport> out;
    for (auto& [name, h] : hosts) out.push_back(std::move(h));
    return out;
}

}  // namespace smtpfence
