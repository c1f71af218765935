// Benchmark, not a test: the per-packet cost of the smtpfence XDP program
// against a baseline that only parses Ethernet/IP/TCP (bench/baseline.bpf.c),
// measured with BPF_PROG_TEST_RUN for rule sets of growing size.
//
// For each size (0, 1000, 100000 random prefixes per family, plus per family
// the rule that blocks the benchmarked source and two `limit` rules) and each
// packet (v4 and v6: SYN to 25 from a blocked source, SYN to 25 from an
// unlisted source, ACK on port 25, SYN to 22), the baseline and the fence run
// alternately, five times each; the table shows the medians of the kernel's
// ns/packet.
//
// Then the `limit` paths, at every size and for both families (see
// measure_limit_rows for how each is measured):
//   - bucket hit: a source under --rate 1000000/s --burst 1000000 --per source
//     whose key exists; the same packet repeated (lookup + GCRA CAS).
//   - dropped by rate: a source under --rate 1/h --burst 1 after its first SYN
//     (lookup + GCRA refusal, the drop path).
//   - bucket create: every packet from a source never seen before (the key's
//     LRU entry is created), with limit_state far from full; one call with
//     repeat=1 per packet, so there is a bucket hit row measured the same way
//     as a control.
//   - bucket create, LRU full: the same once limit_state holds
//     FENCE_LIMIT_KEYS keys, so that creating a key evicts one.
//   - bucket create, never-used map: bucket create on the map as the program
//     created it, first size only (every size's other rows run on a map that
//     has been filled and emptied, so that the sizes compare).
//
// Then a spoofed flood, at every size and for both families: SYNs to 25 from a
// random source never seen before, inside a blocked prefix and inside an
// unlisted one. BPF_PROG_TEST_RUN repeats one frame, so baseline.bpf.c's
// spoof_xdp rewrites the source of every run and tail-calls the program
// measured (the fence, or the baseline: the rewrite is in both columns).
//
// `bench_xdp --spoofed` measures only the flood rows and the repeated blocked
// SYN, at 0 and 100000 rules (scripts/bench.sh --reference runs it against
// another revision's program).
//
// Needs root (BPF, bpffs). Works in a private pin directory under /sys/fs/bpf
// that it removes when done. Attaches nothing.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "base/errors.h"
#include "baseline_bpf.skel.h"
#include "bpf/map.h"
#include "bpf/pin_dir.h"
#include "fence/program.h"
#include "fence/rule_store.h"
#include "frames.h"
#include "text/cidr.h"
#include "text/limit_options.h"

namespace {

using namespace smtpfence;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kSizes[] = {0, 1000, 100000};
constexpr uint32_t kSpoofedSizes[] = {0, 100000};
constexpr uint32_t kLargestSize = 100000;
// Rules per family: the random ones plus the blocking rule, with room to spare.
constexpr uint32_t kMaxRules = kLargestSize + 1024;
constexpr uint64_t kSeed = 0x736d7466;  // fixed: every run benchmarks the same rule set
constexpr int kRuns = 5;
constexpr double kTargetSeconds = 0.3;  // per measurement
constexpr uint32_t kCalibrationRepeat = 200000;
// Rules per family besides the random ones: the block rule, two limit rules
// and the block of the spoofed flood.
constexpr uint32_t kFixedRulesPerFamily = 4;
// "bucket hit": at most this many packets per BPF_PROG_TEST_RUN call, and the
// key's clock is reset (unmeasured) before each call. 1000000/s with a burst of
// 1000000 admits a million SYNs in a row from a fresh clock; test runs go about
// twenty times faster than 1/us, so without the reset the key would run out and
// the row would measure drops.
constexpr uint32_t kHitMaxRepeat = 500000;
// "bucket create": distinct sources (one call each, repeat=1) per run.
constexpr uint32_t kCreateFramesPerRun = 16384;
// Sources run through the program to fill limit_state before the "LRU full"
// rows: more than it holds, so that it is full whatever the LRU kept.
constexpr uint32_t kFillSources = FENCE_LIMIT_KEYS + kCreateFramesPerRun;
// "LRU full" holds when at most this many of its slots are free (the kernel's
// LRU may park a few free nodes on per-CPU lists).
constexpr uint32_t kFullSlack = 1024;

volatile std::sig_atomic_t g_interrupted = 0;

void on_signal(int) {
    g_interrupted = 1;
}

void check_interrupted() {
    if (g_interrupted) throw std::runtime_error("interrupted");
}

// Owns the pin directory: removes it, and everything pinned in it, on every exit.
class PinDirGuard {
public:
    explicit PinDirGuard(std::string dir) : dir_(std::move(dir)) {
        if (fs::exists(dir_)) throw std::runtime_error(dir_ + " already exists; remove it or rerun");
    }
    PinDirGuard(const PinDirGuard&) = delete;
    PinDirGuard& operator=(const PinDirGuard&) = delete;
    ~PinDirGuard() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
        if (ec) std::fprintf(stderr, "bench: could not remove %s: %s\n", dir_.c_str(), ec.message().c_str());
    }
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
};

struct BaselineDeleter {
    void operator()(baseline_bpf* skel) const { baseline_bpf__destroy(skel); }
};

// ---- packets ----------------------------------------------------------------

struct Packet {
    std::string name;
    frames::Bytes bytes;
    bool expect_drop_when_blocked;  // XDP_DROP once the blocking rule is in place
};

// The mail host's addresses in the frames.
constexpr const char* kMailHostV4 = "198.51.100.1";
constexpr const char* kMailHostV6 = "2001:db8:25::1";

std::string address_of(const Cidr& host) {
    return format_address(host.family, host.addr);
}

// What the XDP program sees: a segment from `src` to the mail host.
frames::Bytes tcp_v4(const Cidr& src, uint16_t dport, uint8_t flags) {
    return frames::v4({.src = address_of(src), .dst = kMailHostV4}, frames::tcp({.dport = dport, .flags = flags}));
}
frames::Bytes tcp_v6(const Cidr& src, uint16_t dport, uint8_t flags) {
    return frames::v6({.src = address_of(src), .dst = kMailHostV6}, frames::tcp({.dport = dport, .flags = flags}));
}

