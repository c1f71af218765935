// Proof by a model: the real XDP program (bpf_prog_test_run_opts) and the
// reference classifier written from the README (reference_classifier.h), run
// side by side over random rule sets (nested IPv4 and IPv6 prefixes; block,
// allow, limit, dry run, expired) and random and mutated frames (truncations,
// bit flips, VLAN tags, IPv4 options, IPv6 extension headers, fragments,
// retransmitted SYNs). Every frame's verdict, and after each rule set the
// global and per-rule counters, must agree. (The per-source accounting of
// `top` is an estimate since a source's first SYN only enters a sketch; the
// model does not follow it, tests/bpf/test_accounting.cpp does.) A
// disagreement prints the seed, the rule set and the frame as hex; a counter
// disagreement is replayed frame by frame to find the first frame it shows
// on.
//
// CTest runs a fixed seed (a smoke run of about 100,000 frames);
// tests/bpf/model_long.sh runs random seeds and any number of frames through
// SMTPFENCE_MODEL_SEED and SMTPFENCE_MODEL_FRAMES. Needs root; skipped
// otherwise.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bpf/map.h"
#include "bpf/pin_dir.h"
#include "bpf_test_support.h"
#include "reference_classifier.h"
#include "smtpfence_abi.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;
using model::Address;
using model::ModelRule;
using model::ReferenceClassifier;
using model::RuleAction;

namespace {

constexpr uint64_t kDefaultSeed = 20261205;
constexpr uint64_t kDefaultFrames = 100'000;
constexpr size_t kFramesPerRuleSet = 250;
constexpr uint64_t kHourNs = 3600ull * 1'000'000'000ull;
// Disagreements printed in full; the rest are only counted.
constexpr size_t kPrintedDisagreements = 5;

uint64_t env_number(const char* name, uint64_t fallback) {
    const char* text = std::getenv(name);
    return text && *text ? std::strtoull(text, nullptr, 0) : fallback;
}

std::string hex(const Bytes& frame) {
    std::string out;
    char text[32];
    for (size_t i = 0; i < frame.size(); ++i) {
        if (i % 16 == 0) {
            std::snprintf(text, sizeof text, "%s%8zu:", i ? "\n" : "", i);
            out += text;
        }
        std::snprintf(text, sizeof text, " %02x", frame[i]);
        out += text;
    }
    return out;
}

std::string address_text(int family, const Address& a) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == 4 ? AF_INET : AF_INET6, a.data(), text, sizeof text);
    return text;
}

// One random rule set, the open connections of its --max-conns keys, and the
// frames run against it.
struct Scenario {
    struct Open {
        size_t rule;
        Address source;
        uint32_t count;
    };
    std::vector<ModelRule> rules;
    std::vector<Open> open;
    std::vector<Bytes> frames;
};

class Generator {
public:
    explicit Generator(uint64_t seed) : rng_(seed) {}

