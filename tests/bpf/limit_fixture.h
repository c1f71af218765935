// The LimitVerdicts fixture of the BPF tests: limits added the way the CLI
// adds them, verdicts as 'P'/'D' strings, and the limiter maps (limit_state,
// conn_counts) read straight from their pins. Used by the limiter and rules
// tests.
#pragma once

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpf_test_support.h"
#include "fence/rule_store.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"
#include "text/limit_options.h"

namespace smtpfence::bpftest {

// ---------------------------------------------------------------------------
// Counters

// One rule's counters (summed over CPUs) and the keys it tracks.
struct RuleCounts {
    uint64_t matched = 0, dropped = 0, rate_dropped = 0, conns_dropped = 0, tracked_keys = 0;
    bool operator==(const RuleCounts&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const RuleCounts& c) {
    return os << "{matched " << c.matched << ", dropped " << c.dropped << ", rate_dropped " << c.rate_dropped
              << ", conns_dropped " << c.conns_dropped << ", tracked_keys " << c.tracked_keys << "}";
}

// A limiter map key, comparable and printable (limit_key is a C struct of the
// global namespace; this one lives here so that gtest finds its operators).
struct LimKey {
    uint32_t rule_id = 0;
    unsigned family = 0;
    std::array<uint8_t, 16> addr{};
    auto operator<=>(const LimKey&) const = default;
};

inline LimKey from_raw(const limit_key& raw) {
    LimKey k;
    k.rule_id = raw.rule_id;
    k.family = raw.family;
    std::memcpy(k.addr.data(), raw.addr, sizeof raw.addr);
    return k;
}

inline limit_key to_raw(const LimKey& k) {
    limit_key raw{};
    raw.rule_id = k.rule_id;
    raw.family = static_cast<uint8_t>(k.family);
    std::memcpy(raw.addr, k.addr.data(), sizeof raw.addr);
    return raw;
}

inline std::ostream& operator<<(std::ostream& os, const LimKey& k) {
    return os << "{rule " << k.rule_id << ", family " << k.family << ", "
              << format_address(k.family == 4 ? Family::V4 : Family::V6, k.addr) << "}";
}

using Keys = std::vector<LimKey>;

inline Keys sorted(Keys keys) {
    std::sort(keys.begin(), keys.end());
    return keys;
}

inline std::string repeat(char c, size_t n) {
    return std::string(n, c);
}

// ---------------------------------------------------------------------------
// Fixture: limits added the way the CLI adds them, and the limiter maps read
// straight from their pins, behind Fence's back.

inline const std::string kNet4 = "203.0.113.0/24";
inline const std::string kNet6 = "2001:db8:1::/48";

class LimitVerdicts : public PinnedFenceTest {
protected:
    // The LimitSpec the CLI builds from `--rate RATE --burst BURST --max-conns N --per PER`
    // (an empty rate: no --rate).
    static LimitSpec spec(const std::string& cidr, const std::string& rate, uint32_t burst,
                          const std::string& per = "source", uint32_t max_conns = 0) {
        LimitSpec s;
        s.interval_ns = rate.empty() ? 0 : parse_rate(rate);
        s.burst = burst;
        s.max_conns = max_conns;
        s.key_prefixlen = key_prefixlen_for(parse_key_scope(per), parse_cidr(cidr).cidr);
        return s;
    }

    AddResult add_limit(const std::string& cidr, const std::string& rate, uint32_t burst,
                        const std::string& per = "source", uint32_t max_conns = 0) {
        return fence().add_rule(parse_cidr(cidr).cidr, Action::Limit, "limit test", "gtest",
                                spec(cidr, rate, burst, per, max_conns));
    }

    // 'P' for XDP_PASS, 'D' for XDP_DROP, 'E' when the kernel refused the run.
    char run(const Bytes& frame) const {
        const int verdict = run_raw(frame);
        return verdict == XDP_PASS ? 'P' : verdict == XDP_DROP ? 'D' : 'E';
    }

    std::string run_n(const Bytes& frame, size_t n) const {
        std::string out;
        for (size_t i = 0; i < n; ++i) out += run(frame);
        return out;
    }

    // `n` SYNs to port 25 from `src`, back to back: "PPD..." in order.
    std::string syns(const std::string& src, size_t n) const { return run_n(syn_from(src), n); }