// What the mail host sends: a 40-byte reply from `sport` to `dst` (ACK|PSH),
// as the egress program sees it.
frames::Tcp reply_segment(uint16_t sport) {
    return {.dport = 40000, .flags = frames::kAck | frames::kPsh, .payload = 40, .sport = sport};
}
frames::Bytes reply_v4(const Cidr& dst, uint16_t sport) {
    return frames::v4({.src = kMailHostV4, .dst = address_of(dst)}, frames::tcp(reply_segment(sport)));
}
frames::Bytes reply_v6(const Cidr& dst, uint16_t sport) {
    return frames::v6({.src = kMailHostV6, .dst = address_of(dst)}, frames::tcp(reply_segment(sport)));
}

// ---- rules ------------------------------------------------------------------

struct FamilySetup {
    Family family;
    Cidr blocking_rule;
    Cidr blocked_source;   // inside blocking_rule
    Cidr unlisted_source;  // covered by no rule
    // limit --rate 1000000/s --burst 1000000 --per source: never runs out
    // (see kHitMaxRepeat). Wide enough for every fresh source of the run.
    Cidr fast_limit_rule;
    Cidr hit_source;  // inside fast_limit_rule, outside the fresh sources
    // limit --rate 1/h --burst 1 --per source: one SYN, then drops for an hour.
    Cidr slow_limit_rule;
    Cidr slow_source;  // inside slow_limit_rule
    // The spoofed flood's sources: random inside one of these.
    Cidr spoof_block_rule;  // a block rule of its own
    Cidr spoof_unlisted;    // covered by no rule
};

bool overlaps(const Cidr& a, const Cidr& b) {
    return a.contains(b) || b.contains(a);
}

// `count` distinct random prefixes, v4 /16../32 or v6 /32../128, none covering
// either benchmarked source, none equal to the blocking rule, and none
// overlapping a limit rule (a longer random rule inside one would take some of
// its sources away).
std::vector<Cidr> random_prefixes(const FamilySetup& f, uint32_t count, std::mt19937_64& rng) {
    const bool v4 = f.family == Family::V4;
    std::uniform_int_distribution<int> len_dist(v4 ? 16 : 32, v4 ? 32 : 128);
    std::uniform_int_distribution<int> byte_dist(0, 255);
    std::set<Cidr> seen;
    std::vector<Cidr> out;
    out.reserve(count);
    while (out.size() < count) {
        Cidr c;
        c.family = f.family;
        c.prefixlen = static_cast<uint8_t>(len_dist(rng));
        size_t bytes = v4 ? 4 : 16;
        for (size_t i = 0; i < bytes; ++i) c.addr[i] = static_cast<uint8_t>(byte_dist(rng));
        for (size_t bit = c.prefixlen; bit < bytes * 8; ++bit) c.addr[bit / 8] &= ~(0x80u >> (bit % 8));
        if (c == f.blocking_rule || c.contains(f.blocked_source) || c.contains(f.unlisted_source)) continue;
        if (overlaps(c, f.fast_limit_rule) || overlaps(c, f.slow_limit_rule)) continue;
        if (overlaps(c, f.spoof_block_rule) || overlaps(c, f.spoof_unlisted)) continue;
        if (!seen.insert(c).second) continue;
        out.push_back(c);
    }
    return out;
}

// ---- measurement ------------------------------------------------------------

constexpr uint32_t kTcActUnspec = static_cast<uint32_t>(-1);

struct RunResult {
    uint32_t ns_per_packet;  // the kernel's opts.duration
    uint32_t retval;
};

RunResult test_run(int prog_fd, const std::vector<uint8_t>& pkt, uint32_t repeat) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(), .data_size_in = static_cast<uint32_t>(pkt.size()),
                .repeat = static_cast<int>(repeat));
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
        throw RuntimeError(describe_errno("BPF_PROG_TEST_RUN", errno));
    }
    return {opts.duration, opts.retval};
}

// How the repeated-packet rows run the fence. The default is one call per run.
struct Method {
    uint32_t max_repeat = UINT32_MAX;         // split a run into calls of at most this many repeats
    std::function<void()> before_fence_call;  // unmeasured setup before every fence call
};

// Runs `repeat` packets in calls of at most `max_repeat`, calling `before`
// ahead of each; returns the ns/packet over all calls (each call's whole-ns
// average weighted by its repeats) and the last call's verdict.
RunResult run_split(int prog_fd, const std::vector<uint8_t>& pkt, uint32_t repeat, uint32_t max_repeat,
                    const std::function<void()>& before) {
    const uint32_t calls = static_cast<uint32_t>((uint64_t{repeat} + max_repeat - 1) / max_repeat);
    uint64_t total_ns = 0, total_packets = 0;
    RunResult last{};
    for (uint32_t c = 0; c < calls; ++c) {
        uint32_t n = repeat / calls + (c < repeat % calls ? 1 : 0);
        if (before) before();
        last = test_run(prog_fd, pkt, n);
        total_ns += uint64_t{last.ns_per_packet} * n;
        total_packets += n;
    }
    return {static_cast<uint32_t>(total_ns / total_packets), last.retval};
}

// Repeat count that makes one measurement last about kTargetSeconds.
uint32_t calibrate(int prog_fd, const std::vector<uint8_t>& pkt, const std::function<void()>& before = {}) {
    if (before) before();
    uint32_t ns = std::max<uint32_t>(1, test_run(prog_fd, pkt, kCalibrationRepeat).ns_per_packet);
    double repeat = kTargetSeconds * 1e9 / ns;
    return static_cast<uint32_t>(std::clamp(repeat, 1e5, 1e8));
}

