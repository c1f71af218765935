// Benchmark, not a test: the per-packet cost of the smtpfence XDP program
// against a baseline that only parses Ethernet/IP/TCP (bench/baseline.bpf.c),
// measured with BPF_PROG_TEST_RUN for rule sets of growing size.
//
// For each size (0, 1000, 100000 random prefixes per family, plus the one rule
// per family that blocks the benchmarked source) and each packet (v4 and v6:
// SYN to 25 from a blocked source, SYN to 25 from an unlisted source, ACK on
// port 25, SYN to 22), the baseline and the fence run alternately, five times
// each; the table shows the medians of the kernel's ns/packet.
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
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "baseline_bpf.skel.h"
#include "bpf_handles.h"
#include "cidr.h"
#include "errors.h"
#include "fence.h"

namespace {

using namespace smtpfence;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kSizes[] = {0, 1000, 100000};
constexpr uint32_t kLargestSize = 100000;
// Rules per family: the random ones plus the blocking rule, with room to spare.
constexpr uint32_t kMaxRules = kLargestSize + 1024;
constexpr uint64_t kSeed = 0x736d7466;  // fixed: every run benchmarks the same rule set
constexpr int kRuns = 5;
constexpr double kTargetSeconds = 0.3;  // per measurement
constexpr uint32_t kCalibrationRepeat = 200000;

volatile std::sig_atomic_t g_interrupted = 0;

void on_signal(int) { g_interrupted = 1; }

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

constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpAck = 0x10;

struct Packet {
    std::string name;
    std::vector<uint8_t> bytes;
    bool expect_drop_when_blocked;  // XDP_DROP once the blocking rule is in place
};

void put16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}

void put_tcp(std::vector<uint8_t>& b, size_t off, uint16_t dport, uint8_t flags) {
    put16(b, off, 40000);       // source port
    put16(b, off + 2, dport);   // destination port
    b[off + 4] = 0x12;          // sequence number, anything
    b[off + 12] = 5 << 4;       // data offset: 20 bytes, no options
    b[off + 13] = flags;
    put16(b, off + 14, 64240);  // window
}

std::vector<uint8_t> ethernet(uint16_t proto, size_t l3_len) {
    std::vector<uint8_t> b(14 + l3_len, 0);
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01}, src[6] = {0x02, 0, 0, 0, 0, 0x02};
    std::memcpy(&b[0], dst, 6);
    std::memcpy(&b[6], src, 6);
    put16(b, 12, proto);
    return b;
}

std::vector<uint8_t> tcp_v4(const Cidr& src, uint16_t dport, uint8_t flags) {
    auto b = ethernet(0x0800, 20 + 20);
    size_t ip = 14;
    b[ip] = 0x45;  // version 4, IHL 5
    put16(b, ip + 2, 40);
    put16(b, ip + 6, 0x4000);  // DF, not a fragment
    b[ip + 8] = 64;
    b[ip + 9] = 6;  // TCP
    std::memcpy(&b[ip + 12], src.addr.data(), 4);
    const uint8_t dst[4] = {192, 0, 2, 1};
    std::memcpy(&b[ip + 16], dst, 4);
    put_tcp(b, ip + 20, dport, flags);
    return b;
}

std::vector<uint8_t> tcp_v6(const Cidr& src, uint16_t dport, uint8_t flags) {
    auto b = ethernet(0x86dd, 40 + 20);
    size_t ip = 14;
    b[ip] = 0x60;  // version 6
    put16(b, ip + 4, 20);
    b[ip + 6] = 6;  // next header: TCP
    b[ip + 7] = 64;
    std::memcpy(&b[ip + 8], src.addr.data(), 16);
    Cidr dst = parse_cidr("2001:db8:25::1").cidr;
    std::memcpy(&b[ip + 24], dst.addr.data(), 16);
    put_tcp(b, ip + 40, dport, flags);
    return b;
}

// ---- rules ------------------------------------------------------------------

