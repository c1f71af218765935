// The numbers README.md promises, pinned as literals: a change to one of the
// data path's constants fails here until the README (and this file) say so.
// The behaviour behind each is tested in tests/bpf, against the same literals.
#include <gtest/gtest.h>

#include "smtpfence_abi.h"

namespace {

constexpr unsigned long long kSecond = 1'000'000'000ull;

// "Limiter memory": an LRU map of 262144 keys.
static_assert(FENCE_LIMIT_KEYS == 262144);
// "Drop events": another event for a source only after 60 s without one; the
// stream is held to 100 events/s in bursts of 200.
static_assert(FENCE_EVENT_REPEAT_NS == 60 * kSecond);
static_assert(FENCE_EVENT_RATE == 100);
static_assert(FENCE_EVENT_BURST == 200);
// "Attempts, not packets": a SYN like one seen in the last 180 s is a
// retransmission of the same attempt.
static_assert(FENCE_SYN_FLOW_WINDOW_NS == 180 * kSecond);
// Message pacing: a new session is refused while the queue is more than 8
// message intervals long (at least 2 s, at most 20 s); a reply that would
// wait more than 60 s leaves unpaced.
static_assert(FENCE_PACE_ADMIT_INTERVALS == 8);
static_assert(FENCE_PACE_ADMIT_MIN_NS == 2 * kSecond);
static_assert(FENCE_PACE_ADMIT_MAX_NS == 20 * kSecond);
static_assert(FENCE_PACE_MAX_DELAY_NS == 60 * kSecond);

TEST(ReadmeNumbers, AreTheDataPathsConstants) {
    SUCCEED() << "checked at compile time";
}

}  // namespace