    Scenario scenario() {
        Scenario s;
        for (int family : {4, 6}) {
            anchors_[family == 4 ? 0 : 1] = {random_address(family), {}};
            // The second anchor shares a random number of leading bits with the
            // first: their rules nest or sit side by side.
            Address& second = anchors_[family == 4 ? 0 : 1][1];
            second = flip_below(anchors_[family == 4 ? 0 : 1][0], family, below(bits(family) + 1));
        }
        const bool deep = chance(20);  // a chain longer than the walk
        const size_t count = deep ? 9 + below(5) : 1 + below(14);
        const int deep_family = chance(50) ? 4 : 6;
        for (size_t i = 0; s.rules.size() < count && i < 4 * count; ++i) {
            const int family = deep ? deep_family : chance(55) ? 4 : 6;
            ModelRule r = random_rule(family, deep);
            bool taken = false;
            for (const ModelRule& other : s.rules) {
                taken |= other.family == r.family && other.prefixlen == r.prefixlen && other.addr == r.addr;
            }
            if (!taken) s.rules.push_back(r);
        }
        for (size_t i = 0; i < s.rules.size(); ++i) {
            const ModelRule& r = s.rules[i];
            if (r.max_conns == 0) continue;
            for (int k = 0; k < 3; ++k) s.open.push_back({i, source(r.family), below(r.max_conns + 2)});
        }
        for (size_t i = 0; i < kFramesPerRuleSet; ++i) {
            if (!s.frames.empty() && chance(12)) {
                s.frames.push_back(s.frames[below(s.frames.size())]);  // the same frame again: a retransmission
                continue;
            }
            Bytes f = frame();
            if (chance(25)) mutate(f);
            s.frames.push_back(std::move(f));
        }
        return s;
    }

private:
    uint32_t below(uint64_t n) { return static_cast<uint32_t>(std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_)); }
    bool chance(unsigned percent) { return below(100) < percent; }
    static unsigned bits(int family) { return family == 4 ? 32 : 128; }

    Address random_address(int family) {
        Address a{};
        for (unsigned i = 0; i < bits(family) / 8; ++i) a[i] = static_cast<uint8_t>(below(256));
        if (family == 6) a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8;
        return a;
    }

    // `a` with every bit from `from` on random.
    Address flip_below(Address a, int family, unsigned from) {
        for (unsigned bit = from; bit < bits(family); ++bit) {
            if (chance(50)) a[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
        }
        return a;
    }

    unsigned prefixlen(int family) {
        if (family == 4) return chance(10) ? below(8) : 8 + below(25);
        return chance(10) ? below(32) : 32 + below(97);
    }

    ModelRule random_rule(int family, bool deep) {
        ModelRule r;
        r.family = family;
        r.prefixlen = deep ? bits(family) - below(family == 4 ? 16 : 40) : prefixlen(family);
        const Address& anchor = anchors_[family == 4 ? 0 : 1][deep ? 0 : below(2)];
        r.addr = model::masked(anchor, r.prefixlen);
        const unsigned roll = below(100);
        r.action = roll < 30 ? RuleAction::Allow : roll < 65 ? RuleAction::Block : RuleAction::Limit;
        r.dry_run = r.action != RuleAction::Allow && chance(deep ? 40 : 25);
        r.expired = chance(deep ? 40 : 15);
        if (r.action == RuleAction::Limit) {
            // --dry-run with --max-conns is refused by the CLI.
            r.max_conns = !r.dry_run && chance(35) ? 1 + below(2) : 0;
            r.burst = r.max_conns == 0 || chance(60) ? 1 + below(3) : 0;
            const unsigned per_source = std::max(family == 4 ? 32u : 64u, r.prefixlen);
            const unsigned roll_key = below(3);
            r.key_prefixlen = roll_key == 0   ? r.prefixlen
                              : roll_key == 1 ? per_source
                                              : r.prefixlen + below(bits(family) - r.prefixlen + 1);
        }
        return r;
    }

    // A source near one of the anchors: it falls inside some of the rules.
    Address source(int family) {
        if (chance(8)) return random_address(family);
        const Address& anchor = anchors_[family == 4 ? 0 : 1][below(2)];
        return flip_below(anchor, family, below(bits(family) + 1));
    }

    Bytes frame() {
        using namespace smtpfence::frames;
        const int family = chance(55) ? 4 : 6;
        const std::string src = address_text(family, source(family));
        static const uint16_t kSmtp[] = {25, 465, 587};
        static const uint16_t kOther[] = {22, 24, 26, 80, 2525};
        static const uint8_t kFlags[] = {kAck, kSyn | kAck, kRst, kFin | kAck, kSyn | kFin, kSyn | kRst, kPsh | kAck, 0};
        Tcp t;
        t.dport = chance(85) ? kSmtp[below(3)] : kOther[below(5)];
        t.flags = chance(80) ? kSyn : kFlags[below(8)];
        t.sport = static_cast<uint16_t>(40000 + below(3));
        t.seq = 1000 + below(2);
        t.payload = chance(10) ? below(40) : 0;

        std::vector<uint16_t> tags;
        const unsigned tag_roll = below(100);
        const size_t tag_count = tag_roll < 75 ? 0 : tag_roll < 88 ? 1 : tag_roll < 96 ? 2 : 3;
        for (size_t i = 0; i < tag_count; ++i) tags.push_back(chance(50) ? k8021Q : k8021AD);

        const unsigned kind = below(100);
        const uint8_t proto = kind < 90 ? IPPROTO_TCP : kind < 95 ? IPPROTO_UDP : IPPROTO_ICMP;
        const Bytes l4 = proto == IPPROTO_TCP ? tcp(t) : proto == IPPROTO_UDP ? udp(t.dport) : icmp_echo(8);
        if (chance(2)) return ether(ETH_P_ARP, arp_request("203.0.113.5"), tags);
        if (family == 4) {
            Ip4 ip{.src = src, .proto = proto};
            ip.ihl = static_cast<uint8_t>(chance(70) ? 5 : 6 + below(10));
            if (chance(12)) {
                ip.frag = static_cast<uint16_t>((chance(50) ? kMoreFragments : 0) | (chance(70) ? 1 + below(0x1fff) : 0));
            }
            return v4(ip, ip.frag & 0x1fff ? Bytes(24, 'x') : l4, tags);
        }
        Ip6 ip{.src = src, .proto = proto};
        if (chance(40)) {
            static const uint8_t kExt[] = {kHopByHop, kDestOpts, kRouting, kAh, kFragment};
            const size_t n = 1 + below(8);
            for (size_t i = 0; i < n; ++i) {
                Ext6 e{kExt[below(5)]};
                if (e.type == kFragment) {
                    e.frag_offset = static_cast<uint16_t>(chance(50) ? 0 : 1 + below(0x1fff));
                    e.more = chance(50);
                }
                ip.ext.push_back(e);
            }
        }
        return v6(ip, l4, tags);
    }

    // Truncation, bit flips or a random byte, in the headers mostly.
    void mutate(Bytes& f) {
        const unsigned how = below(3);
        if (how == 0) {
            f.resize(below(f.size() + 1));
            return;
        }
        const size_t span = std::min<size_t>(f.size(), 120);
        const size_t n = 1 + below(3);
        for (size_t i = 0; i < n; ++i) {
            const size_t at = below(span);
            if (how == 1) {
                f[at] ^= static_cast<uint8_t>(1 << below(8));
            } else {
                f[at] = static_cast<uint8_t>(below(256));
            }
        }
    }

    std::mt19937_64 rng_;
    std::array<std::array<Address, 2>, 2> anchors_{};
};

