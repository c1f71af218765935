// Benchmark, not a test: what imported lists cost, in one run.
//
//  1. Per-SYN cost with 0, 1k, 100k and 1M listed prefixes per family, for
//     the same source repeated, sources drawn at random from the listed
//     prefixes, and sources drawn at random from the whole address space
//     (mostly unlisted). Each packet's source is written by random_source
//     (bench/lists.bpf.c), which then tail-calls the program measured:
//       parse   the bare parse (the baseline; ratios are against it)
//       lookup  the parse and the fence's lookup (rules.h find_judges)
//       fence   the whole smtpfence XDP program on a SYN (counters, attempts,
//               per-source accounting included)
//       lpm     the parse and one kernel LPM trie lookup over the same prefixes
//     Medians of 5 rounds, the programs alternating; BPF_PROG_TEST_RUN's
//     ns per run, 1M runs each.
//  2. Publishing the list set (compile, build the maps, switch): the time of
//     an import at each size, without process start or reading the file.
//  3. Kernel memory per prefix: MemAvailable's drop over the 1M import (the
//     old set is freed by then; the benchmark's own reference tries are
//     filled before).
//
// Needs root (BPF, bpffs). Works in a private pin directory under /sys/fs/bpf
// that it removes when done. Attaches nothing.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bpf/pin_dir.h"
#include "fence/lists.h"
#include "fence/program.h"
#include "fence/rule_store.h"
#include "frames.h"
#include "lists_bpf.skel.h"
#include "text/cidr.h"

using namespace smtpfence;
using namespace smtpfence::frames;

namespace {

constexpr uint32_t kSources = 1u << 20;
constexpr int kRounds = 5;
constexpr uint32_t kRepeat = 1000000;

struct Source {
    uint8_t addr[16];
};

Cidr random_prefix(std::mt19937& rng, Family family) {
    Cidr c;
    c.family = family;
    if (family == Family::V4) {
        // DROP-like: mostly /24, some shorter, some longer.
        const uint32_t roll = rng() % 10;
        c.prefixlen = static_cast<uint8_t>(roll < 6 ? 24 : roll < 8 ? 16 + rng() % 8 : 25 + rng() % 8);
        uint32_t addr = rng() | 0x01000000u;
        addr &= c.prefixlen ? ~0u << (32 - c.prefixlen) : 0;
        for (int i = 0; i < 4; ++i) c.addr[i] = static_cast<uint8_t>(addr >> (24 - 8 * i));
    } else {
        const uint32_t roll = rng() % 10;
        c.prefixlen = static_cast<uint8_t>(roll < 5 ? 48 : roll < 8 ? 32 + rng() % 16 : 49 + rng() % 16);
        for (auto& b : c.addr) b = static_cast<uint8_t>(rng());
        c.addr[0] = static_cast<uint8_t>(0x20 | (c.addr[0] & 0x0f));  // 2000::/4
        for (size_t bit = c.prefixlen; bit < 128; ++bit) c.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
    }
    return c;
}

Source inside(std::mt19937& rng, const Cidr& c) {
    Source s{};
    const size_t bytes = c.family == Family::V4 ? 4 : 16;
    for (size_t i = 0; i < bytes; ++i) {
        const size_t first_bit = i * 8;
        uint8_t random = static_cast<uint8_t>(rng());
        uint8_t keep = first_bit >= c.prefixlen ? 0 : c.prefixlen >= first_bit + 8 ? 0xff
                                                                                    : static_cast<uint8_t>(0xff00 >> (c.prefixlen - first_bit));
        s.addr[i] = static_cast<uint8_t>((c.addr[i] & keep) | (random & ~keep));
    }
    return s;
}

Source anywhere(std::mt19937& rng, Family family) {
    Source s{};
    for (auto& b : s.addr) b = static_cast<uint8_t>(rng());
    if (family == Family::V6) s.addr[0] = static_cast<uint8_t>(0x20 | (s.addr[0] & 0x0f));
    return s;
}

// The kernel's own memory, from /proc/meminfo (KiB): a map's hash elements
// come from the slab, its arrays from vmalloc, per-CPU values from the
// per-CPU allocator. MemAvailable also moves with the page cache.
struct KernelMemory {
    int64_t slab = 0, vmalloc = 0, percpu = 0, available = 0;

