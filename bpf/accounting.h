/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the XDP program counts: the global stats of every packet, connection
 * attempts told from SYN retransmissions, each rule's counters, each
 * source's story (for `top`) and the drop events, held to their own budget.
 */
#ifndef SMTPFENCE_ACCOUNTING_H
#define SMTPFENCE_ACCOUNTING_H

#include <linux/errno.h>

#include "limiter.h"
#include "maps.h"
#include "parsing.h"

/* Whether a verdict drops the packet (a dry run's WOULD_DROP does not). */
static __always_inline int verdict_drops(enum fence_verdict verdict)
{
	return verdict != FENCE_VERDICT_PASSED && verdict != FENCE_VERDICT_WOULD_DROP;
}

/*
 * Whether this SYN starts a connection attempt (1) or retransmits the SYN of
 * one seen within FENCE_SYN_FLOW_WINDOW_NS (0): same source, ports and
 * sequence number. One lookup per SYN, plus an insert for a new attempt.
 * Counting only: the caller judges every SYN all the same. A flow the LRU
 * forgot, or a map that refuses the insert, makes a new attempt (too many,
 * never too few).
 */
static __always_inline int is_new_attempt(const struct packet *pkt, __u64 now)
{
	struct syn_flow_key key = {
		.family = pkt->family,
		.sport = bpf_ntohs(pkt->tcp->source),
		.dport = pkt->dport,
		.seq = bpf_ntohl(pkt->tcp->seq),
	};

	__builtin_memcpy(key.addr, pkt->saddr, 16);
	__u64 *first_seen = bpf_map_lookup_elem(&syn_flows, &key);

	if (first_seen) {
		if (now - *first_seen < FENCE_SYN_FLOW_WINDOW_NS)
			return 0;
		/* The same flow, long after its SYN retransmissions would have
		 * ended: a new attempt that happens to look the same. */
		*first_seen = now;
		return 1;
	}
	/* Another CPU inserting the same flow first makes this a retransmission. */
	return bpf_map_update_elem(&syn_flows, &key, &now, BPF_NOEXIST) != -EEXIST;
}

/* Counts a parsed packet in the global stats; returns whether the rules
 * judge it: an SMTP SYN (for which it sets *now and whether *new_attempt)
 * or a port-less fragment. Everything else passes. */
static __always_inline int count_parsed(enum parse_result res, const struct packet *pkt,
					struct fence_stats *st, int *new_attempt, __u64 *now)
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
		*now = bpf_ktime_get_boot_ns();
		*new_attempt = is_new_attempt(pkt, *now);
		if (*new_attempt)
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
				       enum fence_verdict verdict, __u64 now,
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
	ev->prefixlen = rule->prefixlen;
	ev->port = pkt->dport;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	__builtin_memcpy(ev->addr, pkt->saddr, 16);
	bpf_ringbuf_submit(ev, 0);
	st->events++;
}

/*
 * Per-source accounting of an SMTP connection attempt, for `top`, and the
 * drop event of a source's first drop by a rule. `rule` is the rule that
 * decided (for WOULD_DROP, the dry-run rule), or NULL.
 */
static __always_inline void account_source(const struct packet *pkt, const struct rule_value *rule,
					   enum fence_verdict verdict, int new_attempt, __u64 now,
					   struct fence_stats *st)
{
	struct source_key key = { .family = pkt->family, .port = pkt->dport };

	__builtin_memcpy(key.addr, pkt->saddr, 16);
	struct source_stats fresh = { .first_seen_ns = now };
	struct source_stats *src = lookup_or_create(&sources, &key, &fresh);

	if (!src)
		return;
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
	src->last_prefixlen = rule ? rule->prefixlen : 0;
	if (verdict == FENCE_VERDICT_PASSED || !rule)
		return;

	/* One event per (source, rule), repeated only after a quiet spell; the
	 * CAS makes exactly one CPU the reporter when SYNs arrive together. */
	__u64 last = src->last_event_ns;

	if (src->event_rule_id == rule->rule_id && last && now - last < FENCE_EVENT_REPEAT_NS)
		return;
	if (__sync_val_compare_and_swap(&src->last_event_ns, last, now) != last)
		return;
	src->event_rule_id = rule->rule_id;
	emit_event(pkt, rule, verdict, now, st);
}

#endif
