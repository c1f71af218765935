#include "fleet/agent.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/errors.h"
#include "etcd/client.h"
#include "fence/rule_store.h"
#include "fence/session.h"
#include "fence/state_file.h"
#include "fleet/policy.h"
#include "fleet/reconcile.h"
#include "text/cidr.h"
#include "text/durations.h"

namespace smtpfence {

namespace {

using namespace std::chrono_literals;

std::string host_key(const std::string& host, const char* leaf) {
    return std::string(kFleetHostsPrefix) + host + "/" + leaf;
}

// Sleeps `d`, or less when `stop` becomes true; true when it did.
bool sleep_unless(const std::atomic<bool>& stop, std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
        if (stop) return true;
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(50ms, d));
    }
    return stop;
}

// Retries after a store failure wait 100 ms, doubling to 2 s, each with up
// to half again of jitter, so that a fleet of agents does not return to a
// recovering cluster in step. 2 s, not more: once etcd is back, a host
// should apply the next change within the fleet commands' default wait.
class Backoff {
public:
    std::chrono::milliseconds next() {
        auto d = current_;
        current_ = std::min(current_ * 2, std::chrono::milliseconds(2000));
        std::uniform_int_distribution<int64_t> jitter(0, d.count() / 2);
        return d + std::chrono::milliseconds(jitter(rng_));
    }
    void reset() { current_ = 100ms; }

private:
    std::chrono::milliseconds current_{100};
    std::mt19937_64 rng_{std::random_device{}()};
};

class Agent {
public:
    Agent(const AgentSettings& settings, const std::atomic<bool>& stop, std::ostream& log)
        : s_(settings), stop_(stop), log_(log), store_(settings.store), writer_(settings.store) {
        state_.host = s_.host;
        state_.roles = s_.roles;
        if (auto saved = read_agent_state(s_.state_dir)) state_.revision = saved->revision;
        state_.since_unix = unix_now();
    }

    void run() {
        std::thread reporter([this] { report_loop(); });
        Backoff backoff;
        while (!stop_) {
            try {
                const int64_t revision = list_and_apply();
                set_connected(true, "");
                backoff.reset();
                watch_from(revision + 1);
            } catch (const etcd::StoreError& e) {
                set_connected(false, e.what());
                log_ << "fleet store: " << e.what() << "; the rules in force stay\n";
            }
            if (!stop_) sleep_unless(stop_, backoff.next());
        }
        end_watch_ = true;
        reporter.join();
    }

private:
    // Every rule of the store at one revision: the set the agent applies.
    int64_t list_and_apply() {
        etcd::RangeResult listed = store_.range_prefix(std::string(kFleetRulesPrefix));
        rules_.clear();
        skipped_.clear();
        for (const auto& kv : listed.kvs) take_put(kv);
        apply(listed.revision);
        return listed.revision;
    }

    void watch_from(int64_t start) {
        end_watch_ = false;
        auto outcome = store_.watch(
            std::string(kFleetPolicyPrefix), start,
            [this](const etcd::WatchResponse& response) {
                bool rules_changed = false;
                for (const auto& event : response.events) {
                    const std::string& key = event.kv.key;
                    if (key.rfind(kFleetEchoPrefix, 0) == 0) {
                        last_seen_revision_ = std::max<int64_t>(last_seen_revision_, event.kv.mod_revision);
                        continue;
                    }
                    if (key == kFleetChangedKey) {
                        rules_changed = true;  // applied and reported at this revision
                        continue;
                    }
                    if (key.rfind(kFleetRulesPrefix, 0) != 0) continue;
                    rules_changed = true;
                    if (event.type == etcd::WatchEvent::Type::Delete) {
                        rules_.erase(key);
                        skipped_.erase(key);
                    } else {
                        take_put(event.kv);
                    }
                }
                last_seen_revision_ = std::max<int64_t>(last_seen_revision_, response.revision);
                if (rules_changed) apply(response.revision);
                return true;
            },
            end_watch_);
        switch (outcome.end) {
        case etcd::WatchEnd::Stopped:
            if (!stop_) log_ << "fleet store: the watch went quiet (no echo of this agent's probe); listing again\n";
            break;
        case etcd::WatchEnd::Compacted:
            // Never resume at the compact revision (etcd bug #18089 drops the
            // delete there): the next round lists everything again.
            log_ << "fleet store: the watch's revision " << start << " was compacted (now " << outcome.compact_revision
                 << "); listing again\n";
            break;
        case etcd::WatchEnd::Broken:
            set_connected(false, outcome.reason);
            log_ << "fleet store: the watch ended: " << outcome.reason << "; the rules in force stay\n";
            break;
        }
    }

