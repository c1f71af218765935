#include "fence/observe.h"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <tuple>
#include <unordered_map>

#include "base/errors.h"
#include "bpf/pin_dir.h"

namespace smtpfence {

namespace {

double seconds_between(uint64_t before_ns, uint64_t after_ns) {
    return after_ns > before_ns ? static_cast<double>(after_ns - before_ns) / 1e9 : 0.0;
}

// Identity of a (source, port) entry across two snapshots.
using EntryId = std::tuple<uint8_t, std::array<uint8_t, 16>, uint16_t>;

EntryId entry_id(const source_key& key) {
    std::array<uint8_t, 16> addr;
    std::memcpy(addr.data(), key.addr, addr.size());
    return {key.family, addr, key.port};
}

struct EntryIdHash {
    size_t operator()(const EntryId& id) const {
        const auto& [family, addr, port] = id;
        size_t h = family * 31u + port;
        for (uint8_t b : addr) h = h * 131u + b;
        return h;
    }
};

// A counter of `after` grown since `before` (if it was in the earlier sample).
uint64_t counted_since(const source_stats* before, const source_stats& after, __u64 source_stats::*member) {
    // A source the LRU forgot and met again starts from zero with a new
    // first_seen: everything it has now is new.
    if (!before || before->first_seen_ns != after.first_seen_ns || before->*member > after.*member) {
        return after.*member;
    }
    return after.*member - before->*member;
}

}  // namespace

Cidr masked_cidr(Family family, const uint8_t* addr, uint8_t prefixlen) {
    Cidr cidr;
    cidr.family = family;
    cidr.prefixlen = prefixlen;
    unsigned bits = prefixlen;
    for (size_t i = 0; i < cidr.addr.size(); ++i) {
        uint8_t keep = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff00 >> bits);
        cidr.addr[i] = addr[i] & keep;
        bits = bits >= 8 ? bits - 8 : 0;
    }
    return cidr;
}

double rate_per_second(uint64_t before, uint64_t after, double seconds) {
    if (seconds <= 0) return 0;
    uint64_t delta = after >= before ? after - before : after;
    return static_cast<double>(delta) / seconds;
}

// ------------------------------------------------------------------ stats

StatsSnapshot take_stats(const Fence& fence) {
    StatsSnapshot s;
    s.rules = fence.rules();
    s.global = fence.counters();
    s.taken_ns = monotonic_now_ns();
    return s;
}

StatsRates stats_rates(const StatsSnapshot& before, const StatsSnapshot& after) {
    StatsRates rates;
    rates.interval_s = seconds_between(before.taken_ns, after.taken_ns);
    for (size_t i = 0; i < std::size(kGlobalCounters); ++i) {
        auto member = kGlobalCounters[i].member;
        rates.global[i] = rate_per_second(before.global.*member, after.global.*member, rates.interval_s);
    }
    std::map<Cidr, const Rule*> earlier;
    for (const auto& r : before.rules) earlier[r.cidr] = &r;
    for (const auto& r : after.rules) {
        auto it = earlier.find(r.cidr);
        if (it == earlier.end()) {
            rates.rules.emplace_back();
            continue;
        }
        RuleRates rr;
        for (size_t i = 0; i < std::size(kRuleCounters); ++i) {
            auto member = kRuleCounters[i].member;
            rr.per_second[i] = rate_per_second(it->second->counters.*member, r.counters.*member, rates.interval_s);
        }
        rates.rules.push_back(rr);
    }
    return rates;
}

// ------------------------------------------------------------------ sources

SourceTable::SourceTable(const std::string& pin_dir)
    : map_(open_pinned(pin_dir + "/" FENCE_MAP_SOURCES), FENCE_MAP_SOURCES) {}

SourceSnapshot SourceTable::snapshot() const {
    // One batch read per 512 entries instead of two syscalls per
    // entry; and unlike get_next_key, a batch walk does not restart when the
    // LRU evicts the entry it stands on.
    SourceSnapshot snap;
    uint32_t chunk = 512;
    std::vector<source_key> keys(chunk);
    std::vector<source_stats> values(chunk);
    // For hash maps the batch position is a bucket index; a key-sized buffer holds it.
    source_key in_batch{}, out_batch{};
    bool first = true;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    for (;;) {
        __u32 count = chunk;
        int rc = bpf_map_lookup_batch(map_.fd(), first ? nullptr : &in_batch, &out_batch, keys.data(), values.data(),
                                      &count, &opts);
        int err = rc == 0 ? 0 : errno;
        if (err == ENOSPC) {
            // One hash bucket holds more entries than fit: take bigger bites.
            chunk *= 2;
            keys.resize(chunk);
            values.resize(chunk);
            continue;
        }
        if (err != 0 && err != ENOENT) throw RuntimeError(describe_errno("read map " + map_.name(), err));
        for (__u32 i = 0; i < count; ++i) snap.entries.push_back({keys[i], values[i]});
        if (err == ENOENT) break;
        in_batch = out_batch;
        first = false;
    }
    snap.taken_ns = monotonic_now_ns();
    return snap;
}

