/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the rules that cover a source do to its packet: each judge's verdict
 * (block, limit, pace), and the live rule's and the dry run's merged into
 * the one verdict of the packet.
 */
#ifndef SMTPFENCE_VERDICT_H
#define SMTPFENCE_VERDICT_H

#include "accounting.h"
#include "limiter.h"
#include "pacing.h"
#include "parsing.h"
#include "rules.h"

/* What `rule` does to this attempt. A limit meters connections; a port-less
 * fragment is none, so only a block drops those. `live` is a constant: a
 * dry-run rule is never paced (the CLI refuses it), so its judgement skips
 * the pace, which also keeps the program within the verifier's budget. */
static __always_inline enum fence_verdict judge(const struct rule_value *rule,
						const struct packet *pkt, enum parse_result res,
						int new_attempt, const int live)
{
	if (rule->action == FENCE_ACTION_BLOCK)
		return FENCE_VERDICT_BLOCKED;
	if (rule->action == FENCE_ACTION_LIMIT && res == PARSE_SMTP) {
		struct limit_key key = {};

		make_limit_key(&key, rule, pkt->family, pkt->saddr);
		enum limit_verdict limited = apply_limit(rule, &key);

		if (limited == LIMIT_RATE)
			return FENCE_VERDICT_RATE;
		if (limited == LIMIT_CONNS)
			return FENCE_VERDICT_CONNS;
		/* Last: a connection the other terms refuse pays no message. */
		if (live && !pace_admits(rule, &key, new_attempt))
			return FENCE_VERDICT_RATE;
	}
	return FENCE_VERDICT_PASSED;
}

/* The verdict on a packet and the rule that decided it. */
struct decision {
	const struct rule_value *decider; /* for WOULD_DROP the dry-run rule; NULL: no rule */
	enum fence_verdict verdict;
	__u32 prefixlen; /* the length of the prefix the decider matched */
};

/* Judges a packet by the rules that cover its source and counts each one's
 * verdict. The live rule decides; a dry-run rule longer than it counts what
 * it would drop, and is the packet's decider when the live one passes it. */
static __always_inline struct decision decide(const struct packet *pkt, enum parse_result res,
					      int new_attempt, struct fence_stats *st)
{
	struct decision d = { .verdict = FENCE_VERDICT_PASSED };
	struct judges j = find_judges(pkt, &d.prefixlen);

	d.decider = j.live;

	if (j.live) {
		d.verdict = judge(j.live, pkt, res, new_attempt, 1);
		count_rule(j.live, d.verdict, new_attempt);
	}
	if (j.dry) {
		enum fence_verdict would = judge(j.dry, pkt, res, new_attempt, 0) ==
							   FENCE_VERDICT_PASSED ?
						   FENCE_VERDICT_PASSED :
						   FENCE_VERDICT_WOULD_DROP;

		count_rule(j.dry, would, new_attempt);
		if (would == FENCE_VERDICT_WOULD_DROP) {
			st->would_drop++;
			if (d.verdict == FENCE_VERDICT_PASSED) {
				d.verdict = would;
				d.decider = j.dry;
				d.prefixlen = j.dry->prefixlen;
			}
		}
	}
	return d;
}

#endif
