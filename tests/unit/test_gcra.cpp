// gcra_admit, the rate limiter's arithmetic shared with the XDP program,
// against an independent token-bucket model in exact integer arithmetic.
#include "gcra.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <random>

namespace smtpfence {
namespace {

using i128 = __int128;

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kHour = 3600 * kSecond;
constexpr uint64_t kMinInterval = 1'000;  // 1000000/s
constexpr uint64_t kMaxInterval = kHour;  // 1/h
constexpr uint64_t kMaxBurst = 1'000'000;
constexpr uint64_t k2p62 = uint64_t{1} << 62;
constexpr uint64_t k2p63 = uint64_t{1} << 63;  // the documented bound on now

// The reference: a token bucket counted in "credit-ns". It holds at most
// burst * interval, refills 1 per nanosecond, and a connection costs
// `interval`. A new key starts full. Signed 128-bit: no overflow, no
// rounding, and a bucket may start in debt (see start_with_debt).
class TokenBucket {
public:
    TokenBucket(uint64_t interval, uint64_t burst, uint64_t first_now)
        : capacity_(i128(burst) * interval), cost_(interval), credit_(capacity_), last_(first_now) {}

    // A bucket that at `now` holds `capacity - debt` credit (debt may exceed
    // the capacity: the key ran further ahead than its burst allows).
    void start_with_debt(uint64_t now, i128 debt) {
        credit_ = capacity_ - debt;
        last_ = now;
    }

    bool admit(uint64_t now) {
        credit_ = std::min<i128>(capacity_, credit_ + (i128(now) - i128(last_)));
        last_ = now;
        if (credit_ < cost_) return false;
        credit_ -= cost_;
        return true;
    }

private:
    i128 capacity_, cost_, credit_;
    uint64_t last_;
};

// The data path's use of gcra_admit: one TAT per key, a fresh key at now,
// tolerance (burst - 1) * interval.
class Gcra {
public:
    Gcra(uint64_t interval, uint64_t burst, uint64_t first_now)
        : interval_(interval), tolerance_((burst - 1) * interval), tat_(first_now) {}

    void set_tat(uint64_t tat) { tat_ = tat; }
    uint64_t tat() const { return tat_; }

    bool admit(uint64_t now) {
        __u64 next = 0xdeadbeefdeadbeefull;
        int ok = gcra_admit(tat_, now, interval_, tolerance_, &next);
        if (!ok) {
            EXPECT_EQ(next, 0xdeadbeefdeadbeefull) << "a denial must not set *new_tat";
            return false;
        }
        EXPECT_EQ(ok, 1);
        EXPECT_GT(next, tat_) << "the TAT must move forward (overflow?)";
        EXPECT_GT(next, now) << "the TAT must be ahead of now (overflow?)";
        tat_ = next;
        return true;
    }

private:
    uint64_t interval_, tolerance_, tat_;
};

// Both, asserting they agree on every arrival.
struct Pair {
    Pair(uint64_t interval, uint64_t burst, uint64_t first_now)
        : gcra(interval, burst, first_now), model(interval, burst, first_now) {}

    bool admit(uint64_t now) {
        bool g = gcra.admit(now);
        bool m = model.admit(now);
        EXPECT_EQ(g, m) << "now " << now;
        return g;
    }
    // Admissions among `n` arrivals at the same instant.
    uint64_t admit_many(uint64_t now, uint64_t n) {
        uint64_t admitted = 0;
        for (uint64_t i = 0; i < n; ++i) admitted += admit(now);
        return admitted;
    }