    // A stored rule, checked like typed input; a bad one is reported and
    // left out (as if absent), and nothing else is disturbed.
    void take_put(const etcd::KeyValue& kv) {
        try {
            rules_[kv.key] = {parse_fleet_rule(kv.key, kv.value), kv.mod_revision};
            skipped_.erase(kv.key);
        } catch (const UsageError& e) {
            rules_.erase(kv.key);
            if (skipped_[kv.key] != e.what()) log_ << "fleet rule skipped: " << e.what() << '\n';
            skipped_[kv.key] = e.what();
        }
    }

    void apply(int64_t revision) {
        std::vector<StoredFleetRule> stored;
        for (const auto& [key, rule] : rules_) stored.push_back(rule);
        std::vector<RuleSpec> wanted = fleet_rules_for_host(stored, s_.host, s_.roles);
        ReconcileResult result;
        {
            FenceSession session(s_.pin_dir, s_.state_dir, s_.to_syslog, log_);
            result = reconcile_fleet_rules(session, wanted, log_);
            session.commit_if_changed();
        }
        {
            std::lock_guard lock(mutex_);
            state_.revision = revision;
            state_.applied_unix = unix_now();
            state_.fleet_rules = wanted.size() - result.shadowed.size() - result.failed.size() - result.expired;
            state_.skipped.clear();
            for (const auto& [key, why] : skipped_) state_.skipped.push_back(why);
            state_.shadowed = result.shadowed;
            state_.failed = result.failed;
            save_state_locked();
        }
        if (result.changed()) {
            log_ << "fleet revision " << revision << ": " << result.added << " added, " << result.updated
                 << " updated, " << result.removed << " removed, " << result.unchanged << " unchanged\n";
        }
        try {
            writer_.put(host_key(s_.host, "applied"),
                        nlohmann::ordered_json{{"revision", revision}, {"at_ms", unix_now_ms()}}.dump());
        } catch (const etcd::StoreError& e) {
            // The rules are in force; the report follows with the next change
            // or the next listing.
            log_ << "fleet store: could not report revision " << revision << ": " << e.what() << '\n';
        }
    }

    void set_connected(bool connected, const std::string& error) {
        std::lock_guard lock(mutex_);
        if (state_.connected != connected) state_.since_unix = unix_now();
        state_.connected = connected;
        state_.endpoint = store_.endpoint();
        if (!error.empty()) state_.last_error = error;
        save_state_locked();
    }

    void save_state_locked() {
        try {
            write_agent_state(s_.state_dir, state_);
        } catch (const std::exception& e) {
            log_ << "could not save the agent's state: " << e.what() << '\n';
        }
    }

