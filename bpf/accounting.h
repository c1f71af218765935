/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the XDP program counts: the global stats of every packet, connection
 * attempts told from SYN retransmissions, each rule's counters, each
 * source's story (for `top`) and the drop events, held to their own budget.
 */
#ifndef SMTPFENCE_ACCOUNTING_H
#define SMTPFENCE_ACCOUNTING_H

#include "limiter.h"
#include "maps.h"
#include "parsing.h"
#include "sources.h"

/* Whether a verdict drops the packet (a dry run's WOULD_DROP does not). */
static __always_inline int verdict_drops(enum fence_verdict verdict)
{
	return verdict != FENCE_VERDICT_PASSED && verdict != FENCE_VERDICT_WOULD_DROP;
}

/* What the accounting knows of an SMTP SYN before it is judged. */
struct syn_context {
	struct source_key key;
	int new_attempt; /* here, in the key's padding: the XDP stack is at its limit */
	__u64 hash; /* source_hash(&key) */
	struct source_stats *src; /* the source's entry; NULL: it has none (yet) */
	__u64 now; /* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC, a tick's precision */
};

/* One lookup of the source's entry and one of each flow table: no insert. */
static __always_inline void begin_syn(const struct packet *pkt, struct syn_context *syn)
{
	syn->key.family = pkt->family;
	syn->key.port = pkt->dport;
	__builtin_memcpy(syn->key.addr, pkt->saddr, 16);
	syn->hash = source_hash(&syn->key);
	syn->src = bpf_map_lookup_elem(&sources, &syn->key);
	syn->now = bpf_ktime_get_coarse_ns();
	syn->new_attempt =
		is_new_attempt(flow_hash(syn->hash, pkt->tcp), syn->src != NULL, syn->now);
}

/* Counts a parsed packet in the global stats; returns whether the rules
 * judge it: an SMTP SYN (for which it fills *syn) or a port-less fragment.
 * Everything else passes. */
static __always_inline int count_parsed(enum parse_result res, const struct packet *pkt,
					struct fence_stats *st, struct syn_context *syn)
{
	switch (res) {
	case PARSE_MALFORMED:
		st->malformed++;
		return 0;
	case PARSE_PASS:
		return 0;
	case PARSE_SMTP:
		st->smtp++;
		if (!is_new_connection(pkt->tcp))
			return 0; /* established sessions finish what they are doing */
		st->smtp_syn++;
		/* Attempt or retransmission: counting only. Every SYN is judged
		 * as before (a limit charges an admitted retransmission like any
		 * SYN; a rule changed since the first SYN judges it). */
		begin_syn(pkt, syn);
		if (syn->new_attempt)
			st->smtp_attempts++;
		return 1;
	case PARSE_PORTLESS:
		st->fragments++;
		return 1;
	}
	return 0;
}

/* Counts the final verdict on a judged packet; returns whether it drops. */
static __always_inline int count_verdict(enum fence_verdict verdict, int new_attempt,
					 struct fence_stats *st)
{
	if (!verdict_drops(verdict)) {
		st->passed++;
		return 0;
	}
	st->dropped++;
	if (new_attempt)
		st->dropped_attempts++;
	return 1;
}

static __always_inline void count_rule(const struct rule_value *rule, enum fence_verdict verdict,
				       int new_attempt)
{
	__u32 slot = rule->slot;
	struct rule_counters *rc = bpf_map_lookup_elem(&rule_counters, &slot);

	if (!rc)
		return;
	rc->matched++;
	if (new_attempt) {
		rc->attempts++;
		if (verdict == FENCE_VERDICT_WOULD_DROP)
			rc->would_drop_attempts++;
		else if (verdict != FENCE_VERDICT_PASSED)
			rc->dropped_attempts++;
	}
	switch (verdict) {
	case FENCE_VERDICT_PASSED:
		break;
	case FENCE_VERDICT_WOULD_DROP:
		rc->would_drop++;
		break;
	case FENCE_VERDICT_RATE:
		rc->rate_dropped++;
		rc->dropped++;
		break;
	case FENCE_VERDICT_CONNS:
		rc->conns_dropped++;
		/* fall through */
	default:
		rc->dropped++;
	}
}

/* The events stream's budget: GCRA on one global clock. */
static __always_inline int event_budget_admits(__u64 now)
{
	__u32 zero = 0;
	struct limit_state *clock = bpf_map_lookup_elem(&event_clock, &zero);
	const __u64 interval = 1000000000ull / FENCE_EVENT_RATE;

	return clock &&
	       gcra_take(&clock->tat_ns, now, interval, (FENCE_EVENT_BURST - 1) * interval);
}

static __always_inline void emit_event(const struct packet *pkt, const struct rule_value *rule,
				       __u32 prefixlen, enum fence_verdict verdict, __u64 now,
				       struct fence_stats *st)
{
	if (!event_budget_admits(now)) {
		st->events_suppressed++;
		return;
	}
	struct fence_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		st->events_suppressed++;
		return;
	}
	ev->time_ns = now;
	ev->rule_id = rule->rule_id;
	ev->family = pkt->family;
	ev->verdict = verdict;
	ev->action = rule->action;
	ev->prefixlen = prefixlen;
	ev->port = pkt->dport;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	__builtin_memcpy(ev->addr, pkt->saddr, 16);
	bpf_ringbuf_submit(ev, 0);
	st->events++;
}

