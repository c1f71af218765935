/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The GCRA arithmetic, shared by the BPF programs (gcra_take in limiter.h:
 * the limiter, the events budget, the pace clocks) and the unit tests that
 * check it against a token-bucket reference model.
 *
 * GCRA (the generic cell rate algorithm) is a token bucket kept as a single
 * clock: the theoretical arrival time (TAT) of a key's next connection. A
 * connection at `now` is admitted when the key has not run more than
 * `tolerance` = (burst - 1) * interval ahead of real time; admitting it moves
 * the TAT one interval on. Integer nanoseconds only, no floating point.
 *
 * Overflow: now < 2^63 (ns since boot), interval <= 3.6e12 (1/h) and
 * tolerance <= 1e6 * 3.6e12 = 3.6e18, so base + interval <= now + tolerance +
 * interval < 2^63 + 3.7e18 < 2^64.
 */
#ifndef SMTPFENCE_GCRA_H
#define SMTPFENCE_GCRA_H

#include <linux/types.h>

/* Returns 1 and sets *new_tat when a connection at `now` is admitted, else 0. */
static inline int gcra_admit(__u64 tat, __u64 now, __u64 interval, __u64 tolerance, __u64 *new_tat)
{
	__u64 base = tat > now ? tat : now;

	if (base - now > tolerance)
		return 0;
	*new_tat = base + interval;
	return 1;
}

#endif
