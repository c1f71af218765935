/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The per-source state of the SYN path, built so that a spoofed flood (every
 * SYN from a never-seen source) pays no map insert: hashes of the source and
 * the flow, the set-associative tables that tell an attempt from its
 * retransmissions, the per-CPU sketch that admits a source to `sources` from
 * its second SYN, the flood guard on those admissions, and the drop-event
 * marks. Sizes and their reasons are in smtpfence_abi.h.
 */
#ifndef SMTPFENCE_SOURCES_H
#define SMTPFENCE_SOURCES_H

#include "maps.h"
#include "parsing.h"

/* One multiply-xorshift round: enough to spread addresses over table slots
 * (an attacker choosing colliding sources only loses their own accounting). */
static __always_inline __u64 mix64(__u64 h, __u64 v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

/* The hash of a `sources` key (source address, family, destination port). */
static __always_inline __u64 source_hash(const struct source_key *key)
{
	__u64 lo, hi;

	__builtin_memcpy(&lo, key->addr, 8);
	__builtin_memcpy(&hi, key->addr + 8, 8);
	return mix64(mix64(mix64(0, ((__u64)key->family << 16) | key->port), lo), hi);
}

/* The hash of a SYN flow: its source's hash, source port and sequence number. */
static __always_inline __u64 flow_hash(__u64 source, const struct tcphdr *tcp)
{
	return mix64(source, ((__u64)bpf_ntohs(tcp->source) << 32) | bpf_ntohl(tcp->seq));
}

/* ---- Recent SYN flows (FENCE_SYN_FLOW_WAYS) ---- */

/* Whether `set` holds flow `tag`, first seen within FENCE_SYN_FLOW_WINDOW_NS. */
static __always_inline int flow_known(const struct syn_flow_set *set, __u64 tag, __u64 now)
{
#pragma unroll
	for (int i = 0; i < FENCE_SYN_FLOW_WAYS; i++)
		if (set->slot[i].tag == tag &&
		    now - set->slot[i].first_seen_ns < FENCE_SYN_FLOW_WINDOW_NS)
			return 1;
	return 0;
}

/* Records flow `tag` as a new attempt in the slot it had, else the set's
 * oldest. Plain stores: two CPUs writing one set at once may lose a flow,
 * whose retransmission then counts again (too many attempts, never too few). */
static __always_inline void record_flow(struct syn_flow_set *set, __u64 tag, __u64 now)
{
	__u32 victim = 0;
	__u64 oldest = ~0ull;

#pragma unroll
	for (int i = 0; i < FENCE_SYN_FLOW_WAYS; i++) {
		if (set->slot[i].tag == tag) {
			victim = i;
			break;
		}
		if (set->slot[i].first_seen_ns < oldest) {
			oldest = set->slot[i].first_seen_ns;
			victim = i;
		}
	}
	victim &= FENCE_SYN_FLOW_WAYS - 1;
	set->slot[victim].tag = tag;
	set->slot[victim].first_seen_ns = now;
}

/*
 * Whether this SYN starts a connection attempt (1) or retransmits the SYN of
 * one seen within FENCE_SYN_FLOW_WINDOW_NS (0): same source, ports and
 * sequence number. A source with a `sources` entry (`tracked`) keeps its flows
 * in the shared table; the others in this CPU's. A tracked source's attempt
 * may have begun before it had its entry, so its flow is looked for in both.
 */
static __always_inline int is_new_attempt(__u64 flow, int tracked, __u64 now)
{
	__u32 cpu_set = (__u32)(flow >> 32) % FENCE_SYN_FLOW_CPU_SETS;
	struct syn_flow_set *local = bpf_map_lookup_elem(&syn_flows_cpu, &cpu_set);

	if (local && flow_known(local, flow, now))
		return 0;
	struct syn_flow_set *set = local;

	if (tracked) {
		__u32 shared_set = (__u32)(flow >> 32) % FENCE_SYN_FLOW_SETS;

		set = bpf_map_lookup_elem(&syn_flows, &shared_set);
		if (set && flow_known(set, flow, now))
			return 0;
	}
	if (set)
		record_flow(set, flow, now);
	return 1;
}

/* ---- The sketch of untracked sources (FENCE_SKETCH_ROWS) ---- */

/* The cell of `hash` in sketch row `row`. */
static __always_inline __u32 sketch_cell_index(__u64 hash, __u32 row)
{
	return row * FENCE_SKETCH_COLUMNS + (__u32)(hash >> (20 * row)) % FENCE_SKETCH_COLUMNS;
}

/* Whether a cell's counts are still read in `window`: its own window and the next. */
static __always_inline int sketch_live(const struct sketch_cell *c, __u32 window)
{
	return c->window == window || c->window + 1 == window;
}

/* Counts one SYN in a cell, starting the cell over in a new window. */
static __always_inline void sketch_add(struct sketch_cell *c, __u32 window, int new_attempt,
				       int drops, int passed)
{
	if (c->window != window) {
		c->window = window;
		c->syn_packets = 0;
		c->attempts = 0;
		c->dropped_attempts = 0;
		c->unpassed = 0;
	}
	c->syn_packets++;
	c->attempts += new_attempt;
	c->dropped_attempts += new_attempt && drops;
	c->unpassed += !passed;
}

struct sketch_sum {
	__u32 cells[FENCE_SKETCH_ROWS];
	__u32 window;
	struct sketch_cell sum; /* window unused */
};

#define SKETCH_MIN(field) (a->field < b->field ? a->field : b->field)

/* bpf_loop callback: adds CPU `cpu`'s count-min estimate (the smaller cell of
 * the two rows, field by field); stops past the last CPU. */
static long add_cpu_sketch(__u32 cpu, void *data)
{
	struct sketch_sum *s = data;
	struct sketch_cell *a = bpf_map_lookup_percpu_elem(&source_sketch, &s->cells[0], cpu);
	struct sketch_cell *b = bpf_map_lookup_percpu_elem(&source_sketch, &s->cells[1], cpu);

	if (!a || !b)
		return 1;
	if (!sketch_live(a, s->window) || !sketch_live(b, s->window))
		return 0;
	s->sum.syn_packets += SKETCH_MIN(syn_packets);
	s->sum.attempts += SKETCH_MIN(attempts);
	s->sum.dropped_attempts += SKETCH_MIN(dropped_attempts);
	s->sum.unpassed += SKETCH_MIN(unpassed);
	return 0;
}

#undef SKETCH_MIN

/* ---- The flood guard (FENCE_SOURCE_INSERTS_PER_S) ---- */

/* Whether this CPU may make another `sources` entry this second; counts it. */
static __always_inline int guard_admits(__u64 now)
{
	__u32 zero = 0;
	struct source_guard *g = bpf_map_lookup_elem(&source_guard, &zero);
	__u64 second = now / 1000000000ull;

	if (!g)
		return 0;
	if (g->second != second) {
		g->second = second;
		g->inserts = 0;
	}
	if (g->inserts >= FENCE_SOURCE_INSERTS_PER_S)
		return 0;
	g->inserts++;
	return 1;
}

/* ---- Drop-event marks (FENCE_EVENT_MARKS) ---- */

/* Whether the source of `hash` is due a drop event under `rule`: its first
 * drop by the rule, or the first after FENCE_EVENT_REPEAT_NS. The CAS makes
 * one CPU the reporter when SYNs arrive together. */
static __always_inline int event_due(__u64 hash, const struct rule_value *rule, __u64 now)
{
	__u32 slot = (__u32)(hash >> 40) % FENCE_EVENT_MARKS;
	struct event_mark *mark = bpf_map_lookup_elem(&event_marks, &slot);

	if (!mark)
		return 0;
	__u64 last = mark->time_ns;

	if (mark->tag == (__u32)hash && mark->rule_id == rule->rule_id && last &&
	    now - last < FENCE_EVENT_REPEAT_NS)
		return 0;
	if (__sync_val_compare_and_swap(&mark->time_ns, last, now) != last)
		return 0;
	mark->tag = (__u32)hash;
	mark->rule_id = rule->rule_id;
	return 1;
}

#endif