// The program's side: the loaded program and the maps a scenario writes,
// reads and clears.
class Model : public PinnedFenceTest {
protected:
    void SetUp() override {
        PinnedFenceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        auto map = [&](const char* name) { return MapRef(open_pinned(pin_dir() + "/" + name), name); };
        rules_v4_ = map(FENCE_MAP_RULES_V4);
        rules_v6_ = map(FENCE_MAP_RULES_V6);
        counters_ = map(FENCE_MAP_RULE_COUNTERS);
        limit_state_ = map(FENCE_MAP_LIMIT_STATE);
        conn_counts_ = map(FENCE_MAP_CONN_COUNTS);
        syn_flows_ = map(FENCE_MAP_SYN_FLOWS);
        sources_ = map(FENCE_MAP_SOURCES);
        syn_flows_cpu_ = map(FENCE_MAP_SYN_FLOWS_CPU);
        source_sketch_ = map(FENCE_MAP_SOURCE_SKETCH);
        source_guard_ = map(FENCE_MAP_SOURCE_GUARD);
        event_marks_ = map(FENCE_MAP_EVENT_MARKS);
    }

    // Empties what one scenario leaves behind: rules, their counters, the
    // limiter state, the SYN flows, the per-source accounting (hashes lose
    // their keys, arrays are zeroed).
    void clear(size_t rules) {
        for (const MapRef* m : {&rules_v4_, &rules_v6_, &limit_state_, &conn_counts_, &syn_flows_, &syn_flows_cpu_,
                                &sources_, &source_sketch_, &source_guard_, &event_marks_}) {
            bpf_map_info info{};
            uint32_t len = sizeof info;
            ASSERT_EQ(bpf_obj_get_info_by_fd(m->fd(), &info, &len), 0) << m->name();
            if (info.type == BPF_MAP_TYPE_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_ARRAY) {
                const size_t copies = info.type == BPF_MAP_TYPE_PERCPU_ARRAY ? possible_cpus() : 1;
                // One batch: a syscall per slot would take most of the run.
                const size_t value = info.type == BPF_MAP_TYPE_PERCPU_ARRAY ? (info.value_size + 7) / 8 * 8 : info.value_size;
                const std::vector<uint8_t> zeros(copies * value * info.max_entries);
                std::vector<uint32_t> keys(info.max_entries);
                for (uint32_t i = 0; i < info.max_entries; ++i) keys[i] = i;
                uint32_t count = info.max_entries;
                ASSERT_EQ(bpf_map_update_batch(m->fd(), keys.data(), zeros.data(), &count, nullptr), 0) << m->name();
                continue;
            }
            for (const auto& key : m->keys(info.key_size)) m->erase(key.data());
        }
        const std::vector<rule_counters> zeros(possible_cpus());
        for (uint32_t slot = 0; slot < rules; ++slot) counters_.update(&slot, zeros.data());
    }