uint32_t median(std::vector<uint32_t> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Row {
    uint32_t rules_per_family;
    std::string packet;
    uint32_t fence_ns, baseline_ns;
    uint32_t fence_min, fence_max, baseline_min, baseline_max;
    const char* verdict;
    uint64_t fence_packets = 0;  // packets the fence ran, calibration included (for counter checks)
};

const char* verdict_name(uint32_t retval) {
    switch (retval) {
    case XDP_PASS: return "PASS";
    case XDP_DROP: return "DROP";
    case XDP_ABORTED: return "ABORTED";
    case XDP_TX: return "TX";
    case XDP_REDIRECT: return "REDIRECT";
    case kTcActUnspec: return "UNSPEC (tc: goes on)";
    }
    return "?";
}

void expect_verdict(const char* prog, uint32_t got, uint32_t expected, const std::string& packet, uint32_t size) {
    if (got == expected) return;
    throw std::runtime_error(std::string(prog) + " returned " + verdict_name(got) + " on " + packet + " with " +
                             std::to_string(size) + " rules/family, expected " + verdict_name(expected));
}

Row make_row(uint32_t size, const std::string& name, const std::vector<uint32_t>& fence,
             const std::vector<uint32_t>& baseline, uint32_t fence_retval, uint64_t fence_packets) {
    return {size,
            name,
            median(fence),
            median(baseline),
            *std::min_element(fence.begin(), fence.end()),
            *std::max_element(fence.begin(), fence.end()),
            *std::min_element(baseline.begin(), baseline.end()),
            *std::max_element(baseline.begin(), baseline.end()),
            verdict_name(fence_retval),
            fence_packets};
}

// The same packet repeated: calibrated repeat counts, runs of the baseline and
// the fence alternating.
Row measure(uint32_t size, const std::string& name, const std::vector<uint8_t>& bytes, uint32_t expected, int fence_fd,
            int baseline_fd, const Method& method = {}, uint32_t baseline_expected = XDP_PASS) {
    const uint32_t fence_repeat = calibrate(fence_fd, bytes, method.before_fence_call);
    const uint32_t baseline_repeat = calibrate(baseline_fd, bytes);
    uint64_t fence_packets = kCalibrationRepeat;
    std::vector<uint32_t> fence, baseline;
    uint32_t fence_retval = 0;
    for (int run = 0; run < kRuns; ++run) {
        check_interrupted();
        RunResult b = run_split(baseline_fd, bytes, baseline_repeat, method.max_repeat, {});
        expect_verdict("baseline", b.retval, baseline_expected, name, size);
        baseline.push_back(b.ns_per_packet);
        RunResult f = run_split(fence_fd, bytes, fence_repeat, method.max_repeat, method.before_fence_call);
        expect_verdict("fence", f.retval, expected, name, size);
        fence_retval = f.retval;
        fence.push_back(f.ns_per_packet);
        fence_packets += fence_repeat;
    }
    return make_row(size, name, fence, baseline, fence_retval, fence_packets);
}

Row measure(uint32_t size, const Packet& pkt, int fence_fd, int baseline_fd) {
    return measure(size, pkt.name, pkt.bytes, pkt.expect_drop_when_blocked ? XDP_DROP : XDP_PASS, fence_fd,
                   baseline_fd);
}

// Packets that cannot be repeated: each frame's source is new, so only its
// first run creates a key. BPF_PROG_TEST_RUN repeats one frame, so every frame
// gets its own call with repeat=1, and a run is the sum of the kernel's
// opts.duration over `frames.size()` such calls, divided by their number.
// With repeat=1 opts.duration also holds what the kernel's timer costs around
// one program run (a clock read, bh disable/enable): the baseline runs the very
// same frames the same way, so that overhead is in both columns and cancels in
// Δ (the ratio is diluted by it and is not comparable to the other rows).
// Every call's verdict is checked. Runs alternate like in measure(); each run
// gets fresh frames from `next_batch` (the baseline gets the fence's frames).
// Calls of repeat=1 also start cold (caches, branch predictors after the
// syscall), which costs the fence more than the baseline: the "bucket hit
// (... repeat=1 each: control ...)" rows measure that part on its own.
Row measure_once_each(uint32_t size, const std::string& name,
                      const std::function<std::vector<std::vector<uint8_t>>()>& next_batch, uint32_t expected,
                      int fence_fd, int baseline_fd) {
    std::vector<uint32_t> fence, baseline;
    uint64_t fence_packets = 0;
    for (int run = 0; run < kRuns; ++run) {
        check_interrupted();
        const auto frames = next_batch();
        uint64_t b_ns = 0, f_ns = 0;
        for (const auto& frame : frames) {
            RunResult b = test_run(baseline_fd, frame, 1);
            expect_verdict("baseline", b.retval, XDP_PASS, name, size);
            b_ns += b.ns_per_packet;
        }
        for (const auto& frame : frames) {
            RunResult f = test_run(fence_fd, frame, 1);
            expect_verdict("fence", f.retval, expected, name, size);
            f_ns += f.ns_per_packet;
        }
        baseline.push_back(static_cast<uint32_t>(b_ns / frames.size()));
        fence.push_back(static_cast<uint32_t>(f_ns / frames.size()));
        fence_packets += frames.size();
    }
    return make_row(size, name, fence, baseline, expected, fence_packets);
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Keeps the measurement on one CPU (the last one allowed): the kernel runs the
// program on the calling CPU, and migrations between runs add noise.
void pin_to_last_cpu() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return;
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) last = c;
    if (last < 0) return;
    CPU_ZERO(&set);
    CPU_SET(last, &set);
    sched_setaffinity(0, sizeof set, &set);
}

// ---- spoofed flood ------------------------------------------------------------

const char* family_prefix(Family family) {
    return family == Family::V4 ? "v4 " : "v6 ";
}

// baseline.bpf.c's spoof_xdp, and the program it hands each rewritten frame to.
class Spoofer {
public:
    explicit Spoofer(baseline_bpf* skel)
        : skel_(skel), fd_(bpf_program__fd(skel->progs.spoof_xdp)), target_(bpf_map__fd(skel->maps.spoof_target)) {}

    int fd() const { return fd_; }

    // Sources from now on: random inside `prefix`.
    void sources_in(const Cidr& prefix) const {
        std::array<uint8_t, 16> mask{};
        for (unsigned bit = 0; bit < prefix.prefixlen; ++bit) mask[bit / 8] |= 0x80u >> (bit % 8);
        if (prefix.family == Family::V4) {
            std::memcpy(const_cast<uint32_t*>(&skel_->bss->spoof_v4_prefix), prefix.addr.data(), 4);
            std::memcpy(const_cast<uint32_t*>(&skel_->bss->spoof_v4_mask), mask.data(), 4);
        } else {
            for (int i = 0; i < 16; ++i) {
                skel_->bss->spoof_v6_prefix[i] = prefix.addr[i];
                skel_->bss->spoof_v6_mask[i] = mask[i];
            }
        }
    }

