// The etcd client against a real etcd started by test_etcd_client.sh (TLS,
// client-certificate auth). Skipped when the script's variables are absent.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "base/errors.h"
#include "etcd/client.h"
#include "strict.h"

namespace smtpfence::etcd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

ClientConfig base_config() {
    ClientConfig c;
    c.endpoints = {env("SMTPFENCE_ETCD_ENDPOINT")};
    c.ca_file = env("SMTPFENCE_ETCD_CA");
    c.cert_file = env("SMTPFENCE_ETCD_CERT");
    c.key_file = env("SMTPFENCE_ETCD_KEY");
    c.user = env("SMTPFENCE_ETCD_USER");
    c.password_file = env("SMTPFENCE_ETCD_PASSWORD_FILE");
    return c;
}

// A prefix no other test (or earlier run) uses.
std::string test_prefix() {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    return "/sft/" + std::string(info->name()) + "/" + std::to_string(Clock::now().time_since_epoch().count()) + "/";
}

class Etcd : public testing::Test {
protected:
    void SetUp() override {
        if (env("SMTPFENCE_ETCD_ENDPOINT").empty()) SMTPFENCE_SKIP("run through tests/fleet/test_etcd_client.sh");
        prefix = test_prefix();
    }
    std::string prefix;
};

struct Watched {
    std::vector<WatchResponse> responses;
    std::vector<WatchEvent> events;
    WatchOutcome outcome;
};

// Watches until `want` events arrived, or `timeout`; the watchdog only
// bounds a failing test.
Watched watch_for(Client& client, const std::string& prefix, int64_t start, size_t want,
                  std::chrono::milliseconds timeout = 5000ms) {
    Watched w;
    std::atomic<bool> stop{false};
    std::thread watchdog([&] {
        auto deadline = Clock::now() + timeout;
        while (!stop && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
        stop = true;
    });
    w.outcome = client.watch(
        prefix, start,
        [&](const WatchResponse& r) {
            w.responses.push_back(r);
            for (const auto& e : r.events) w.events.push_back(e);
            return w.events.size() < want;
        },
        stop);
    stop = true;
    watchdog.join();
    return w;
}

using EtcdClient = Etcd;
using EtcdAuth = Etcd;
using EtcdKill = Etcd;

TEST_F(EtcdClient, PutGetAndRevisions) {
    Client c(base_config());
    int64_t r1 = c.put(prefix + "a", "one");
    auto kv = c.get(prefix + "a");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->value, "one");
    EXPECT_EQ(kv->create_revision, r1);
    EXPECT_EQ(kv->mod_revision, r1);
    EXPECT_EQ(kv->version, 1);
    int64_t r2 = c.put(prefix + "a", std::string("bin\0\xff\n", 6));
    EXPECT_EQ(r2, r1 + 1);
    kv = c.get(prefix + "a");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->value, std::string("bin\0\xff\n", 6));
    EXPECT_EQ(kv->create_revision, r1);
    EXPECT_EQ(kv->mod_revision, r2);
    EXPECT_EQ(kv->version, 2);
    EXPECT_FALSE(c.get(prefix + "missing"));
    EXPECT_EQ(c.endpoint(), env("SMTPFENCE_ETCD_ENDPOINT"));
}

TEST_F(EtcdClient, RangePaginatesAtOneRevision) {
    ClientConfig config = base_config();
    config.page_size = 7;
    Client c(config);
    int64_t at_ten = 0, last = 0;
    for (int i = 0; i < 25; ++i) {
        char key[8];
        std::snprintf(key, sizeof key, "k%02d", i);
        last = c.put(prefix + key, "v" + std::to_string(i));
        if (i == 9) at_ten = last;
    }
    c.put(prefix.substr(0, prefix.size() - 1) + "0", "outside the prefix");  // the byte after '/'
    RangeResult all = c.range_prefix(prefix);
    ASSERT_EQ(all.kvs.size(), 25u);
    EXPECT_GE(all.revision, last);
    for (int i = 0; i < 25; ++i) {
        EXPECT_EQ(all.kvs[i].value, "v" + std::to_string(i));
        if (i > 0) {
            EXPECT_LT(all.kvs[i - 1].key, all.kvs[i].key);
        }
    }
    // Every page at the same past revision: 10 keys, over two pages.
    RangeResult past = c.range_prefix(prefix, at_ten);
    EXPECT_EQ(past.revision, at_ten);
    ASSERT_EQ(past.kvs.size(), 10u);
    EXPECT_EQ(past.kvs.back().key, prefix + "k09");
    EXPECT_TRUE(c.range_prefix(prefix + "nothing/").kvs.empty());
}

