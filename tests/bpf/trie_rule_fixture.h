// The TrieRuleTest fixture of the BPF tests: rules written straight into the
// tries, so that each test states every field the data path reads, and the
// per-rule counters, the `sources` LRU and the event ring buffer read from
// their pins. Used by the rules tests (expiry, dry run) and the accounting
// tests (sources, events).
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/map.h"
#include "bpf/pin_dir.h"
#include "bpf_test_support.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"

namespace smtpfence::bpftest {

inline constexpr uint64_t kHour = 3600ull * 1000000000ull;

struct RuleFields {
    Action action = Action::Block;
    uint8_t flags = 0;
    uint64_t expires_ns = 0;
    uint64_t interval_ns = 0;  // limit
    uint32_t burst = 1;        // limit
};

class TrieRuleTest : public PinnedFenceTest {
protected:
    void SetUp() override {
        PinnedFenceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        auto map = [&](const char* name) { return MapRef(open_pinned(pin_dir() + "/" + name), name); };
        rules_v4_ = map(FENCE_MAP_RULES_V4);
        rules_v6_ = map(FENCE_MAP_RULES_V6);
        counters_ = map(FENCE_MAP_RULE_COUNTERS);
        sources_ = map(FENCE_MAP_SOURCES);
        events_ = map(FENCE_MAP_EVENTS);
    }

    // Writes a rule as the data path sees it; returns its rule id (= slot + 1).
    uint32_t put(const std::string& text, const RuleFields& f) {
        Cidr cidr = parse_cidr(text).cidr;
        rule_value v{};
        v.slot = next_slot_++;
        v.rule_id = v.slot + 1;
        v.action = static_cast<uint8_t>(f.action);
        v.prefixlen = cidr.prefixlen;
        v.key_prefixlen = cidr.family == Family::V4 ? 32 : 64;
        v.flags = f.flags;
        v.expires_ns = f.expires_ns;
        if (f.action == Action::Limit) {
            v.interval_ns = f.interval_ns;
            v.tolerance_ns = f.interval_ns * (f.burst - 1);
        }
        std::vector<rule_counters> zeros(possible_cpus());
        counters_.update(&v.slot, zeros.data());
        if (cidr.family == Family::V4) {
            rule_key_v4 key{cidr.prefixlen, {}};
            std::memcpy(key.addr, cidr.addr.data(), 4);
            rules_v4_.update(&key, &v);
        } else {
            rule_key_v6 key{cidr.prefixlen, {}};
            std::memcpy(key.addr, cidr.addr.data(), 16);
            rules_v6_.update(&key, &v);
        }
        return v.rule_id;
    }

    rule_counters counts(uint32_t rule_id) const {
        uint32_t slot = rule_id - 1;
        std::vector<rule_counters> per_cpu(possible_cpus());
        rule_counters sum{};
        if (!counters_.lookup(&slot, per_cpu.data())) return sum;
        for (const auto& c : per_cpu) {
            sum.matched += c.matched;
            sum.dropped += c.dropped;
            sum.rate_dropped += c.rate_dropped;
            sum.conns_dropped += c.conns_dropped;
            sum.would_drop += c.would_drop;
            sum.attempts += c.attempts;
            sum.dropped_attempts += c.dropped_attempts;
            sum.would_drop_attempts += c.would_drop_attempts;
        }
        return sum;
    }

    // "P" or "D" per SYN from `src`.
    std::string syns(const std::string& src, int n, uint16_t port = 25) {
        std::string out;
        for (int i = 0; i < n; ++i) out += run_raw(syn_from(src, port)) == XDP_DROP ? 'D' : 'P';
        return out;
    }

    bool source(const std::string& src, uint16_t port, source_stats& out) const {
        Cidr host = parse_cidr(src).cidr;
        source_key key{};
        key.family = host.family == Family::V4 ? 4 : 6;
        key.port = port;
        std::memcpy(key.addr, host.addr.data(), host.family == Family::V4 ? 4 : 16);
        return sources_.lookup(&key, &out);
    }

    // Every event pending in the ring buffer, consumed.
    std::vector<fence_event> drain_events() const {
        std::vector<fence_event> got;
        auto on_event = [](void* ctx, void* data, size_t size) -> int {
            auto* out = static_cast<std::vector<fence_event>*>(ctx);
            fence_event ev{};
            std::memcpy(&ev, data, std::min(size, sizeof ev));
            out->push_back(ev);
            return 0;
        };
        ring_buffer* rb = ring_buffer__new(events_.fd(), on_event, &got, nullptr);
        EXPECT_NE(rb, nullptr);
        if (!rb) return got;
        ring_buffer__consume(rb);
        ring_buffer__free(rb);
        return got;
    }

    MapRef rules_v4_, rules_v6_, counters_, sources_, events_;
    uint32_t next_slot_ = 0;
};

}  // namespace smtpfence::bpftest
