// What the BPF test files share: the fixture that loads the program against a
// private pin directory, the test run itself, and the global counters as a
// comparable value. Frames come from tests/support/frames.h.
#pragma once

#include <gtest/gtest.h>

#include <sched.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "fence/program.h"
#include "fence/rule_store.h"
#include "frames.h"
#include "strict.h"

namespace smtpfence::bpftest {

// The tests build their frames with unqualified calls: v4(...), tcp({...}).
using namespace smtpfence::frames;

// ---------------------------------------------------------------------------
// Clocks as the program reads them: bpf_ktime_get_ns() is CLOCK_MONOTONIC
// (limiter and pace clocks), bpf_ktime_get_boot_ns() CLOCK_BOOTTIME (rule
// deadlines).

uint64_t monotonic_ns();
uint64_t boot_ns();

// ---------------------------------------------------------------------------
// The global counters (fence_stats) as a value gtest can compare and print.

struct GlobalCounts {
    uint64_t seen = 0, passed = 0, dropped = 0, smtp = 0, smtp_syn = 0, fragments = 0, malformed = 0;
    bool operator==(const GlobalCounts&) const = default;
};

std::ostream& operator<<(std::ostream& os, const GlobalCounts& c);
GlobalCounts global_counts(const fence_stats& s);
GlobalCounts operator-(const GlobalCounts& a, const GlobalCounts& b);

// ---------------------------------------------------------------------------
// Fixture: the program loaded against a pin directory of its own, never
// attached. Fresh maps per test let tests assert counters as exact totals, and
// keep them off any instance the machine runs. The test runs on one CPU, as
// RSS keeps a flow on one: the sketch and a flow table are per CPU.

class PinnedFenceTest : public ::testing::Test {
protected:
    // A derived SetUp calls this first and returns when IsSkipped() or
    // HasFatalFailure() (a skip in strict mode, tests/support/strict.h).
    void SetUp() override;
    void TearDown() override;

    Fence& fence() { return *fence_; }
    const Fence& fence() const { return *fence_; }
    const std::string& pin_dir() const { return pin_dir_; }

    AddResult add(const std::string& cidr, Action action);

    // The program's return value on `frame` (of the last run, with `repeat`
    // runs back to back in the kernel), or -errno when the kernel refuses the
    // run. Safe to call from several threads at once.
    int run_raw(const Bytes& frame, uint32_t repeat = 1) const;
    // The egress (message pacing) program on an outgoing `frame`: its return
    // value, and the skb priority it leaves (0 in).
    struct EgressRun {
        int retval = 0;
        uint32_t priority = 0;
    };
    EgressRun run_pace(const Bytes& frame) const;

    GlobalCounts global() const { return global_counts(fence_->counters()); }

    // Moves the test (and so its test runs) to `cpu`.
    static void run_on_cpu(int cpu);
    // The CPUs the test may run on (its affinity before SetUp pinned it).
    const cpu_set_t& allowed_cpus() const { return affinity_; }

private:
    std::string pin_dir_;
    cpu_set_t affinity_{};
    std::optional<LoadedProgram> program_;
    std::optional<Fence> fence_;
};

}  // namespace smtpfence::bpftest
