#include "bpf_test_support.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "bpf/map.h"
#include "bpf/pin_dir.h"
#include "text/cidr.h"

namespace smtpfence::bpftest {

// ---------------------------------------------------------------------------
// Clocks

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t boot_ns() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// ---------------------------------------------------------------------------
// Counters

std::ostream& operator<<(std::ostream& os, const GlobalCounts& c) {
    return os << "{seen " << c.seen << ", passed " << c.passed << ", dropped " << c.dropped << ", smtp " << c.smtp
              << ", smtp_syn " << c.smtp_syn << ", fragments " << c.fragments << ", malformed " << c.malformed << "}";
}

GlobalCounts global_counts(const fence_stats& s) {
    return {s.seen, s.passed, s.dropped, s.smtp, s.smtp_syn, s.fragments, s.malformed};
}

GlobalCounts operator-(const GlobalCounts& a, const GlobalCounts& b) {
    return {a.seen - b.seen,         a.passed - b.passed,       a.dropped - b.dropped,    a.smtp - b.smtp,
            a.smtp_syn - b.smtp_syn, a.fragments - b.fragments, a.malformed - b.malformed};
}

// ---------------------------------------------------------------------------
// Fixture

void PinnedFenceTest::SetUp() {
    if (geteuid() != 0) SMTPFENCE_SKIP("needs root (CAP_BPF, a bpffs on /sys/fs/bpf)");
    ASSERT_EQ(sched_getaffinity(0, sizeof affinity_, &affinity_), 0);
    run_on_cpu(sched_getcpu());
    // pid and a per-process count: test binaries running side by side, and the
    // tests of one binary, never share maps.
    static int instance = 0;
    pin_dir_ = "/sys/fs/bpf/smtpfence-bpftest-" + std::to_string(getpid()) + "-" + std::to_string(instance++);
    prepare_pin_dir(pin_dir_);
    program_.emplace(pin_dir_, 1024);
    fence_.emplace(Fence::open(pin_dir_));
}

void PinnedFenceTest::TearDown() {
    if (CPU_COUNT(&affinity_) > 0) sched_setaffinity(0, sizeof affinity_, &affinity_);
    fence_.reset();
    program_.reset();
    if (!pin_dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(pin_dir_, ec);
        EXPECT_FALSE(ec) << "remove " << pin_dir_ << ": " << ec.message();
    }
}

void PinnedFenceTest::run_on_cpu(int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0) << "cpu " << cpu;
}

AddResult PinnedFenceTest::add(const std::string& cidr, Action action) {
    return fence().add_rule(parse_cidr(cidr).cidr, action, "bpf test", "gtest");
}

int PinnedFenceTest::run_raw(const Bytes& frame, uint32_t repeat) const {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
                .repeat = static_cast<int>(repeat));
    int err = bpf_prog_test_run_opts(program_->xdp_fd(), &opts);
    return err != 0 ? err : static_cast<int>(opts.retval);
}

PinnedFenceTest::EgressRun PinnedFenceTest::run_pace(const Bytes& frame) const {
    __sk_buff ctx{};
    __sk_buff ctx_out{};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
                .ctx_in = &ctx, .ctx_out = &ctx_out, .ctx_size_in = sizeof ctx, .ctx_size_out = sizeof ctx_out,
                .repeat = 1);
    int err = bpf_prog_test_run_opts(program_->pace_fd(), &opts);
    if (err != 0) return {err, 0};
    return {static_cast<int>(opts.retval), ctx_out.priority};
}

}  // namespace smtpfence::bpftest
