// How long `smtpfence import` spends reading a big list: parsing N random
// lines (IPv4 and IPv6 mixed, some with DROP-style comments), hashing them,
// and writing and reading back the stored list file. Median of 5 runs.
//   build/bench/bench_prefix_list [LINES]   (default 1000000)
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "text/list_file.h"
#include "text/prefix_list.h"

namespace {

using namespace smtpfence;

// One random prefix per line: IPv4 /16 to /32 (hosts written bare), IPv6 /32
// to /128, one in three lines followed by a comment.
std::string random_lines(size_t count) {
    std::mt19937_64 random(1);
    std::string content;
    content.reserve(count * 32);
    for (size_t i = 0; i < count; ++i) {
        Cidr cidr;
        cidr.family = random() % 4 == 0 ? Family::V6 : Family::V4;
        const unsigned max = cidr.family == Family::V4 ? 32 : 128;
        cidr.prefixlen = static_cast<uint8_t>(cidr.family == Family::V4 ? 16 + random() % 17 : 32 + random() % 97);
        for (auto& byte : cidr.addr) byte = static_cast<uint8_t>(random());
        for (unsigned bit = cidr.prefixlen; bit < 128; ++bit) {
            cidr.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
        }
        content += cidr.prefixlen == max ? format_address(cidr.family, cidr.addr) : format_cidr(cidr);
        content += random() % 3 == 0 ? " ; SBL123456\n" : "\n";
    }
    return content;
}

double cpu_ms() {
    timespec now{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

// The median of 5 runs, wall clock and CPU time: on a shared machine the
// wall clock also counts the time other processes had the CPU.
struct Timing {
    double wall_ms, cpu_ms;
};

Timing median_of_5(const std::function<void()>& run) {
    std::vector<double> walls, cpus;
    for (int i = 0; i < 5; ++i) {
        const auto wall_start = std::chrono::steady_clock::now();
        const double cpu_start = cpu_ms();
        run();
        cpus.push_back(cpu_ms() - cpu_start);
        walls.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_start).count());
    }
    std::sort(walls.begin(), walls.end());
    std::sort(cpus.begin(), cpus.end());
    return {walls[2], cpus[2]};
}

void print(const char* what, Timing timing) {
    std::printf("%-18s %8.1f ms wall %8.1f ms CPU\n", what, timing.wall_ms, timing.cpu_ms);
}

}  // namespace

int main(int argc, char** argv) {
    const size_t lines = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    const std::string content = random_lines(lines);

    PrefixList list;
    const Timing parse = median_of_5([&] { list = parse_prefix_list(content, "bench", false); });
    std::string hash;
    const Timing sha = median_of_5([&] { hash = sha256_hex(content); });

    StoredList stored;
    stored.name = "bench";
    stored.source = "bench";
    stored.source_sha256 = hash;
    stored.v4 = list.v4;
    stored.v6 = list.v6;
    std::string file;
    const Timing format = median_of_5([&] { file = format_list_file(stored); });
    StoredList read;
    const Timing reparse = median_of_5([&] { read = parse_list_file(file, "bench.list"); });

    std::printf("%zu lines (%.1f MB): %zu IPv4 + %zu IPv6 prefixes, %zu duplicates\n", lines, content.size() / 1e6,
                list.v4.size(), list.v6.size(), list.duplicates);
    print("parse_prefix_list", parse);
    print("sha256_hex", sha);
    print("format_list_file", format);
    print("parse_list_file", reparse);
    return read.v4 == list.v4 && read.v6 == list.v6 ? 0 : 1;
}