TEST_F(EtcdClient, PutIfUnchanged) {
    Client c(base_config());
    std::string key = prefix + "rule";
    auto created = c.put_if_unchanged(key, "v1", 0);
    ASSERT_TRUE(created);
    EXPECT_FALSE(c.put_if_unchanged(key, "again", 0)) << "0 means: only if absent";
    auto updated = c.put_if_unchanged(key, "v2", *created);
    ASSERT_TRUE(updated);
    EXPECT_GT(*updated, *created);
    EXPECT_FALSE(c.put_if_unchanged(key, "stale", *created));
    EXPECT_EQ(c.get(key)->value, "v2");
    EXPECT_EQ(c.get(key)->mod_revision, *updated);
}

TEST_F(EtcdClient, Erase) {
    Client c(base_config());
    int64_t put = c.put(prefix + "gone", "x");
    int64_t erased = c.erase(prefix + "gone");
    EXPECT_EQ(erased, put + 1);
    EXPECT_FALSE(c.get(prefix + "gone"));
    EXPECT_GE(c.erase(prefix + "never"), erased) << "deleting an absent key is no error";
}

TEST_F(EtcdClient, WatchDeliversPutsAndDeletesInOrderWithPrevKv) {
    Client writer(base_config()), watcher(base_config());
    int64_t start = writer.put(prefix + "x", "0") + 1;
    std::thread writes([&] {
        writer.put(prefix + "x", "1");
        writer.put(prefix + "y", "2");
        writer.erase(prefix + "x");
        writer.put(prefix.substr(0, prefix.size() - 1) + "0", "outside");
    });
    Watched w = watch_for(watcher, prefix, start, 3);
    writes.join();
    EXPECT_EQ(w.outcome.end, WatchEnd::Stopped) << w.outcome.reason;
    ASSERT_EQ(w.events.size(), 3u);
    EXPECT_EQ(w.events[0].type, WatchEvent::Type::Put);
    EXPECT_EQ(w.events[0].kv.value, "1");
    ASSERT_TRUE(w.events[0].prev_kv);
    EXPECT_EQ(w.events[0].prev_kv->value, "0");
    EXPECT_EQ(w.events[1].kv.key, prefix + "y");
    EXPECT_FALSE(w.events[1].prev_kv);
    EXPECT_EQ(w.events[2].type, WatchEvent::Type::Delete);
    EXPECT_EQ(w.events[2].kv.key, prefix + "x");
    ASSERT_TRUE(w.events[2].prev_kv);
    EXPECT_EQ(w.events[2].prev_kv->value, "1");
    EXPECT_EQ(w.events[0].kv.mod_revision, start);
    EXPECT_EQ(w.events[2].kv.mod_revision, start + 2);
}

TEST_F(EtcdClient, WatchFromAPastRevisionReplaysHistory) {
    Client c(base_config());
    int64_t first = c.put(prefix + "a", "1");
    c.put(prefix + "b", "2");
    c.erase(prefix + "a");
    Watched w = watch_for(c, prefix, first, 3);
    EXPECT_EQ(w.outcome.end, WatchEnd::Stopped) << w.outcome.reason;
    ASSERT_EQ(w.events.size(), 3u);
    EXPECT_EQ(w.events[0].kv.mod_revision, first);
    EXPECT_EQ(w.events[1].kv.value, "2");
    EXPECT_EQ(w.events[2].type, WatchEvent::Type::Delete);
}

TEST_F(EtcdClient, WatchSendsProgressNotifications) {
    // The script runs etcd with a 1 s progress interval.
    Client c(base_config());
    int64_t now = c.put(prefix + "p", "1");
    std::atomic<bool> stop{false};
    std::thread watchdog([&] {
        for (int i = 0; i < 500 && !stop; ++i) std::this_thread::sleep_for(10ms);
        stop = true;
    });
    WatchResponse progress;
    WatchOutcome out = c.watch(
        prefix, now + 1,
        [&](const WatchResponse& r) {
            progress = r;
            return !r.events.empty();
        },
        stop);
    stop = true;
    watchdog.join();
    EXPECT_EQ(out.end, WatchEnd::Stopped);
    EXPECT_TRUE(progress.events.empty());
    EXPECT_GE(progress.revision, now);
}

TEST_F(EtcdClient, AnExceptionFromTheCallbackEndsTheWatch) {
    Client c(base_config());
    int64_t r = c.put(prefix + "k", "v");
    std::atomic<bool> stop{false};
    EXPECT_THROW(c.watch(
                     prefix, r, [](const WatchResponse&) -> bool { throw std::runtime_error("apply failed"); }, stop),
                 std::runtime_error);
    EXPECT_EQ(c.get(prefix + "k")->value, "v") << "the client is still usable";
}