    // Hands the frames to `prog_fd` from now on.
    void target(int prog_fd) const {
        uint32_t zero = 0;
        if (bpf_map_update_elem(target_, &zero, &prog_fd, 0) != 0) {
            throw RuntimeError(describe_errno("set the spoofer's tail call", errno));
        }
    }

private:
    baseline_bpf* skel_;
    int fd_, target_;
};

// SYNs to 25 from random sources never seen before: in the flood's block
// rule, and in its unlisted prefix. Both columns run spoof_xdp, which rewrites
// the source and tail-calls the fence or the baseline.
void measure_spoofed_rows(uint32_t size, const FamilySetup (&families)[2], const Spoofer& spoofer, int fence_fd,
                          int baseline_fd, std::vector<Row>& rows) {
    for (const auto& f : families) {
        auto make = f.family == Family::V4 ? tcp_v4 : tcp_v6;
        for (auto [prefix, what, expected] : {std::tuple{f.spoof_block_rule, "blocked", XDP_DROP},
                                              std::tuple{f.spoof_unlisted, "unlisted", XDP_PASS}}) {
            const std::string name = std::string(family_prefix(f.family)) + "SYN :25 " + what +
                                     ", random never-seen src (spoofed flood)";
            spoofer.sources_in(prefix);
            Method method{UINT32_MAX, [&] { spoofer.target(fence_fd); }};
            const auto pkt = make(prefix, 25, frames::kSyn);
            const uint32_t fence_repeat = calibrate(spoofer.fd(), pkt, method.before_fence_call);
            spoofer.target(baseline_fd);
            const uint32_t baseline_repeat = calibrate(spoofer.fd(), pkt);
            std::vector<uint32_t> fence, baseline;
            for (int run = 0; run < kRuns; ++run) {
                check_interrupted();
                spoofer.target(baseline_fd);
                RunResult b = test_run(spoofer.fd(), pkt, baseline_repeat);
                expect_verdict("baseline", b.retval, XDP_PASS, name, size);
                baseline.push_back(b.ns_per_packet);
                spoofer.target(fence_fd);
                RunResult r = test_run(spoofer.fd(), pkt, fence_repeat);
                expect_verdict("fence", r.retval, expected, name, size);
                fence.push_back(r.ns_per_packet);
            }
            rows.push_back(make_row(size, name, fence, baseline, expected, 0));
            std::fprintf(stderr, "bench:   %-26s fence %3u ns  baseline %3u ns\n", name.c_str(), rows.back().fence_ns,
                         rows.back().baseline_ns);
        }
    }
}

// ---- limit ------------------------------------------------------------------

// The pinned maps the limit rows read and prepare directly (Fence keeps its own
// private). Only set-up and checks go through them, never a measured packet.
struct LimitMaps {
    MapRef rules_v4, rules_v6, counters_map, state_map;

    explicit LimitMaps(const std::string& pin_dir) {
        auto map = [&](const char* name) { return MapRef(open_pinned(pin_dir + "/" + name), name); };
        rules_v4 = map(FENCE_MAP_RULES_V4);
        rules_v6 = map(FENCE_MAP_RULES_V6);
        counters_map = map(FENCE_MAP_RULE_COUNTERS);
        state_map = map(FENCE_MAP_LIMIT_STATE);
    }

    // The trie value of exactly `rule`.
    rule_value value_of(const Cidr& rule) const {
        rule_value value{};
        bool found;
        if (rule.family == Family::V4) {
            rule_key_v4 key{rule.prefixlen, {}};
            std::memcpy(key.addr, rule.addr.data(), sizeof key.addr);
            found = rules_v4.lookup(&key, &value);
        } else {
            rule_key_v6 key{rule.prefixlen, {}};
            std::memcpy(key.addr, rule.addr.data(), sizeof key.addr);
            found = rules_v6.lookup(&key, &value);
        }
        if (!found || value.prefixlen != rule.prefixlen || value.action != FENCE_ACTION_LIMIT) {
            throw std::runtime_error("no limit rule " + format_cidr(rule) + " in the trie");
        }
        return value;
    }

    // The limiter key the program makes for `source` under `rule` (make_limit_key).
    limit_key key_of(const rule_value& rule, const Cidr& source) const {
        limit_key key{};
        key.rule_id = rule.rule_id;
        key.family = static_cast<uint8_t>(source.family);
        for (unsigned bit = 0; bit < rule.key_prefixlen && bit < 128; ++bit) {
            key.addr[bit / 8] |= source.addr[bit / 8] & (0x80u >> (bit % 8));
        }
        return key;
    }

    bool has_key(const limit_key& key) const {
        struct limit_state value {};
        return state_map.lookup(&key, &value);
    }

    // Rewrites an existing key's clock (BPF_EXIST: fails if the program did
    // not create exactly this key).
    void set_clock(const limit_key& key, uint64_t tat_ns) const {
        struct limit_state value {
            tat_ns
        };
        state_map.update(&key, &value, BPF_EXIST);
    }

    size_t key_count() const {
        size_t n = 0;
        limit_key key{}, next{};
        const void* prev = nullptr;
        while (bpf_map_get_next_key(state_map.fd(), prev, &next) == 0) {
            ++n;
            key = next;
            prev = &key;
        }
        if (errno != ENOENT) throw RuntimeError(describe_errno("iterate map limit_state", errno));
        return n;
    }

    // Forgets every key (set-up between sizes, never during a measurement).
    void clear_limit_state() const {
        for (const auto& raw : state_map.keys(sizeof(limit_key))) state_map.erase(raw.data());
    }

    // A rule's counters, summed over CPUs.
    struct rule_counters counters(const Cidr& rule) const {
        uint32_t slot = value_of(rule).slot;
        std::vector<struct rule_counters> per_cpu(possible_cpus());
        struct rule_counters sum {};
        if (!counters_map.lookup(&slot, per_cpu.data())) return sum;
        for (const auto& c : per_cpu) {
            sum.matched += c.matched;
            sum.dropped += c.dropped;
            sum.rate_dropped += c.rate_dropped;
            sum.conns_dropped += c.conns_dropped;
        }
        return sum;
    }
};