    Gcra gcra;
    TokenBucket model;
};

// ------------------------------------------------------------ deterministic

TEST(Gcra, AFreshKeyGetsExactlyItsBurstAtOnce) {
    for (uint64_t burst : {uint64_t{1}, uint64_t{2}, uint64_t{5}, uint64_t{100}}) {
        for (uint64_t interval : {kMinInterval, uint64_t{200'000'000}, kMaxInterval}) {
            Pair p(interval, burst, 1'000);
            EXPECT_EQ(p.admit_many(1'000, burst), burst) << burst << " x " << interval;
            EXPECT_FALSE(p.admit(1'000)) << burst << " x " << interval;
            EXPECT_EQ(p.gcra.tat(), 1'000 + burst * interval);
        }
    }
}

TEST(Gcra, OneIntervalLaterExactlyOneMore) {
    const uint64_t interval = 200'000'000, burst = 5, t0 = 12'345'678'901;
    Pair p(interval, burst, t0);
    ASSERT_EQ(p.admit_many(t0, burst + 3), burst);
    EXPECT_FALSE(p.admit(t0 + interval - 1));  // 1 ns short
    EXPECT_TRUE(p.admit(t0 + interval));
    EXPECT_FALSE(p.admit(t0 + interval));
    EXPECT_FALSE(p.admit(t0 + 2 * interval - 1));
    EXPECT_TRUE(p.admit(t0 + 2 * interval));
    // Three intervals on (from t0 + 2 * interval): three more, then none.
    EXPECT_EQ(p.admit_many(t0 + 5 * interval, 10), 3u);
}

TEST(Gcra, BurstOneIsAStrictSpacing) {
    const uint64_t interval = kSecond;
    Pair p(interval, 1, 0);
    EXPECT_TRUE(p.admit(0));
    EXPECT_FALSE(p.admit(1));
    EXPECT_FALSE(p.admit(interval - 1));
    EXPECT_TRUE(p.admit(interval));
    EXPECT_FALSE(p.admit(interval + interval / 2));
    EXPECT_TRUE(p.admit(2 * interval + 7));
    EXPECT_FALSE(p.admit(3 * interval + 6));  // the TAT is 3 * interval + 7
    EXPECT_TRUE(p.admit(3 * interval + 7));
}

TEST(Gcra, LongIdleNeverGivesMoreThanTheBurst) {
    const uint64_t interval = 200'000'000, burst = 5;
    Pair p(interval, burst, 0);
    EXPECT_EQ(p.admit_many(0, burst), burst);
    uint64_t now = 0;
    for (uint64_t idle :
         {uint64_t{burst * interval}, uint64_t{100 * burst * interval}, uint64_t{30 * 24 * kHour}, uint64_t{k2p62}}) {
        now += idle;
        EXPECT_EQ(p.admit_many(now, 3 * burst), burst) << "after " << idle << " ns idle";
    }
}

TEST(Gcra, SpacedArrivalsAtTheRateAreAllAdmitted) {
    const uint64_t interval = 8'571'428'571;  // 7/min
    Pair p(interval, 1, 5);
    for (uint64_t i = 0; i < 10'000; ++i) ASSERT_TRUE(p.admit(5 + i * interval)) << i;
}

TEST(Gcra, AnEmptyBucketPolledAtTwiceTheRateAdmitsEveryOther) {
    const uint64_t interval = 200'000'000;  // 5/s
    Pair p(interval, 4, 0);
    EXPECT_EQ(p.admit_many(0, 4), 4u);
    uint64_t admitted = 0;
    for (uint64_t i = 1; i <= 1'000; ++i) {
        bool ok = p.admit(i * (interval / 2));
        EXPECT_EQ(ok, i % 2 == 0) << i;
        admitted += ok;
    }
    EXPECT_EQ(admitted, 500u);
}

// The extremes of the supported range, at a clock near 2^62 and close under
// the documented bound 2^63 (the TAT then runs past 2^63): every admission of
// a whole burst, and the refills after it, fit in 64 bits.
struct Extreme {
    uint64_t interval, burst;
    bool at_bound;  // start so that the last `now` is just under 2^63
};

std::ostream& operator<<(std::ostream& out, const Extreme& e) {
    return out << "interval " << e.interval << " burst " << e.burst << (e.at_bound ? " near 2^63" : " at 2^62");
}

class GcraExtreme : public testing::TestWithParam<Extreme> {};

TEST_P(GcraExtreme, FullBurstThenRefillWithoutOverflow) {
    const Extreme& e = GetParam();
    const uint64_t full = e.burst * e.interval;
    // The test's last arrival is at start + (burst / 2 + 2) * interval + full.
    const uint64_t start = e.at_bound ? k2p63 - 1 - (e.burst / 2 + 2) * e.interval - full : k2p62;
    Pair p(e.interval, e.burst, start);
    EXPECT_EQ(p.admit_many(start, e.burst), e.burst);
    EXPECT_EQ(p.gcra.tat(), start + full);
    EXPECT_FALSE(p.admit(start));
    EXPECT_FALSE(p.admit(start + e.interval - 1));
    EXPECT_TRUE(p.admit(start + e.interval));
    EXPECT_FALSE(p.admit(start + e.interval));
    // The TAT is start + full + interval. Half the bucket back (rounded down):
    uint64_t later = start + (e.burst / 2 + 1) * e.interval;
    EXPECT_EQ(p.admit_many(later, e.burst / 2 + 5), e.burst / 2);
    EXPECT_EQ(p.gcra.tat(), later + full);
    // Idle until the bucket is full again, and one interval more: still only the burst.
    later += full + e.interval;
    // (From 2^62, 1/h with burst 1e6 reaches now ~1.0e19 here, past the documented
    // 2^63: still exact, since now + tolerance + interval < 2^64.)
    if (e.at_bound) {
        EXPECT_EQ(later, k2p63 - 1);
    }
    EXPECT_EQ(p.admit_many(later, e.burst + 2), e.burst);
    EXPECT_EQ(p.gcra.tat(), later + full);
}

INSTANTIATE_TEST_SUITE_P(Bounds, GcraExtreme,
                         testing::Values(Extreme{kMaxInterval, kMaxBurst, false},  // 1/h, burst 1e6, at 2^62
                                         Extreme{kMinInterval, kMaxBurst, false},  // 1e6/s, burst 1e6, at 2^62
                                         Extreme{kMaxInterval, 1, false}, Extreme{kMinInterval, 1, false},
                                         Extreme{kMaxInterval, kMaxBurst, true}, Extreme{kMinInterval, kMaxBurst, true},
                                         Extreme{kMaxInterval, 1, true}));

TEST(Gcra, DenialAtTheToleranceBoundary) {
    // tat - now == tolerance admits; one more nanosecond of debt denies.
    const uint64_t interval = 1'000, burst = 3, tolerance = (burst - 1) * interval;
    __u64 next = 0;
    EXPECT_EQ(gcra_admit(k2p62 + tolerance, k2p62, interval, tolerance, &next), 1);
    EXPECT_EQ(next, k2p62 + tolerance + interval);
    next = 42;
    EXPECT_EQ(gcra_admit(k2p62 + tolerance + 1, k2p62, interval, tolerance, &next), 0);
    EXPECT_EQ(next, 42u);
    // A TAT in the past counts from now, not from the TAT.
    EXPECT_EQ(gcra_admit(5, k2p62, interval, tolerance, &next), 1);
    EXPECT_EQ(next, k2p62 + interval);
    // The largest state the bounds allow: tolerance (1e6 - 1) * 3.6e12 ahead of 2^63 - 1.
    const uint64_t big_tol = (kMaxBurst - 1) * kMaxInterval, now = k2p63 - 1;
    EXPECT_EQ(gcra_admit(now + big_tol, now, kMaxInterval, big_tol, &next), 1);
    EXPECT_EQ(next, now + big_tol + kMaxInterval);
    EXPECT_GT(next, now);
    EXPECT_EQ(gcra_admit(now + big_tol + 1, now, kMaxInterval, big_tol, &next), 0);
}

// --------------------------------------------------------------- randomised

uint64_t log_uniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
    std::uniform_real_distribution<double> e(std::log2(double(lo)), std::log2(double(hi)));
    double v = std::exp2(e(rng));
    return std::clamp<uint64_t>(static_cast<uint64_t>(v), lo, hi);
}

struct RandomTally {
    uint64_t admitted = 0, denied = 0, near_2p62 = 0, at_boundary = 0, mismatches = 0;
};

// One key's life under a random sequence of arrivals. Returns false at the
// first disagreement.
bool run_random_key(uint64_t seed, RandomTally& tally) {
    std::mt19937_64 rng(seed);
    auto pick = [&](uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); };

    uint64_t interval;
    switch (pick(0, 3)) {
    case 0: interval = kSecond / pick(1, 1'000'000); break;        // an N/s rate
    case 1: interval = 60 * kSecond / pick(1, 60'000'000); break;  // an N/min rate
    case 2: interval = pick(kMinInterval, kMaxInterval); break;
    default: interval = log_uniform(rng, kMinInterval, kMaxInterval); break;
    }
    uint64_t burst = pick(0, 2) == 0 ? pick(1, 10) : log_uniform(rng, 1, kMaxBurst);
    if (pick(0, 19) == 0) burst = kMaxBurst;
    if (pick(0, 19) == 0) interval = pick(0, 1) ? kMinInterval : kMaxInterval;
    const uint64_t capacity = burst * interval;  // <= 3.6e18

    uint64_t now;
    switch (pick(0, 3)) {
    case 0: now = pick(0, 1'000'000); break;
    case 1: now = pick(0, uint64_t{1} << 50); break;
    default: now = k2p62 - pick(0, uint64_t{1} << 40) + pick(0, uint64_t{1} << 40); break;
    }
    if (now >= k2p62 - (uint64_t{1} << 41)) tally.near_2p62++;
    const uint64_t horizon = k2p63 - 1;  // now stays below the documented bound

    TokenBucket model(interval, burst, now);
    Gcra gcra(interval, burst, now);
    // Half the keys start part-way: some debt, so that large bursts also run dry.
    if (pick(0, 1)) {
        uint64_t debt = pick(0, 3) == 0 ? pick(0, capacity + interval)
                                        : capacity - pick(0, std::min<uint64_t>(capacity, 50 * interval));
        if (debt > capacity + interval) debt = capacity + interval;
        model.start_with_debt(now, debt);
        gcra.set_tat(now + debt);
    }

    const int arrivals = static_cast<int>(pick(200, 3000));
    for (int i = 0; i < arrivals; ++i) {
        uint64_t gap = 0;
        switch (pick(0, 19)) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4:
        case 5:
        case 6: gap = 0; break;  // simultaneous
        case 7:
        case 8:
        case 9: gap = pick(0, interval); break;
        case 10: gap = interval; break;
        case 11: gap = interval - 1; break;
        case 12: gap = interval + 1; break;
        case 13:
        case 14: gap = pick(1, 10); break;
        case 15: gap = pick(0, 5 * interval); break;
        case 16: gap = pick(0, capacity); break;
        case 17: gap = capacity + pick(0, 3 * interval); break;  // idle long enough to fill up
        case 18: gap = pick(0, uint64_t{1} << 60); break;        // a very long gap
        default: gap = interval / 2; break;
        }
        if (gap > horizon - now) break;
        now += gap;
        // A run of simultaneous arrivals, sometimes longer than the burst.
        int run = pick(0, 9) == 0 ? static_cast<int>(pick(1, std::min<uint64_t>(burst + 3, 300))) : 1;
        for (int r = 0; r < run; ++r) {
            // The TAT exactly `tolerance` (admitted) or 1 ns more (denied) ahead.
            const uint64_t ahead = gcra.tat() > now ? gcra.tat() - now : 0;
            if (ahead == (burst - 1) * interval || ahead == (burst - 1) * interval + 1) tally.at_boundary++;
            bool g = gcra.admit(now), m = model.admit(now);
            if (g != m) {
                ADD_FAILURE() << "seed " << seed << " arrival " << i << " at " << now << ": gcra " << g << ", model "
                              << m << " (interval " << interval << ", burst " << burst << ", tat " << gcra.tat() << ")";
                tally.mismatches++;
                return false;
            }
            (g ? tally.admitted : tally.denied)++;
        }
    }
    return true;
}

TEST(GcraRandom, AgreesWithTheTokenBucketOnEveryDecision) {
    RandomTally tally;
    for (uint64_t seed = 1; seed <= 20000; ++seed) {
        if (!run_random_key(seed, tally) && tally.mismatches >= 5) break;
    }
    EXPECT_EQ(tally.mismatches, 0u);
    std::printf("gcra random: %llu admitted, %llu denied, %llu at the boundary, %llu keys near 2^62\n",
                (unsigned long long)tally.admitted, (unsigned long long)tally.denied,
                (unsigned long long)tally.at_boundary, (unsigned long long)tally.near_2p62);
    // The sequences exercise both outcomes, and the clock near 2^62, in earnest.
    EXPECT_GT(tally.admitted, 20'000'000u);
    EXPECT_GT(tally.denied, 2'000'000u);
    EXPECT_GT(tally.at_boundary, 100'000u);
    EXPECT_GT(tally.near_2p62, 8'500u);
}

}  // namespace
}  // namespace smtpfence