    static KernelMemory now() {
        KernelMemory m;
        std::ifstream meminfo("/proc/meminfo");
        std::string key, unit;
        int64_t value;
        while (meminfo >> key >> value >> unit) {
            if (key == "Slab:") m.slab = value;
            if (key == "VmallocUsed:") m.vmalloc = value;
            if (key == "Percpu:") m.percpu = value;
            if (key == "MemAvailable:") m.available = value;
        }
        return m;
    }
    int64_t kernel() const { return slab + vmalloc + percpu; }
};

double run_ns(int prog_fd, const Bytes& frame) {
    std::vector<uint8_t> data(frame.begin(), frame.end());
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_size_in = static_cast<uint32_t>(data.size()),
                .repeat = kRepeat);
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) throw std::runtime_error("BPF_PROG_TEST_RUN failed");
    return static_cast<double>(opts.duration);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main() {
    if (geteuid() != 0) {
        std::fprintf(stderr, "bench_lists: needs root (BPF)\n");
        return 1;
    }
    const std::string pin_dir = "/sys/fs/bpf/smtpfence-bench-lists-" + std::to_string(getpid());
    const std::string store = "/tmp/smtpfence-bench-lists-" + std::to_string(getpid());
    int status = 0;
    try {
        prepare_pin_dir(pin_dir);
        LoadedProgram program(pin_dir, FENCE_DEFAULT_MAX_RULES);
        FenceLists lists = FenceLists::open(pin_dir, store);

        LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir.c_str());
        lists_bpf* skel = lists_bpf__open_opts(&open_opts);
        if (!skel || lists_bpf__load(skel) != 0) throw std::runtime_error("load bench/lists.bpf.c");

        std::mt19937 rng(42);
        const std::vector<size_t> sizes = {0, 1000, 100000, 1000000};
        std::vector<Cidr> all4, all6;
        for (size_t i = 0; i < sizes.back(); ++i) {
            all4.push_back(random_prefix(rng, Family::V4));
            all6.push_back(random_prefix(rng, Family::V6));
        }
        const Bytes syn[2] = {syn4("198.51.100.1"), syn6("2001:db8::1")};
        const struct {
            const char* name;
            int fd;
        } measured[] = {{"parse", bpf_program__fd(skel->progs.parse_only)},
                        {"lookup", bpf_program__fd(skel->progs.lookup_only)},
                        {"fence", program.xdp_fd()},
                        {"lpm", bpf_program__fd(skel->progs.lpm_reference)}};
        const int sources_fd = bpf_map__fd(skel->maps.bench_sources);
        const int measured_fd = bpf_map__fd(skel->maps.measured);

        std::printf("per-SYN cost, ns (x the bare parse); lookup = the fence's rule+list lookup alone, fence = the "
                    "whole XDP program, lpm = one kernel LPM trie lookup over the same prefixes\n");
        std::printf("%9s %6s %-16s %8s %15s %15s %15s %10s\n", "prefixes", "family", "sources", "parse", "lookup",
                    "fence", "lpm", "import ms");
        size_t filled = 0;
        for (size_t size : sizes) {
            // The reference tries get the new prefixes; the list is imported whole.
            for (; filled < size; ++filled) {
                rule_key_v4 k4{all4[filled].prefixlen, {}};
                std::memcpy(k4.addr, all4[filled].addr.data(), 4);
                rule_key_v6 k6{all6[filled].prefixlen, {}};
                std::memcpy(k6.addr, all6[filled].addr.data(), 16);
                const uint32_t one = 1;
                bpf_map_update_elem(bpf_map__fd(skel->maps.reference_v4), &k4, &one, 0);
                bpf_map_update_elem(bpf_map__fd(skel->maps.reference_v6), &k6, &one, 0);
            }
            StoredList list;
            list.name = "bench";
            list.source = "bench";
            list.source_sha256 = std::string(64, '0');
            list.v4.assign(all4.begin(), all4.begin() + static_cast<std::ptrdiff_t>(size));
            list.v6.assign(all6.begin(), all6.begin() + static_cast<std::ptrdiff_t>(size));
            std::sort(list.v4.begin(), list.v4.end());
            list.v4.erase(std::unique(list.v4.begin(), list.v4.end()), list.v4.end());
            std::sort(list.v6.begin(), list.v6.end());
            list.v6.erase(std::unique(list.v6.begin(), list.v6.end()), list.v6.end());
            // Measured from no list set at all: the previous size's goes first.
            if (size == sizes.back()) lists.unimport(list.name);
            const KernelMemory mem_before = KernelMemory::now();
            const auto t0 = std::chrono::steady_clock::now();
            if (size) lists.import(list);
            const double import_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            const KernelMemory mem_after = KernelMemory::now();

            for (int family = 0; family < 2; ++family) {
                const std::vector<Cidr>& listed = family == 0 ? all4 : all6;
                const Family fam = family == 0 ? Family::V4 : Family::V6;
                for (const char* kind : {"repeated", "random listed", "random any"}) {
                    const bool repeated = std::string(kind) == "repeated";
                    if (size == 0 && std::string(kind) == "random listed") continue;
                    std::vector<Source> sources(repeated ? 1 : kSources);
                    for (Source& s : sources) {
                        s = std::string(kind) == "random any" || size == 0
                                ? anywhere(rng, fam)
                                : inside(rng, listed[rng() % size]);
                    }
                    for (uint32_t i = 0; i < sources.size(); ++i) {
                        bpf_map_update_elem(sources_fd, &i, &sources[i], 0);
                    }
                    skel->bss->source_mask = static_cast<uint32_t>(sources.size() - 1);
                    std::vector<double> ns[4];
                    for (int round = 0; round < kRounds; ++round) {
                        for (int m = 0; m < 4; ++m) {
                            const uint32_t zero = 0;
                            bpf_map_update_elem(measured_fd, &zero, &measured[m].fd, 0);
                            ns[m].push_back(run_ns(bpf_program__fd(skel->progs.random_source), syn[family]));
                        }
                    }
                    const double parse = median(ns[0]);
                    char cells[3][32];
                    for (int m = 1; m < 4; ++m) {
                        std::snprintf(cells[m - 1], sizeof cells[0], "%.0f (%.1fx)", median(ns[m]), median(ns[m]) / parse);
                    }
                    std::printf("%9zu %6s %-16s %8.0f %15s %15s %15s %10.0f\n", size, family ? "v6" : "v4", kind, parse,
                                cells[0], cells[1], cells[2], import_ms);
                }
            }
            if (size == sizes.back()) {
                const double prefixes = static_cast<double>(list.v4.size() + list.v6.size());
                auto row = [&](const char* what, int64_t kib) {
                    std::printf("  %-34s %8.1f MiB %6.0f bytes per prefix\n", what, static_cast<double>(kib) / 1024,
                                static_cast<double>(kib) * 1024 / prefixes);
                };
                std::printf("kernel memory of the list set at %zu IPv4 + %zu IPv6 prefixes (/proc/meminfo deltas over "
                            "the import):\n",
                            list.v4.size(), list.v6.size());
                row("slab (hash elements)", mem_after.slab - mem_before.slab);
                row("vmalloc (arrays, hash buckets)", mem_after.vmalloc - mem_before.vmalloc);
                row("per-CPU", mem_after.percpu - mem_before.percpu);
                row("kernel total", mem_after.kernel() - mem_before.kernel());
                row("MemAvailable drop (cross-check)", mem_before.available - mem_after.available);
            }
        }
        lists_bpf__destroy(skel);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_lists: %s\n", e.what());
        status = 1;
    }
    std::error_code ec;
    std::filesystem::remove_all(pin_dir, ec);
    std::filesystem::remove_all(store, ec);
    return status;
}