// Checks that a measurement's fence packets did what its row says: all of
// them matched `rule`, and either none or all were dropped by rate.
void expect_counters(const LimitMaps& maps, const Cidr& rule, const rule_counters& before, const Row& row,
                     bool dropped_by_rate) {
    rule_counters after = maps.counters(rule);
    uint64_t matched = after.matched - before.matched, dropped = after.dropped - before.dropped;
    uint64_t rate = after.rate_dropped - before.rate_dropped;
    uint64_t want_dropped = dropped_by_rate ? row.fence_packets : 0;
    if (matched != row.fence_packets || dropped != want_dropped || rate != want_dropped) {
        throw std::runtime_error(row.packet + " with " + std::to_string(row.rules_per_family) +
                                 " rules/family: " + format_cidr(rule) + " counted " + std::to_string(matched) +
                                 " matched, " + std::to_string(dropped) + " dropped, " + std::to_string(rate) +
                                 " dropped by rate for " + std::to_string(row.fence_packets) + " packets; expected " +
                                 std::to_string(want_dropped) + " dropped");
    }
}

// Sources never seen before, inside the fast limit rule: 10.1.0.0 upwards for
// IPv4 (10.0.0.0/16 holds the hit source), one /64 each from
// 2001:db8:f000:1::/64 upwards for IPv6 (the key of a v6 source is its /64).
class FreshSources {
public:
    explicit FreshSources(const FamilySetup& f) : f_(f) {}

    Cidr next() {
        Cidr c;
        c.family = f_.family;
        uint32_t n = ++used_;
        if (f_.family == Family::V4) {
            uint32_t host = 0x0a010000u + n;  // 10.1.0.0 + n
            if (host > 0x0affffffu) throw std::runtime_error("ran out of fresh IPv4 sources in 10.0.0.0/8");
            c.prefixlen = 32;
            for (int i = 0; i < 4; ++i) c.addr[i] = static_cast<uint8_t>(host >> (24 - 8 * i));
        } else {
            if (n >= (1u << 28)) throw std::runtime_error("ran out of fresh IPv6 /64s in 2001:db8:f000::/36");
            c.prefixlen = 128;
            c.addr = f_.fast_limit_rule.addr;
            uint32_t net = 0xf0000000u | n;  // bits 32..63: the /36's nibble, then n
            for (int i = 0; i < 4; ++i) c.addr[4 + i] = static_cast<uint8_t>(net >> (24 - 8 * i));
            c.addr[15] = 7;
        }
        if (!f_.fast_limit_rule.contains(c) || f_.hit_source == c) {
            throw std::runtime_error("fresh source " + format_cidr(c) + " is not a new source of " +
                                     format_cidr(f_.fast_limit_rule));
        }
        return c;
    }

    std::vector<std::vector<uint8_t>> frames(uint32_t count, Cidr* last = nullptr) {
        auto make = f_.family == Family::V4 ? tcp_v4 : tcp_v6;
        std::vector<std::vector<uint8_t>> out;
        out.reserve(count);
        Cidr src;
        for (uint32_t i = 0; i < count; ++i) {
            src = next();
            out.push_back(make(src, 25, frames::kSyn));
        }
        if (last) *last = src;
        return out;
    }

private:
    const FamilySetup& f_;
    uint32_t used_ = 0;
};

// Fills limit_state by running SYNs from kFillSources new IPv4 sources through
// the program, one call each, and checks that it is full.
void fill_limit_state(uint32_t size, FreshSources& fresh_v4, const LimitMaps& maps, int fence_fd) {
    auto fill_start = Clock::now();
    for (uint32_t done = 0; done < kFillSources; done += kCreateFramesPerRun) {
        check_interrupted();
        for (const auto& frame : fresh_v4.frames(std::min(kCreateFramesPerRun, kFillSources - done))) {
            expect_verdict("fence", test_run(fence_fd, frame, 1).retval, XDP_PASS, "v4 fill of limit_state", size);
        }
    }
    size_t filled = maps.key_count();
    std::fprintf(stderr, "bench: limit_state filled by %u new sources in %.2f s: %zu of %u keys\n", kFillSources,
                 seconds_since(fill_start), filled, FENCE_LIMIT_KEYS);
    if (filled + kFullSlack < FENCE_LIMIT_KEYS) {
        throw std::runtime_error("limit_state holds " + std::to_string(filled) + " of " +
                                 std::to_string(FENCE_LIMIT_KEYS) + " keys after the fill: not full");
    }
}

void clear_limit_state(const LimitMaps& maps) {
    auto clear_start = Clock::now();
    maps.clear_limit_state();
    std::fprintf(stderr, "bench: limit_state emptied in %.2f s\n", seconds_since(clear_start));
}

// Bucket create with limit_state far from full: every packet from a new source
// (see measure_once_each). Each creates exactly one key: checked by count.
void measure_create_rows(uint32_t size, const std::string& label, const FamilySetup (&families)[2],
                         FreshSources (&fresh)[2], const LimitMaps& maps, int fence_fd, int baseline_fd,
                         std::vector<Row>& rows) {
    for (int i = 0; i < 2; ++i) {
        const auto& f = families[i];
        const std::string name = family_prefix(f.family) + label;
        size_t keys_before = maps.key_count();
        rule_counters before = maps.counters(f.fast_limit_rule);
        rows.push_back(measure_once_each(
            size, name, [&] { return fresh[i].frames(kCreateFramesPerRun); }, XDP_PASS, fence_fd, baseline_fd));
        expect_counters(maps, f.fast_limit_rule, before, rows.back(), false);
        size_t keys_after = maps.key_count();
        if (keys_after != keys_before + rows.back().fence_packets) {
            throw std::runtime_error(name + ": limit_state went from " + std::to_string(keys_before) + " to " +
                                     std::to_string(keys_after) + " keys over " +
                                     std::to_string(rows.back().fence_packets) + " new sources");
        }
        std::fprintf(stderr, "bench:   %-26s fence %3u ns  baseline %3u ns\n", rows.back().packet.c_str(),
                     rows.back().fence_ns, rows.back().baseline_ns);
    }
}