struct FamilySetup {
    Family family;
    Cidr blocking_rule;
    Cidr blocked_source;   // inside blocking_rule
    Cidr unlisted_source;  // covered by no rule
};

// `count` distinct random prefixes, v4 /16../32 or v6 /32../128, none covering
// either benchmarked source and none equal to the blocking rule.
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
        if (!seen.insert(c).second) continue;
        out.push_back(c);
    }
    return out;
}

// ---- measurement ------------------------------------------------------------

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

// Repeat count that makes one measurement last about kTargetSeconds.
uint32_t calibrate(int prog_fd, const std::vector<uint8_t>& pkt) {
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
};

const char* verdict_name(uint32_t retval) {
    switch (retval) {
    case XDP_PASS: return "PASS";
    case XDP_DROP: return "DROP";
    case XDP_ABORTED: return "ABORTED";
    case XDP_TX: return "TX";
    case XDP_REDIRECT: return "REDIRECT";
    }
    return "?";
}

Row measure(uint32_t size, const Packet& pkt, int fence_fd, int baseline_fd) {
    const uint32_t expected = pkt.expect_drop_when_blocked ? XDP_DROP : XDP_PASS;
    const uint32_t fence_repeat = calibrate(fence_fd, pkt.bytes);
    const uint32_t baseline_repeat = calibrate(baseline_fd, pkt.bytes);
    std::vector<uint32_t> fence, baseline;
    uint32_t fence_retval = 0;
    for (int run = 0; run < kRuns; ++run) {
        check_interrupted();
        RunResult b = test_run(baseline_fd, pkt.bytes, baseline_repeat);
        if (b.retval != XDP_PASS) {
            throw std::runtime_error("baseline returned " + std::string(verdict_name(b.retval)) + " on " + pkt.name);
        }
        baseline.push_back(b.ns_per_packet);
        RunResult f = test_run(fence_fd, pkt.bytes, fence_repeat);
        if (f.retval != expected) {
            throw std::runtime_error("fence returned " + std::string(verdict_name(f.retval)) + " on " + pkt.name +
                                     " with " + std::to_string(size) + " rules/family, expected " +
                                     verdict_name(expected));
        }
        fence_retval = f.retval;
        fence.push_back(f.ns_per_packet);
    }
    return {size,
            pkt.name,
            median(fence),
            median(baseline),
            *std::min_element(fence.begin(), fence.end()),
            *std::max_element(fence.begin(), fence.end()),
            *std::min_element(baseline.begin(), baseline.end()),
            *std::max_element(baseline.begin(), baseline.end()),
            verdict_name(fence_retval)};
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

int run() {
    const auto total_start = Clock::now();
    PinDirGuard pin_dir("/sys/fs/bpf/smtpfence-bench-" + std::to_string(getpid()));
    prepare_pin_dir(pin_dir.dir());

    auto load_start = Clock::now();
    LoadedProgram fence_prog(pin_dir.dir(), kMaxRules);
    std::unique_ptr<baseline_bpf, BaselineDeleter> baseline(baseline_bpf__open_and_load());
    if (!baseline) throw RuntimeError(describe_errno("load the baseline program", errno));
    const int fence_fd = fence_prog.fd();
    const int baseline_fd = bpf_program__fd(baseline->progs.baseline_xdp);
    Fence fence = Fence::open(pin_dir.dir());
    std::fprintf(stderr, "bench: programs loaded in %.2f s (maps sized for %u rules), pin dir %s\n",
                 seconds_since(load_start), fence.capacity(), pin_dir.dir().c_str());

    const FamilySetup families[] = {
        {Family::V4, parse_cidr("203.0.113.0/24").cidr, parse_cidr("203.0.113.7").cidr,
         parse_cidr("198.51.100.9").cidr},
        {Family::V6, parse_cidr("2001:db8:bad::/48").cidr, parse_cidr("2001:db8:bad::7").cidr,
         parse_cidr("2001:db8:1::9").cidr},
    };

    std::vector<Packet> packets;
    for (const auto& f : families) {
        auto make = f.family == Family::V4 ? tcp_v4 : tcp_v6;
        std::string v = f.family == Family::V4 ? "v4 " : "v6 ";
        packets.push_back({v + "SYN :25 blocked src", make(f.blocked_source, 25, kTcpSyn), true});
        packets.push_back({v + "SYN :25 unlisted src", make(f.unlisted_source, 25, kTcpSyn), false});
        packets.push_back({v + "ACK :25 (established)", make(f.blocked_source, 25, kTcpAck), false});
        packets.push_back({v + "SYN :22 (not SMTP)", make(f.blocked_source, 22, kTcpSyn), false});
    }

    // One random rule set per family, fixed seed; each size uses a prefix of it,
    // so the sizes are added one after the other.
    std::mt19937_64 rng(kSeed);
    std::vector<Cidr> random_rules[2];
    auto gen_start = Clock::now();
    for (int i = 0; i < 2; ++i) random_rules[i] = random_prefixes(families[i], kLargestSize, rng);
    std::fprintf(stderr, "bench: generated 2 x %u random prefixes in %.2f s\n", kLargestSize,
                 seconds_since(gen_start));

    for (const auto& f : families) fence.add_rule(f.blocking_rule, Action::Block, "bench: blocked source", "bench");

    pin_to_last_cpu();

    std::vector<Row> rows;
    uint32_t loaded = 0;
    for (uint32_t size : kSizes) {
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
            std::fprintf(stderr, "bench: add_rule x %u in %.2f s (%.1f us/rule)\n", added, secs,
                         secs * 1e6 / added);
            loaded = size;
        }
        auto verify_start = Clock::now();
        size_t have = fence.rules().size();
        if (have != 2 * (size_t{size} + 1)) {
            throw std::runtime_error("expected " + std::to_string(2 * (size + 1)) + " rules, Fence::rules() has " +
                                     std::to_string(have));
        }
        std::fprintf(stderr, "bench: %u rules/family (+1 blocking rule each): Fence::rules() listed %zu in %.2f s\n",
                     size, have, seconds_since(verify_start));
        for (const auto& pkt : packets) {
            rows.push_back(measure(size, pkt, fence_fd, baseline_fd));
            const Row& r = rows.back();
            std::fprintf(stderr, "bench:   %-26s fence %3u ns  baseline %3u ns\n", r.packet.c_str(), r.fence_ns,
                         r.baseline_ns);
        }
    }

    std::printf("\nsmtpfence XDP vs parse-only baseline, BPF_PROG_TEST_RUN, median of %d interleaved runs of "
                "~%.1f s each\n",
                kRuns, kTargetSeconds);
    std::printf("(rules/family: random prefixes, plus the one rule per family that blocks the blocked source: "
                "203.0.113.0/24, 2001:db8:bad::/48)\n");
    std::printf("(ns = the kernel's whole-ns average per packet, harness overhead included; Δ = fence - baseline, "
                "the fence's own cost)\n\n");
    std::printf("| rules/family | packet | fence ns | baseline ns | ratio | Δ ns | fence verdict | fence min-max | "
                "baseline min-max |\n");
    std::printf("|---:|---|---:|---:|---:|---:|---|---:|---:|\n");
    for (const auto& r : rows) {
        double ratio = r.baseline_ns ? static_cast<double>(r.fence_ns) / r.baseline_ns : 0.0;
        std::printf("| %u | %s | %u | %u | %.2f | %+d | %s | %u-%u | %u-%u |\n", r.rules_per_family,
                    r.packet.c_str(), r.fence_ns, r.baseline_ns, ratio,
                    static_cast<int>(r.fence_ns) - static_cast<int>(r.baseline_ns), r.verdict, r.fence_min, r.fence_max, r.baseline_min,
                    r.baseline_max);
    }
    std::printf("\ntotal run time %.1f s\n", seconds_since(total_start));
    return 0;
}

}  // namespace

int main() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    try {
        return run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench: %s\n", e.what());
        return 1;
    }
}