TopView compute_top(const SourceSnapshot& before, const SourceSnapshot& after, const std::vector<Rule>& rules,
                    const TopQuery& query, uint32_t capacity, const std::map<uint32_t, std::string>& list_names) {
    TopView view;
    view.interval_s = seconds_between(before.taken_ns, after.taken_ns);
    view.taken_ns = after.taken_ns;
    view.port = query.port;
    view.sources_tracked = after.entries.size();
    view.sources_capacity = capacity;

    std::unordered_map<EntryId, const source_stats*, EntryIdHash> earlier;
    for (const auto& e : before.entries) earlier[entry_id(e.key)] = &e.stats;
    std::unordered_map<uint32_t, const Rule*> rule_by_id;
    for (const auto& r : rules) rule_by_id[r.rule_id] = &r;

    // Rows keyed by source (and port when filtering by one).
    struct Accumulated {
        TopRow row;
        uint64_t new_attempts = 0;
        uint64_t new_syn_packets = 0;
        const source_stats* latest = nullptr;  // the entry with the latest attempt
    };
    std::map<std::pair<uint8_t, std::array<uint8_t, 16>>, Accumulated> by_source;
    for (const auto& e : after.entries) {
        if (query.port && e.key.port != *query.port) continue;
        EntryId id = entry_id(e.key);
        auto it = earlier.find(id);
        Accumulated& acc = by_source[{e.key.family, std::get<1>(id)}];
        TopRow& row = acc.row;
        row.family = static_cast<Family>(e.key.family);
        row.addr = std::get<1>(id);
        row.ports.push_back(e.key.port);
        row.attempts += e.stats.attempts;
        row.dropped_attempts += e.stats.dropped_attempts;
        row.syn_packets += e.stats.syn_packets;
        row.passed += e.stats.passed;
        row.blocked += e.stats.blocked;
        row.limited += e.stats.limited;
        row.would_drop += e.stats.would_drop;
        if (row.first_seen_ns == 0 || e.stats.first_seen_ns < row.first_seen_ns)
            row.first_seen_ns = e.stats.first_seen_ns;
        const source_stats* prior = it == earlier.end() ? nullptr : it->second;
        acc.new_attempts += counted_since(prior, e.stats, &source_stats::attempts);
        acc.new_syn_packets += counted_since(prior, e.stats, &source_stats::syn_packets);
        if (!acc.latest || e.stats.last_seen_ns > acc.latest->last_seen_ns) acc.latest = &e.stats;
    }

    for (auto& [source, acc] : by_source) {
        TopRow& row = acc.row;
        std::sort(row.ports.begin(), row.ports.end());
        row.attempts_per_s = view.interval_s > 0 ? static_cast<double>(acc.new_attempts) / view.interval_s : 0;
        row.syn_packets_per_s = view.interval_s > 0 ? static_cast<double>(acc.new_syn_packets) / view.interval_s : 0;
        const source_stats& last = *acc.latest;
        row.last_seen_ns = last.last_seen_ns;
        row.last_verdict = last.last_verdict;
        if (last.last_rule_id != 0) {
            RuleRef ref;
            ref.rule_id = last.last_rule_id;
            if (auto r = rule_by_id.find(last.last_rule_id); r != rule_by_id.end()) {
                ref.action = r->second->action;
                ref.cidr = r->second->cidr;
                ref.dry_run = r->second->dry_run;
            } else {
                // A list's entry, or a rule that is gone: what it was is still
                // known: the action, and its prefix is the source masked to
                // the prefix length.
                ref.action = static_cast<Action>(last.last_action);
                ref.cidr = masked_cidr(row.family, row.addr.data(), last.last_prefixlen);
                if (auto list = list_names.find(last.last_rule_id); list != list_names.end()) {
                    ref.list = list->second;
                } else {
                    ref.removed = true;
                }
            }
            row.last_rule = ref;
        }
        view.rows.push_back(std::move(row));
    }
    std::sort(view.rows.begin(), view.rows.end(), [](const TopRow& a, const TopRow& b) {
        if (a.attempts_per_s != b.attempts_per_s) return a.attempts_per_s > b.attempts_per_s;
        if (a.attempts != b.attempts) return a.attempts > b.attempts;
        return std::tie(a.family, a.addr) < std::tie(b.family, b.addr);
    });
    if (view.rows.size() > query.limit) view.rows.resize(query.limit);
    return view;
}

// ------------------------------------------------------------------ events

namespace {

int collect_event(void* ctx, void* data, size_t size) {
    auto* pending = static_cast<std::vector<fence_event>*>(ctx);
    if (size < sizeof(fence_event)) return 0;  // not ours: skip rather than misread
    fence_event event;
    std::memcpy(&event, data, sizeof event);
    pending->push_back(event);
    return 0;
}

}  // namespace

EventStream::EventStream(const std::string& pin_dir) : map_fd_(open_pinned(pin_dir + "/" FENCE_MAP_EVENTS)) {
    ring_ = ring_buffer__new(map_fd_.get(), collect_event, &pending_, nullptr);
    if (!ring_) throw RuntimeError(describe_errno("read the events ring buffer of " + pin_dir, errno));
}

EventStream::~EventStream() {
    ring_buffer__free(ring_);
}

int EventStream::poll_fd() const {
    return ring_buffer__epoll_fd(ring_);
}

std::vector<fence_event> EventStream::drain() {
    pending_.clear();
    int rc = ring_buffer__consume(ring_);
    if (rc < 0) throw RuntimeError(describe_errno("read the events ring buffer", -rc));
    return std::move(pending_);
}

}  // namespace smtpfence