    std::optional<Rule> rule(const std::string& cidr) const {
        const Cidr want = parse_cidr(cidr).cidr;
        for (const Rule& r : fence().rules()) {
            if (r.cidr == want) return r;
        }
        return std::nullopt;
    }

    RuleCounts counts(const std::string& cidr) const {
        const auto r = rule(cidr);
        if (!r) {
            ADD_FAILURE() << "no rule " << cidr << " in Fence::rules()";
            return {};
        }
        return {r->counters.matched, r->counters.dropped, r->counters.rate_dropped, r->counters.conns_dropped,
                r->tracked_keys};
    }

    UniqueFd pinned(const char* name) const {
        const std::string path = pin_dir() + "/" + name;
        int fd = bpf_obj_get(path.c_str());
        if (fd < 0) throw std::runtime_error("bpf_obj_get " + path + ": " + std::strerror(errno));
        return UniqueFd(fd);
    }

    // The rule's value as the program reads it from the trie.
    rule_value trie_value(const std::string& cidr_text) const {
        const Cidr cidr = parse_cidr(cidr_text).cidr;
        rule_value value{};
        int err;
        if (cidr.family == Family::V4) {
            rule_key_v4 key{};
            key.prefixlen = cidr.prefixlen;
            std::memcpy(key.addr, cidr.addr.data(), sizeof key.addr);
            err = bpf_map_lookup_elem(pinned(FENCE_MAP_RULES_V4).get(), &key, &value);
        } else {
            rule_key_v6 key{};
            key.prefixlen = cidr.prefixlen;
            std::memcpy(key.addr, cidr.addr.data(), sizeof key.addr);
            err = bpf_map_lookup_elem(pinned(FENCE_MAP_RULES_V6).get(), &key, &value);
        }
        if (err != 0) throw std::runtime_error("no trie entry for " + cidr_text);
        if (value.prefixlen != cidr.prefixlen) throw std::runtime_error("trie entry for " + cidr_text + " is broader");
        return value;
    }

    uint32_t rule_id(const std::string& cidr) const { return trie_value(cidr).rule_id; }

    // Every key of a limiter map (limit_state or conn_counts), sorted.
    Keys keys_of(const char* map) const {
        UniqueFd fd = pinned(map);
        Keys out;
        limit_key next{}, prev{};
        bool first = true;
        while (bpf_map_get_next_key(fd.get(), first ? nullptr : &prev, &next) == 0) {
            out.push_back(from_raw(next));
            prev = next;
            first = false;
        }
        return sorted(out);
    }

    void set_conn_count(const LimKey& key, uint32_t open) const {
        const limit_key raw = to_raw(key);
        ASSERT_EQ(bpf_map_update_elem(pinned(FENCE_MAP_CONN_COUNTS).get(), &raw, &open, BPF_ANY), 0)
            << "write conn_counts " << key << ": " << std::strerror(errno);
    }

    std::optional<uint32_t> conn_count(const LimKey& key) const {
        const limit_key raw = to_raw(key);
        uint32_t open = 0;
        if (bpf_map_lookup_elem(pinned(FENCE_MAP_CONN_COUNTS).get(), &raw, &open) != 0) return std::nullopt;
        return open;
    }

    std::optional<uint64_t> tat_of(const LimKey& key) const {
        const limit_key raw = to_raw(key);
        limit_state st{};
        if (bpf_map_lookup_elem(pinned(FENCE_MAP_LIMIT_STATE).get(), &raw, &st) != 0) return std::nullopt;
        return st.tat_ns;
    }
};

// The limiter key the test expects for `src` under rule `id` with key length
// `keylen`, masked here independently of the program.
inline LimKey expected_key(uint32_t id, const std::string& src, unsigned keylen) {
    LimKey key;
    key.rule_id = id;
    key.family = is_v6(src) ? 6 : 4;
    const std::vector<uint8_t> addr = address_bytes(src);
    for (size_t i = 0; i < addr.size(); ++i) {
        const unsigned bit = static_cast<unsigned>(i) * 8;
        if (bit + 8 <= keylen) {
            key.addr[i] = addr[i];
        } else if (bit < keylen) {
            key.addr[i] = static_cast<uint8_t>(addr[i] & (0xff00u >> (keylen - bit)));
        }
    }
    return key;
}

}  // namespace smtpfence::bpftest
