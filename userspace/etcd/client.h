// A small etcd v3 client over the JSON gateway (/v3/*) with libcurl: the
// reads, writes, leases and the prefix watch a config-distribution agent
// needs, with endpoint rotation, mTLS and token auth. It knows nothing about
// what the keys mean.
//
// Thread safety: none inside. A Client is used by one thread at a time; run
// the watch and the writes on two Clients (one per thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "etcd/config.h"
#include "etcd/wire.h"

namespace smtpfence::etcd {

enum class WatchEnd {
    Stopped,    // `stop` became true, or on_response returned false
    Compacted,  // the start revision was compacted: re-list, never resume at compact_revision (etcd #18089)
    Broken,     // transport error, an error line in the stream ("etcdserver: no leader"), or the stream ended
};

struct WatchOutcome {
    WatchEnd end = WatchEnd::Broken;
    int64_t compact_revision = 0;  // Compacted: the oldest revision still available
    std::string reason;            // Broken: what happened, on which endpoint
};

// Counters for metrics and tests.
struct ClientStats {
    int64_t authentications = 0;  // successful /v3/auth/authenticate calls
    int64_t endpoint_switches = 0;
};

class Client {
public:
    // Throws UsageError (see validate_config) on a bad config; connects lazily.
    explicit Client(ClientConfig config);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Every key under `prefix`, linearizable, read at one revision: the first
    // page's (or `revision` when given); the following pages are pinned to it.
    // A compacted `revision` throws StoreError with grpc_code 11.
    RangeResult range_prefix(const std::string& prefix, int64_t revision = 0);
    std::optional<KeyValue> get(const std::string& key);

    // The revision of the write.
    int64_t put(const std::string& key, const std::string& value, int64_t lease = 0);
    int64_t erase(const std::string& key);

    // A put applied only if the key's mod_revision is still `mod_revision`
    // (0: only if the key is absent). The write's revision, or nullopt when
    // the key changed meanwhile.
    std::optional<int64_t> put_if_unchanged(const std::string& key, const std::string& value, int64_t mod_revision);

    int64_t lease_grant(int64_t ttl_s);   // the lease ID
    int64_t lease_keepalive(int64_t id);  // the TTL granted; StoreError (code 5) if the lease expired
    void lease_revoke(int64_t id);        // its keys are deleted
    void compact(int64_t revision);       // waits until the compaction is physically done

    // Watches every key under `prefix` from `start_revision` (0: from now)
    // with prev_kv and progress notifications, and calls on_response for each
    // response, in order. Blocks until the watch ends (see WatchEnd); `stop`
    // is checked every 100 ms. The watch always requires a leader, so a member
    // cut from its quorum ends it instead of sending progress notifications.
    // Resume after Broken from the last revision seen + 1, where a response's
    // revision counts only when it has no events (a progress notification);
    // with events, count the last event's mod_revision. An exception from
    // on_response ends the watch and propagates.
    WatchOutcome watch(const std::string& prefix, int64_t start_revision,
                       const std::function<bool(const WatchResponse&)>& on_response, const std::atomic<bool>& stop);

    const std::string& endpoint() const;  // the endpoint in use
    const ClientStats& stats() const { return stats_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    ClientStats stats_;
};

}  // namespace smtpfence::etcd