// The limit rows of one rule-set size.
//
// The cost of creating a key depends on the map's history: a never-used LRU
// map hands out its preallocated entries in memory order, one that has been
// full and emptied in a scrambled order (more cache and TLB misses; about
// 1.7x the create cost on the machine this was written on, whatever the rule
// count). So that the sizes compare, `first` measures bucket create once on
// the never-used map (its own row), then fills and empties limit_state; every
// size then starts from an emptied map with that same history. In service the
// map is never emptied: it is never-used until it first fills up, then full.
void measure_limit_rows(uint32_t size, bool first, const FamilySetup (&families)[2], FreshSources (&fresh)[2],
                        const LimitMaps& maps, int fence_fd, int baseline_fd, std::vector<Row>& rows) {
    auto report = [&](const Row& r) {
        std::fprintf(stderr, "bench:   %-26s fence %3u ns  baseline %3u ns\n", r.packet.c_str(), r.fence_ns,
                     r.baseline_ns);
    };
    const std::string create_label = "SYN :25 limited, bucket create (" + std::to_string(kCreateFramesPerRun) +
                                     " new srcs/run, repeat=1 each)";
    if (first) {
        if (maps.key_count() != 0) throw std::runtime_error("limit_state is not empty before its first use");
        measure_create_rows(size,
                            "SYN :25 limited, bucket create, never-used map (" + std::to_string(kCreateFramesPerRun) +
                                " new srcs/run, repeat=1 each)",
                            families, fresh, maps, fence_fd, baseline_fd, rows);
        fill_limit_state(size, fresh[0], maps, fence_fd);
    }
    clear_limit_state(maps);

    // Bucket hit: the hit source's key exists (made by one unmeasured SYN);
    // its clock is set back before every call of at most kHitMaxRepeat packets
    // (see there), so every measured packet is admitted by a lookup and a CAS.
    for (const auto& f : families) {
        auto make = f.family == Family::V4 ? tcp_v4 : tcp_v6;
        const auto pkt = make(f.hit_source, 25, frames::kSyn);
        const std::string name = std::string(family_prefix(f.family)) + "SYN :25 limited, bucket hit";
        expect_verdict("fence", test_run(fence_fd, pkt, 1).retval, XDP_PASS, name + " (first SYN)", size);
        const limit_key key = maps.key_of(maps.value_of(f.fast_limit_rule), f.hit_source);
        Method method{kHitMaxRepeat, [&] { maps.set_clock(key, 0); }};
        rule_counters before = maps.counters(f.fast_limit_rule);
        rows.push_back(measure(size, name, pkt, XDP_PASS, fence_fd, baseline_fd, method));
        expect_counters(maps, f.fast_limit_rule, before, rows.back(), false);
        report(rows.back());
    }

    // Dropped by rate: 1/h with a burst of 1; the first SYN (unmeasured) takes
    // the only token, every measured one is refused by the GCRA test.
    for (const auto& f : families) {
        auto make = f.family == Family::V4 ? tcp_v4 : tcp_v6;
        const auto pkt = make(f.slow_source, 25, frames::kSyn);
        const std::string name = std::string(family_prefix(f.family)) + "SYN :25 limited, dropped by rate";
        expect_verdict("fence", test_run(fence_fd, pkt, 1).retval, XDP_PASS, name + " (first SYN)", size);
        rule_counters before = maps.counters(f.slow_limit_rule);
        rows.push_back(measure(size, name, pkt, XDP_DROP, fence_fd, baseline_fd));
        expect_counters(maps, f.slow_limit_rule, before, rows.back(), true);
        report(rows.back());
    }

    // Control for the bucket create rows: the bucket hit packet measured like
    // them (kCreateFramesPerRun calls of repeat=1 per run, the clock set back
    // before each run). With repeat=1 every call starts cold (caches, branch
    // predictors after the syscall), which costs the fence more than the
    // baseline; bucket create minus this row is the cost of creating the key.
    for (const auto& f : families) {
        auto make = f.family == Family::V4 ? tcp_v4 : tcp_v6;
        const auto pkt = make(f.hit_source, 25, frames::kSyn);
        const std::string name = std::string(family_prefix(f.family)) + "SYN :25 limited, bucket hit (" +
                                 std::to_string(kCreateFramesPerRun) +
                                 " calls/run, repeat=1 each: control for bucket create)";
        const limit_key key = maps.key_of(maps.value_of(f.fast_limit_rule), f.hit_source);
        rule_counters before = maps.counters(f.fast_limit_rule);
        rows.push_back(measure_once_each(
            size, name,
            [&] {
                maps.set_clock(key, 0);
                return std::vector<std::vector<uint8_t>>(kCreateFramesPerRun, pkt);
            },
            XDP_PASS, fence_fd, baseline_fd));
        expect_counters(maps, f.fast_limit_rule, before, rows.back(), false);
        report(rows.back());
    }

    // Bucket create, limit_state far from full.
    measure_create_rows(size, create_label, families, fresh, maps, fence_fd, baseline_fd, rows);

    // Fill limit_state, then measure bucket create again: now every new key
    // takes the slot of an evicted one. The kernel's LRU evicts in batches when
    // its free list runs dry, so the row is the amortised cost per created key,
    // eviction included.
    fill_limit_state(size, fresh[0], maps, fence_fd);
    auto expect_full = [&](const std::string& when) {
        size_t n = maps.key_count();
        if (n + kFullSlack < FENCE_LIMIT_KEYS) {
            throw std::runtime_error("limit_state holds " + std::to_string(n) + " of " +
                                     std::to_string(FENCE_LIMIT_KEYS) + " keys " + when + ": not full");
        }
    };
    const std::string full_label = "SYN :25 limited, bucket create, LRU full (evicts; " +
                                   std::to_string(kCreateFramesPerRun) + " new srcs/run, repeat=1 each)";
    for (int i = 0; i < 2; ++i) {
        const auto& f = families[i];
        const std::string name = family_prefix(f.family) + full_label;
        rule_counters before = maps.counters(f.fast_limit_rule);
        Cidr last;
        rows.push_back(measure_once_each(
            size, name, [&] { return fresh[i].frames(kCreateFramesPerRun, &last); }, XDP_PASS, fence_fd, baseline_fd));
        expect_counters(maps, f.fast_limit_rule, before, rows.back(), false);
        expect_full("after " + name);
        if (!maps.has_key(maps.key_of(maps.value_of(f.fast_limit_rule), last))) {
            throw std::runtime_error(name + ": the newest source " + format_cidr(last) + " has no key");
        }
        report(rows.back());
    }
    clear_limit_state(maps);
}