    // Writes the scenario's rules as the CLI would (the rule in slot i has id
    // i + 1), and the open connections of its --max-conns keys.
    void install(const Scenario& s) {
        for (uint32_t slot = 0; slot < s.rules.size(); ++slot) {
            const ModelRule& r = s.rules[slot];
            rule_value v{};
            v.slot = slot;
            v.rule_id = slot + 1;
            v.action = r.action == RuleAction::Allow   ? FENCE_ACTION_ALLOW
                       : r.action == RuleAction::Block ? FENCE_ACTION_BLOCK
                                                        : FENCE_ACTION_LIMIT;
            v.prefixlen = static_cast<uint8_t>(r.prefixlen);
            v.key_prefixlen = static_cast<uint8_t>(r.key_prefixlen);
            v.flags = r.dry_run ? FENCE_RULE_DRY_RUN : 0;
            v.max_conns = r.max_conns;
            if (r.burst != 0) {
                v.interval_ns = kHourNs;  // 1/h: no token comes back during a run
                v.tolerance_ns = (r.burst - 1) * kHourNs;
            }
            // A live rule has no deadline or one an hour ahead.
            v.expires_ns = r.expired ? boot_ns() - 1 : slot % 2 ? boot_ns() + kHourNs : 0;
            if (r.family == 4) {
                rule_key_v4 key{r.prefixlen, {}};
                std::memcpy(key.addr, r.addr.data(), 4);
                rules_v4_.update(&key, &v);
            } else {
                rule_key_v6 key{r.prefixlen, {}};
                std::memcpy(key.addr, r.addr.data(), 16);
                rules_v6_.update(&key, &v);
            }
        }
        for (const Scenario::Open& o : s.open) {
            const ModelRule& r = s.rules[o.rule];
            limit_key key{};
            key.rule_id = static_cast<uint32_t>(o.rule) + 1;
            key.family = static_cast<uint8_t>(r.family);
            const Address key_addr = model::masked(o.source, r.key_prefixlen);
            std::memcpy(key.addr, key_addr.data(), 16);
            conn_counts_.update(&key, &o.count);
        }
    }

    ReferenceClassifier reference(const Scenario& s) const {
        ReferenceClassifier m(s.rules);
        for (const Scenario::Open& o : s.open) m.set_open_connections(o.rule, o.source, o.count);
        return m;
    }