TEST_F(EtcdClient, CompactionCancelsWatchAndRange) {
    Client c(base_config());
    int64_t first = c.put(prefix + "a", "1");
    c.put(prefix + "a", "2");
    int64_t last = c.put(prefix + "a", "3");
    c.compact(last);
    Watched w = watch_for(c, prefix, first, 1);
    EXPECT_EQ(w.outcome.end, WatchEnd::Compacted) << w.outcome.reason;
    EXPECT_EQ(w.outcome.compact_revision, last);
    EXPECT_TRUE(w.events.empty());
    try {
        c.range_prefix(prefix, first);
        FAIL() << "a range at a compacted revision must fail";
    } catch (const StoreError& e) {
        EXPECT_EQ(e.grpc_code, kCodeOutOfRange) << e.what();
        EXPECT_NE(std::string(e.what()).find("compacted"), std::string::npos) << e.what();
    }
    EXPECT_EQ(c.range_prefix(prefix, last).kvs.size(), 1u);
}

TEST_F(EtcdClient, StopEndsAWatchWithin300ms) {
    Client c(base_config());
    std::atomic<bool> stop{false};
    Clock::time_point stopped_at;
    std::thread stopper([&] {
        std::this_thread::sleep_for(700ms);  // the watch is idle, past connection setup
        stopped_at = Clock::now();
        stop = true;
    });
    WatchOutcome out = c.watch(
        prefix, 0, [](const WatchResponse&) { return true; }, stop);
    auto returned = Clock::now();
    stopper.join();
    EXPECT_EQ(out.end, WatchEnd::Stopped);
    EXPECT_LT(returned - stopped_at, 300ms);
}

TEST_F(EtcdClient, SkipsAnEndpointThatIsDown) {
    ClientConfig config = base_config();
    config.endpoints = {env("SMTPFENCE_ETCD_DOWN_ENDPOINT"), env("SMTPFENCE_ETCD_ENDPOINT")};
    Client c(config);
    int64_t r = c.put(prefix + "k", "v");
    EXPECT_GT(r, 0);
    EXPECT_EQ(c.endpoint(), env("SMTPFENCE_ETCD_ENDPOINT"));
    EXPECT_EQ(c.stats().endpoint_switches, 1);

    Client w(config);  // the watch rotates too
    Watched got = watch_for(w, prefix, r, 1);
    EXPECT_EQ(got.outcome.end, WatchEnd::Stopped) << got.outcome.reason;
    EXPECT_EQ(got.events.size(), 1u);
}

TEST_F(EtcdClient, AllEndpointsDownIsAStoreError) {
    ClientConfig config = base_config();
    config.endpoints = {env("SMTPFENCE_ETCD_DOWN_ENDPOINT")};
    config.request_timeout = 500ms;
    Client c(config);
    try {
        c.put(prefix + "k", "v");
        FAIL();
    } catch (const StoreError& e) {
        EXPECT_EQ(e.grpc_code, 0);
        EXPECT_NE(std::string(e.what()).find(config.endpoints[0]), std::string::npos) << e.what();
    }
}

TEST_F(EtcdClient, RefusesPlainHttpWithoutInsecure) {
    ClientConfig config = base_config();
    config.endpoints = {"http://127.0.0.1:22479"};
    EXPECT_THROW(Client{config}, UsageError);
}

TEST_F(EtcdClient, ClientWithoutCertificateGetsAClearError) {
    ClientConfig config = base_config();
    config.cert_file.clear();
    config.key_file.clear();
    Client c(config);
    try {
        c.put(prefix + "k", "v");
        FAIL() << "etcd runs with --client-cert-auth";
    } catch (const StoreError& e) {
        EXPECT_EQ(e.grpc_code, 0);
        EXPECT_NE(std::string(e.what()).find("cert_file"), std::string::npos) << e.what();
        std::cout << "  the message: " << e.what() << "\n";
    }
}

TEST_F(EtcdClient, LeaseKeysVanishOnRevoke) {
    Client c(base_config());
    int64_t lease = c.lease_grant(30);
    ASSERT_NE(lease, 0);
    c.put(prefix + "alive", "yes", lease);
    EXPECT_EQ(c.get(prefix + "alive")->lease, lease);
    int64_t ttl = c.lease_keepalive(lease);
    EXPECT_GT(ttl, 0);
    EXPECT_LE(ttl, 30);
    c.lease_revoke(lease);
    EXPECT_FALSE(c.get(prefix + "alive"));
    try {
        c.lease_keepalive(lease);
        FAIL() << "a revoked lease cannot be renewed";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("expired or was revoked"), std::string::npos) << e.what();
    }
}