// The egress (message pacing) program against the tc baseline, on what the
// mail host sends: an SMTP reply to a source no rule paces, with no paced
// rule at all (the program returns after one map read) and with one paced
// rule elsewhere (parse and the rule lookup), and a non-SMTP packet (ssh).
// Paced packets themselves are a few per message and not measured.
void measure_egress_rows(uint32_t size, const FamilySetup (&families)[2], Fence& fence, int pace_fd, int baseline_tc_fd,
                         std::vector<Row>& rows) {
    auto measure_all = [&](const std::string& when) {
        for (const auto& f : families) {
            auto make = f.family == Family::V4 ? reply_v4 : reply_v6;
            const std::string v = family_prefix(f.family);
            for (auto [port, what] : {std::pair<uint16_t, const char*>{25, "reply :25"}, {22, ":22 (not SMTP)"}}) {
                if (port == 22 && when == "no paced rule") continue;
                const std::string name = v + "egress " + what + ", " + when;
                rows.push_back(measure(size, name, make(f.unlisted_source, port), kTcActUnspec, pace_fd, baseline_tc_fd,
                                       {}, kTcActUnspec));
                std::fprintf(stderr, "bench:   %-26s fence %3u ns  baseline %3u ns\n", name.c_str(),
                             rows.back().fence_ns, rows.back().baseline_ns);
            }
        }
    };
    measure_all("no paced rule");
    const Cidr paced[] = {parse_cidr("198.51.100.32/27").cidr, parse_cidr("2001:db8:5ace::/48").cidr};
    LimitSpec pace;
    pace.message_interval_ns = parse_message_rate("5/s");
    for (const Cidr& c : paced) {
        pace.key_prefixlen = c.prefixlen;
        fence.add_rule(c, Action::Limit, "bench: paced", "bench", pace);
    }
    fence.sync_pacing();
    measure_all("a paced rule elsewhere");
    for (const Cidr& c : paced) fence.remove_rule(c);
    fence.sync_pacing();
}