    model::RuleCounts rule_counts(uint32_t slot) const {
        std::vector<rule_counters> per_cpu(possible_cpus());
        model::RuleCounts sum;
        if (!counters_.lookup(&slot, per_cpu.data())) return sum;
        for (const rule_counters& c : per_cpu) {
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

    model::GlobalCounts global_counts() const {
        const fence_stats s = fence().counters();
        return {s.seen,           s.passed,           s.dropped,   s.smtp,      s.smtp_syn,
                s.smtp_attempts, s.dropped_attempts, s.fragments, s.malformed, s.would_drop};
    }

    static model::GlobalCounts minus(const model::GlobalCounts& a, const model::GlobalCounts& b) {
        return {a.seen - b.seen,
                a.passed - b.passed,
                a.dropped - b.dropped,
                a.smtp - b.smtp,
                a.smtp_syn - b.smtp_syn,
                a.smtp_attempts - b.smtp_attempts,
                a.dropped_attempts - b.dropped_attempts,
                a.fragments - b.fragments,
                a.malformed - b.malformed,
                a.would_drop - b.would_drop};
    }

    static std::string describe(const Scenario& s) {
        std::ostringstream os;
        os << "  rules (" << s.rules.size() << "):\n";
        for (size_t i = 0; i < s.rules.size(); ++i) {
            os << "    [" << i << "] " << model::to_string(s.rules[i]) << "\n";
        }
        for (const Scenario::Open& o : s.open) {
            os << "    open connections under [" << o.rule << "] from "
               << address_text(s.rules[o.rule].family, o.source) << "'s key: " << o.count << "\n";
        }
        return os.str();
    }

    // Where the program's counters and the model's part: "" when they agree.
    std::string counter_differences(const ReferenceClassifier& m, const model::GlobalCounts& before,
                                    size_t rules) const {
        std::ostringstream os;
        const model::GlobalCounts got = minus(global_counts(), before);
        if (!(got == m.global())) {
            os << "  global counters: program " << model::to_string(got) << "\n                   model   "
               << model::to_string(m.global()) << "\n";
        }
        for (uint32_t slot = 0; slot < rules; ++slot) {
            const model::RuleCounts c = rule_counts(slot);
            if (!(c == m.counts(slot))) {
                os << "  rule [" << slot << "]: program " << model::to_string(c) << "\n            model   "
                   << model::to_string(m.counts(slot)) << "\n";
            }
        }
        return os.str();
    }

    static int expected_retval(model::Verdict v) {
        return v == model::Verdict::Drop ? XDP_DROP : v == model::Verdict::Pass ? XDP_PASS : -EINVAL;
    }

    // Runs a scenario from clean maps; returns its disagreements. With
    // `each_frame` the counters are compared after every frame, which finds
    // the frame a counter disagreement starts on.
    size_t run_scenario(const Scenario& s, const std::string& where, bool each_frame, size_t& printed) {
        clear(s.rules.size());
        install(s);
        ReferenceClassifier m = reference(s);
        const model::GlobalCounts before = global_counts();
        size_t disagreements = 0;
        auto report = [&](size_t i, const std::string& what) {
            ++disagreements;
            if (printed++ >= kPrintedDisagreements) return;
            ADD_FAILURE() << where << ", frame " << i << ": " << what << "\n"
                          << describe(s) << "  frame (" << s.frames[i].size() << " bytes):\n"
                          << hex(s.frames[i]);
        };
        for (size_t i = 0; i < s.frames.size(); ++i) {
            const int got = run_raw(s.frames[i]);
            const int want = expected_retval(m.classify(s.frames[i]));
            if (got != want) {
                report(i, "verdict: program " + std::to_string(got) + ", model " + std::to_string(want) +
                              " (XDP_DROP=1, XDP_PASS=2)");
                continue;
            }
            if (each_frame) {
                const std::string diff = counter_differences(m, before, s.rules.size());
                if (!diff.empty()) {
                    report(i, "counters after it:\n" + diff);
                    return disagreements;
                }
            }
        }
        if (!each_frame) add_coverage(m);
        if (disagreements == 0) {
            const std::string diff = counter_differences(m, before, s.rules.size());
            if (diff.empty()) return 0;
            if (!each_frame) return run_scenario(s, where + " (replayed frame by frame)", true, printed);
            report(s.frames.size() - 1, "counters at the end, not reproduced frame by frame:\n" + diff);
        }
        return disagreements;
    }

    // What the frames did, by the model's counters: that a run exercised
    // every kind of verdict, not only that it agreed.
    struct Coverage {
        model::GlobalCounts global;
        uint64_t rate_dropped = 0, conns_dropped = 0;
    };

    void add_coverage(const ReferenceClassifier& m) {
        const model::GlobalCounts& g = m.global();
        coverage_.global = {coverage_.global.seen + g.seen,
                            coverage_.global.passed + g.passed,
                            coverage_.global.dropped + g.dropped,
                            coverage_.global.smtp + g.smtp,
                            coverage_.global.smtp_syn + g.smtp_syn,
                            coverage_.global.smtp_attempts + g.smtp_attempts,
                            coverage_.global.dropped_attempts + g.dropped_attempts,
                            coverage_.global.fragments + g.fragments,
                            coverage_.global.malformed + g.malformed,
                            coverage_.global.would_drop + g.would_drop};
        for (size_t rule = 0; rule < m.rules().size(); ++rule) {
            coverage_.rate_dropped += m.counts(rule).rate_dropped;
            coverage_.conns_dropped += m.counts(rule).conns_dropped;
        }
    }

    Coverage coverage_;
    MapRef rules_v4_, rules_v6_, counters_, limit_state_, conn_counts_, syn_flows_, sources_;
    MapRef syn_flows_cpu_, source_sketch_, source_guard_, event_marks_;
};

TEST_F(Model, TheProgramAgreesWithTheReadme) {
    const uint64_t seed = env_number("SMTPFENCE_MODEL_SEED", kDefaultSeed);
    const uint64_t frames = env_number("SMTPFENCE_MODEL_FRAMES", kDefaultFrames);
    Generator gen(seed);
    const auto start = std::chrono::steady_clock::now();
    uint64_t ran = 0, rule_sets = 0, rules = 0, disagreements = 0;
    size_t printed = 0;
    while (ran < frames) {
        const Scenario s = gen.scenario();
        const std::string where = "seed " + std::to_string(seed) + ", rule set " + std::to_string(rule_sets);
        disagreements += run_scenario(s, where, false, printed);
        ran += s.frames.size();
        rules += s.rules.size();
        ++rule_sets;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "model: seed " << seed << ", frames " << ran << ", rule sets " << rule_sets << " (" << rules
              << " rules), disagreements: " << disagreements << ", " << seconds << " s\n"
              << "  the frames: " << model::to_string(coverage_.global) << ", rate_dropped "
              << coverage_.rate_dropped << ", conns_dropped " << coverage_.conns_dropped << std::endl;
    RecordProperty("frames", std::to_string(ran));
    RecordProperty("disagreements", std::to_string(disagreements));
    EXPECT_EQ(disagreements, 0u) << "seed " << seed;
}

}  // namespace