TEST_F(EtcdAuth, LogsInAndRenewsAnExpiredToken) {
    if (env("SMTPFENCE_ETCD_USER").empty()) SMTPFENCE_SKIP("needs auth enabled");
    Client c(base_config());
    int64_t r = c.put(prefix + "k", "v");
    EXPECT_EQ(c.stats().authentications, 1);
    EXPECT_EQ(c.get(prefix + "k")->value, "v");
    // Time is the subject: etcd runs with --auth-token-ttl 5; idle past it.
    std::this_thread::sleep_for(6500ms);
    EXPECT_EQ(c.get(prefix + "k")->value, "v");
    EXPECT_EQ(c.stats().authentications, 2) << "the expired token was replaced once";
    // A watch logs in too (and its token is the renewed one).
    Watched w = watch_for(c, prefix, r, 1);
    EXPECT_EQ(w.outcome.end, WatchEnd::Stopped) << w.outcome.reason;
    EXPECT_EQ(w.events.size(), 1u);
}

TEST_F(EtcdAuth, WatchRenewsAnExpiredToken) {
    if (env("SMTPFENCE_ETCD_USER").empty()) SMTPFENCE_SKIP("needs auth enabled");
    Client c(base_config());
    int64_t r = c.put(prefix + "k", "v");
    std::this_thread::sleep_for(6500ms);  // the token expires
    Watched w = watch_for(c, prefix, r, 1);
    EXPECT_EQ(w.outcome.end, WatchEnd::Stopped) << w.outcome.reason;
    EXPECT_EQ(w.events.size(), 1u);
    EXPECT_EQ(c.stats().authentications, 2);
}

TEST_F(EtcdAuth, WithoutPasswordEtcdRefuses) {
    if (env("SMTPFENCE_ETCD_USER").empty()) SMTPFENCE_SKIP("needs auth enabled");
    ClientConfig config = base_config();
    config.user.clear();
    config.password_file.clear();
    Client c(config);
    try {
        c.put(prefix + "k", "v");
        FAIL() << "auth is enabled";
    } catch (const StoreError& e) {
        EXPECT_NE(e.grpc_code, 0) << e.what();
        std::cout << "  the message: " << e.what() << "\n";
    }
}

TEST_F(EtcdAuth, CertificateWithACommonNameIsRefusedWithTheFix) {
    if (env("SMTPFENCE_ETCD_USER").empty()) SMTPFENCE_SKIP("needs auth enabled");
    ClientConfig config = base_config();
    config.cert_file = env("SMTPFENCE_ETCD_CN_CERT");
    config.key_file = env("SMTPFENCE_ETCD_CN_KEY");
    Client c(config);
    try {
        c.put(prefix + "k", "v");
        FAIL() << "etcd refuses a CN over the gateway once auth is on";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("without a CN"), std::string::npos) << e.what();
        std::cout << "  the message: " << e.what() << "\n";
    }
}

TEST_F(EtcdKill, KillingEtcdBreaksTheWatch) {
    pid_t pid = static_cast<pid_t>(std::atoll(env("SMTPFENCE_ETCD_PID").c_str()));
    if (pid <= 0) SMTPFENCE_SKIP("needs SMTPFENCE_ETCD_PID");
    Client writer(base_config()), watcher(base_config());
    int64_t start = writer.put(prefix + "k", "0") + 1;
    std::atomic<bool> stop{false}, seen{false};
    std::thread killer([&] {
        writer.put(prefix + "k", "1");
        auto deadline = Clock::now() + 5s;
        while (!seen && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
        ::kill(pid, SIGKILL);
        for (int i = 0; i < 500 && !stop; ++i) std::this_thread::sleep_for(10ms);
        stop = true;
    });
    WatchOutcome out = watcher.watch(
        prefix, start,
        [&](const WatchResponse& r) {
            if (!r.events.empty()) seen = true;
            return true;
        },
        stop);
    bool stopped_by_watchdog = stop.exchange(true);
    killer.join();
    EXPECT_TRUE(seen);
    EXPECT_FALSE(stopped_by_watchdog) << "the watch outlived etcd";
    EXPECT_EQ(out.end, WatchEnd::Broken);
    EXPECT_NE(out.reason.find("127.0.0.1"), std::string::npos) << out.reason;
    std::cout << "  the reason: " << out.reason << "\n";
}

}  // namespace
}  // namespace smtpfence::etcd