    // The second thread: the host's lease-bound info key, the status report,
    // and the echo that proves the watch still delivers.
    void report_loop() {
        etcd::Client client(s_.store);
        int64_t lease = 0;
        auto next_report = std::chrono::steady_clock::now();
        int64_t echo_revision = 0;
        auto echo_written = std::chrono::steady_clock::now();
        while (!stop_) {
            try {
                if (!lease) {
                    lease = client.lease_grant(s_.lease_ttl_s);
                    client.put(host_key(s_.host, "info"), info_json(), lease);
                } else {
                    client.lease_keepalive(lease);
                }
                if (std::chrono::steady_clock::now() >= next_report) {
                    client.put(host_key(s_.host, "status"), status_json());
                    echo_revision = client.put(std::string(kFleetEchoPrefix) + s_.host, std::to_string(unix_now()),
                                               lease);
                    echo_written = std::chrono::steady_clock::now();
                    next_report = echo_written + s_.report_interval;
                }
            } catch (const etcd::StoreError& e) {
                if (e.grpc_code == 5) lease = 0;  // the lease expired while the store was away
            }
            // A watch that has not delivered this agent's own echo 3 s after
            // it was written is stale (a member cut off without the stream
            // noticing): end it, and the main loop lists again.
            if (echo_revision && last_seen_revision_ < echo_revision &&
                std::chrono::steady_clock::now() - echo_written > 3s) {
                end_watch_ = true;
                echo_revision = 0;
            }
            sleep_unless(stop_, std::chrono::milliseconds(std::min<int64_t>(1000 * s_.lease_ttl_s / 3, 1000)));
        }
        end_watch_ = true;
        try {
            if (lease) client.lease_revoke(lease);  // a clean stop: not alive any more, at once
        } catch (const etcd::StoreError&) {
        }
    }

    std::string info_json() const {
        return nlohmann::ordered_json{{"host", s_.host},
                                      {"roles", s_.roles},
                                      {"interfaces", s_.interfaces},
                                      {"version", SMTPFENCE_VERSION},
                                      {"started_unix", state_.since_unix}}
            .dump();
    }

    std::string status_json() {
        nlohmann::ordered_json j;
        {
            std::lock_guard lock(mutex_);
            j = agent_state_json(state_);
        }
        j.erase("host");
        j["at_unix"] = unix_now();
        try {
            Fence fence = Fence::open(s_.pin_dir);
            size_t fleet = 0, local = 0;
            uint64_t syn_dropped = 0, attempts_dropped = 0;
            nlohmann::ordered_json rule_counters = nlohmann::ordered_json::array();
            for (const auto& r : fence.rules()) {
                if (!is_fleet_origin(r.origin)) {
                    local++;
                    continue;
                }
                fleet++;
                // "fleet SCOPE, ...": which of the fleet's rules for this prefix is in force here.
                std::string scope = r.origin.substr(kFleetOriginTag.size());
                scope = scope.substr(0, scope.find(','));
                rule_counters.push_back({{"cidr", format_cidr(r.cidr)},
                                         {"scope", scope},
                                         {"attempts", r.counters.attempts},
                                         {"dropped_attempts", r.counters.dropped_attempts},
                                         {"matched", r.counters.matched},
                                         {"dropped", r.counters.dropped}});
            }
            j["rule_counters"] = rule_counters;
            fence_stats st = fence.counters();
            syn_dropped = st.dropped;
            attempts_dropped = st.dropped_attempts;
            j["rules"] = {{"fleet", fleet}, {"local", local}};
            j["syn_dropped"] = syn_dropped;
            j["attempts_dropped"] = attempts_dropped;
        } catch (const std::exception& e) {
            j["fence_error"] = e.what();
        }
        return j.dump();
    }

    const AgentSettings& s_;
    const std::atomic<bool>& stop_;
    std::ostream& log_;
    etcd::Client store_;   // list and watch (this thread)
    etcd::Client writer_;  // reports from this thread
    std::map<std::string, StoredFleetRule> rules_;
    std::map<std::string, std::string> skipped_;
    std::atomic<bool> end_watch_{false};
    std::atomic<int64_t> last_seen_revision_{0};
    std::mutex mutex_;
    AgentState state_;
};

}  // namespace

void run_fleet_agent(const AgentSettings& settings, const std::atomic<bool>& stop, std::ostream& log) {
    Agent(settings, stop, log).run();
}

}  // namespace smtpfence