int run(bool spoofed_only) {
    const auto total_start = Clock::now();
    PinDirGuard pin_dir("/sys/fs/bpf/smtpfence-bench-" + std::to_string(getpid()));
    prepare_pin_dir(pin_dir.dir());

    auto load_start = Clock::now();
    LoadedProgram fence_prog(pin_dir.dir(), kMaxRules);
    std::unique_ptr<baseline_bpf, BaselineDeleter> baseline(baseline_bpf__open_and_load());
    if (!baseline) throw RuntimeError(describe_errno("load the baseline program", errno));
    const int fence_fd = fence_prog.xdp_fd();
    const int baseline_fd = bpf_program__fd(baseline->progs.baseline_xdp);
    const int baseline_tc_fd = bpf_program__fd(baseline->progs.baseline_tc);
    Fence fence = Fence::open(pin_dir.dir());
    const LimitMaps limit_maps(pin_dir.dir());
    std::fprintf(stderr, "bench: programs loaded in %.2f s (maps sized for %u rules), pin dir %s\n",
                 seconds_since(load_start), fence.capacity(), pin_dir.dir().c_str());
    if (limit_maps.state_map.max_entries() != FENCE_LIMIT_KEYS) {
        throw std::runtime_error("limit_state holds " + std::to_string(limit_maps.state_map.max_entries()) +
                                 " keys, FENCE_LIMIT_KEYS says " + std::to_string(FENCE_LIMIT_KEYS));
    }

    const FamilySetup families[] = {
        {Family::V4, parse_cidr("203.0.113.0/24").cidr, parse_cidr("203.0.113.7").cidr, parse_cidr("198.51.100.9").cidr,
         parse_cidr("10.0.0.0/8").cidr, parse_cidr("10.0.0.7").cidr, parse_cidr("198.51.100.128/25").cidr,
         parse_cidr("198.51.100.200").cidr, parse_cidr("100.64.0.0/10").cidr, parse_cidr("172.16.0.0/12").cidr},
        {Family::V6, parse_cidr("2001:db8:bad::/48").cidr, parse_cidr("2001:db8:bad::7").cidr,
         parse_cidr("2001:db8:1::9").cidr, parse_cidr("2001:db8:f000::/36").cidr, parse_cidr("2001:db8:f000::7").cidr,
         parse_cidr("2001:db8:dead::/48").cidr, parse_cidr("2001:db8:dead::7").cidr,
         parse_cidr("2001:db8:c000::/36").cidr, parse_cidr("2001:db8:a000::/36").cidr},
    };
    const Spoofer spoofer(baseline.get());
    FreshSources fresh[2] = {FreshSources(families[0]), FreshSources(families[1])};

    std::vector<Packet> packets;
    for (const auto& f : families) {
        auto make = f.family == Family::V4 ? tcp_v4 : tcp_v6;
        std::string v = family_prefix(f.family);
        packets.push_back({v + "SYN :25 blocked src", make(f.blocked_source, 25, frames::kSyn), true});
        if (spoofed_only) continue;
        packets.push_back({v + "SYN :25 unlisted src", make(f.unlisted_source, 25, frames::kSyn), false});
        packets.push_back({v + "ACK :25 (established)", make(f.blocked_source, 25, frames::kAck), false});
        packets.push_back({v + "SYN :22 (not SMTP)", make(f.blocked_source, 22, frames::kSyn), false});
    }

    // One random rule set per family, fixed seed; each size uses a prefix of it,
    // so the sizes are added one after the other.
    std::mt19937_64 rng(kSeed);
    std::vector<Cidr> random_rules[2];
    auto gen_start = Clock::now();
    for (int i = 0; i < 2; ++i) random_rules[i] = random_prefixes(families[i], kLargestSize, rng);
    std::fprintf(stderr, "bench: generated 2 x %u random prefixes in %.2f s\n", kLargestSize, seconds_since(gen_start));

    const uint64_t fast_interval = parse_rate("1000000/s"), slow_interval = parse_rate("1/h");
    const KeyScope per_source{KeyScope::Kind::Source, 0};
    for (const auto& f : families) {
        fence.add_rule(f.blocking_rule, Action::Block, "bench: blocked source", "bench");
        fence.add_rule(f.fast_limit_rule, Action::Limit, "bench: limit 1000000/s burst 1000000", "bench",
                       LimitSpec{fast_interval, 1000000, 0, key_prefixlen_for(per_source, f.fast_limit_rule)});
        fence.add_rule(f.slow_limit_rule, Action::Limit, "bench: limit 1/h burst 1", "bench",
                       LimitSpec{slow_interval, 1, 0, key_prefixlen_for(per_source, f.slow_limit_rule)});
        fence.add_rule(f.spoof_block_rule, Action::Block, "bench: spoofed flood", "bench");
    }

    pin_to_last_cpu();

    std::vector<Row> rows;
    uint32_t loaded = 0;
    for (uint32_t size : spoofed_only ? std::vector<uint32_t>(std::begin(kSpoofedSizes), std::end(kSpoofedSizes))
                                      : std::vector<uint32_t>(std::begin(kSizes), std::end(kSizes))) {
        if (size > loaded) {
            auto add_start = Clock::now();
            for (int i = 0; i < 2; ++i) {
                for (uint32_t r = loaded; r < size; ++r) {
                    if ((r & 1023) == 0) check_interrupted();
                    fence.add_rule(random_rules[i][r], Action::Block, "bench: random prefix", "bench");
                }
            }
            double secs = seconds_since(add_start);
            uint32_t added = 2 * (size - loaded);
            std::fprintf(stderr, "bench: add_rule x %u in %.2f s (%.1f us/rule)\n", added, secs, secs * 1e6 / added);
            loaded = size;
        }
        auto verify_start = Clock::now();
        size_t have = fence.rules().size();
        if (have != 2 * (size_t{size} + kFixedRulesPerFamily)) {
            throw std::runtime_error("expected " + std::to_string(2 * (size + kFixedRulesPerFamily)) +
                                     " rules, Fence::rules() has " + std::to_string(have));
        }
        std::fprintf(stderr,
                     "bench: %u rules/family (+1 block, +2 limit rules each): Fence::rules() listed %zu in %.2f s\n",
                     size, have, seconds_since(verify_start));
        for (const auto& pkt : packets) {
            rows.push_back(measure(size, pkt, fence_fd, baseline_fd));
            const Row& r = rows.back();
            std::fprintf(stderr, "bench:   %-26s fence %3u ns  baseline %3u ns\n", r.packet.c_str(), r.fence_ns,
                         r.baseline_ns);
        }
        measure_spoofed_rows(size, families, spoofer, fence_fd, baseline_fd, rows);
        if (spoofed_only) continue;
        measure_limit_rows(size, size == kSizes[0], families, fresh, limit_maps, fence_fd, baseline_fd, rows);
        measure_egress_rows(size, families, fence, fence_prog.pace_fd(), baseline_tc_fd, rows);
    }

    std::printf(
        "\nsmtpfence XDP vs parse-only baseline, BPF_PROG_TEST_RUN, median of %d interleaved runs of "
        "~%.1f s each\n",
        kRuns, kTargetSeconds);
    std::printf(
        "(rules/family: random prefixes, plus per family the rule that blocks the blocked source "
        "(203.0.113.0/24, 2001:db8:bad::/48) and two limit rules, --per source: --rate 1000000/s --burst "
        "1000000 on 10.0.0.0/8 and 2001:db8:f000::/36 (bucket hit/create rows), --rate 1/h --burst 1 on "
        "198.51.100.128/25 and 2001:db8:dead::/48 (dropped by rate rows))\n");
    std::printf(
        "(ns = the kernel's whole-ns average per packet, harness overhead included; Δ = fence - baseline, "
        "the fence's own cost)\n");
    std::printf(
        "(limit rows: before each size limit_state is emptied, after having been filled once: a never-used "
        "map creates keys faster (never-used map row, first size only), and in service the map is never "
        "emptied. bucket hit: the same packet, the key exists, "
        "its clock is set back before each call of <= %u packets so it never runs out. dropped by rate: the "
        "same packet after the one SYN its bucket holds. bucket create: %d runs of %u frames from sources "
        "never seen before, one BPF_PROG_TEST_RUN call with repeat=1 each, ns = sum of opts.duration / "
        "frames; the baseline runs the same frames the same way, so the per-call timer overhead is in both "
        "columns: compare Δ, not the ratio; each call also starts cold, which costs the fence more: the "
        "bucket hit control row is measured the same way, and bucket create minus it is the cost of "
        "creating the key. LRU full: the same after filling limit_state (%u keys) by %u new "
        "sources, so each new key evicts one (amortised: the kernel evicts in batches).)\n",
        kHitMaxRepeat, kRuns, kCreateFramesPerRun, FENCE_LIMIT_KEYS, kFillSources);
    std::printf(
        "(egress rows: the tc egress program of message pacing vs the same parse as a tc program "
        "(baseline_tc), on a 40-byte packet the mail host sends to a source no rule paces; \"no paced rule\": "
        "the program returns after reading its config; \"a paced rule elsewhere\": limit --messages 5/s on "
        "198.51.100.32/27 and 2001:db8:5ace::/48, so SMTP replies are parsed and looked up)\n\n");
    std::printf(
        "(spoofed flood rows: every packet's source is random inside 100.64.0.0/10 or 2001:db8:c000::/36 "
        "(blocked) or 172.16.0.0/12 or 2001:db8:a000::/36 (unlisted), rewritten by spoof_xdp before it "
        "tail-calls the fence or the baseline, so both columns pay the rewrite and the tail call)\n\n");
    std::printf(
        "| rules/family | packet | fence ns | baseline ns | ratio | Δ ns | fence verdict | fence min-max | "
        "baseline min-max |\n");
    std::printf("|---:|---|---:|---:|---:|---:|---|---:|---:|\n");
    for (const auto& r : rows) {
        double ratio = r.baseline_ns ? static_cast<double>(r.fence_ns) / r.baseline_ns : 0.0;
        std::printf("| %u | %s | %u | %u | %.2f | %+d | %s | %u-%u | %u-%u |\n", r.rules_per_family, r.packet.c_str(),
                    r.fence_ns, r.baseline_ns, ratio, static_cast<int>(r.fence_ns) - static_cast<int>(r.baseline_ns),
                    r.verdict, r.fence_min, r.fence_max, r.baseline_min, r.baseline_max);
    }
    std::printf("\ntotal run time %.1f s\n", seconds_since(total_start));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const bool spoofed_only = argc == 2 && std::string(argv[1]) == "--spoofed";
    if (argc > 1 && !spoofed_only) {
        std::fprintf(stderr, "usage: bench_xdp [--spoofed]\n");
        return 2;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    try {
        return run(spoofed_only);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench: %s\n", e.what());
        return 1;
    }
}