/* Counts a SYN of `verdict` (decided by `rule`'s prefix of length
 * `prefixlen`, or by none) in its source's entry. */
static __always_inline void count_source(struct source_stats *src, const struct rule_value *rule,
					 __u32 prefixlen, enum fence_verdict verdict, int new_attempt,
					 __u64 now)
{
	__sync_fetch_and_add(&src->syn_packets, 1);
	if (new_attempt) {
		__sync_fetch_and_add(&src->attempts, 1);
		if (verdict_drops(verdict))
			__sync_fetch_and_add(&src->dropped_attempts, 1);
	}
	switch (verdict) {
	case FENCE_VERDICT_PASSED:
		__sync_fetch_and_add(&src->passed, 1);
		break;
	case FENCE_VERDICT_BLOCKED:
		__sync_fetch_and_add(&src->blocked, 1);
		break;
	case FENCE_VERDICT_WOULD_DROP:
		__sync_fetch_and_add(&src->would_drop, 1);
		break;
	default:
		__sync_fetch_and_add(&src->limited, 1);
	}
	src->last_seen_ns = now;
	src->last_verdict = verdict;
	src->last_rule_id = rule ? rule->rule_id : 0;
	src->last_action = rule ? rule->action : 0;
	src->last_prefixlen = prefixlen;
}

/* The entry of a source the sketch has seen before, seeded with the sketch's
 * counts of its earlier SYNs on every CPU. Their verdicts are not kept: the
 * ones that did not pass are taken to have had this SYN's verdict, or when
 * this one passes, a limit's (only a limit both drops and passes a source
 * without a rule change). When another CPU made it first, that one is
 * returned, unseeded by this CPU; NULL only when the map refuses. */
static __always_inline struct source_stats *make_source(const struct syn_context *syn,
							const struct sketch_sum *seen,
							enum fence_verdict verdict)
{
	struct source_stats fresh = {
		.syn_packets = seen->sum.syn_packets,
		.attempts = seen->sum.attempts,
		.dropped_attempts = seen->sum.dropped_attempts,
		.passed = seen->sum.syn_packets - seen->sum.unpassed,
		.first_seen_ns = syn->now,
	};

	switch (verdict) {
	case FENCE_VERDICT_BLOCKED:
		fresh.blocked = seen->sum.unpassed;
		break;
	case FENCE_VERDICT_WOULD_DROP:
		fresh.would_drop = seen->sum.unpassed;
		break;
	default:
		fresh.limited = seen->sum.unpassed;
	}
	bpf_map_update_elem(&sources, &syn->key, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sources, &syn->key);
}

/*
 * The entry of a source that has none: made on its second SYN seen on this
 * CPU within the sketch's window, as the flood guard allows. Otherwise the
 * SYN is counted in the sketch only, and NULL returned: a spoofed source's
 * one SYN costs two per-CPU cell updates, no map insert.
 */
static __always_inline struct source_stats *
track_source(const struct syn_context *syn, enum fence_verdict verdict, struct fence_stats *st)
{
	struct sketch_sum seen = { .window = syn->now >> FENCE_SKETCH_WINDOW_SHIFT };

	seen.cells[0] = sketch_cell_index(syn->hash, 0);
	seen.cells[1] = sketch_cell_index(syn->hash, 1);
	struct sketch_cell *a = bpf_map_lookup_elem(&source_sketch, &seen.cells[0]);
	struct sketch_cell *b = bpf_map_lookup_elem(&source_sketch, &seen.cells[1]);

	if (!a || !b)
		return NULL;
	if (sketch_live(a, seen.window) && a->syn_packets && sketch_live(b, seen.window) &&
	    b->syn_packets) {
		if (guard_admits(syn->now)) {
			bpf_loop(FENCE_MAX_CPUS, add_cpu_sketch, &seen, 0);
			return make_source(syn, &seen, verdict);
		}
		st->untracked_syns++;
	}
	int drops = verdict_drops(verdict), passed = verdict == FENCE_VERDICT_PASSED;

	sketch_add(a, seen.window, syn->new_attempt, drops, passed);
	sketch_add(b, seen.window, syn->new_attempt, drops, passed);
	return NULL;
}

/*
 * Per-source accounting of an SMTP SYN, for `top`, and the drop event of a
 * source's first drop by a rule. `rule` is the rule that decided (for
 * WOULD_DROP, the dry-run rule), or NULL; `prefixlen` the length of the
 * prefix it matched (for a list, its entry's).
 */
static __always_inline void account_source(const struct packet *pkt, const struct syn_context *syn,
					   const struct rule_value *rule, __u32 prefixlen,
					   enum fence_verdict verdict, struct fence_stats *st)
{
	struct source_stats *src = syn->src ? syn->src : track_source(syn, verdict, st);

	if (src)
		count_source(src, rule, prefixlen, verdict, syn->new_attempt, syn->now);
	if (verdict != FENCE_VERDICT_PASSED && rule && event_due(syn->hash, rule, syn->now))
		emit_event(pkt, rule, prefixlen, verdict, syn->now, st);
}

#endif
