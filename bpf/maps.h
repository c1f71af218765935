/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Every map of the three programs, pinned by name in the pin directory (the
 * names are the FENCE_MAP_* of smtpfence_abi.h) but list_scratch, which holds
 * nothing between packets, and the one way to make an entry. The loader sizes the rule maps when it creates them (`attach
 * --max-rules`, default FENCE_DEFAULT_MAX_RULES); the sizes declared for
 * those are the defaults it sets.
 */
#ifndef SMTPFENCE_MAPS_H
#define SMTPFENCE_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "smtpfence_abi.h"

/* The IPv4 rules by prefix: --max-rules entries, sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct rule_key_v4);
	__type(value, struct rule_value);
	__uint(max_entries, FENCE_DEFAULT_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules_v4 SEC(".maps");

/* The IPv6 rules by prefix: --max-rules entries, sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct rule_key_v6);
	__type(value, struct rule_value);
	__uint(max_entries, FENCE_DEFAULT_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules_v6 SEC(".maps");

/* Per-CPU counters by rule slot: 2 x --max-rules slots (both families), then
 * FENCE_MAX_LISTS for the lists (list_rules[i].slot); sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_counters);
	__uint(max_entries, 2 * FENCE_DEFAULT_MAX_RULES + FENCE_MAX_LISTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_counters SEC(".maps");

/* Who made each rule and why, by rule slot, for userspace only: 2 x --max-rules, sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_info);
	__uint(max_entries, 2 * FENCE_DEFAULT_MAX_RULES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_info SEC(".maps");

/* The one fence_config: the knobs the data path reads on every packet. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fence_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

/* The XDP program's global counters, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fence_stats);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* Each imported list's rule, by list (see FENCE_MAX_LISTS); action 0 = none. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_value);
	__uint(max_entries, FENCE_MAX_LISTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} list_rules SEC(".maps");

/* Which list each list_rules entry is, for userspace only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct list_info);
	__uint(max_entries, FENCE_MAX_LISTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} list_info SEC(".maps");

/* Room for a list lookup's key, per CPU: off the stack, which the XDP
 * program and the list lookups it calls share (512 bytes in all). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct list_key);
	__uint(max_entries, 1);
} list_scratch SEC(".maps");

/* The two list sets (fence_config.list_set), each an IPv4 table and a hash
 * of prefixes made by userspace at the size of its lists, so their
 * templates' sizes are placeholders. The table is mmapable: userspace writes
 * millions of cells with one copy. */
struct list_v4_cells {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
	__uint(max_entries, 1);
};

struct list_prefixes {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, sizeof(struct list_key));
	__uint(value_size, sizeof(struct list_value));
	__uint(max_entries, 1);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct list_v4_cells);
} list_v4_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct list_prefixes);
} list_prefix_sets SEC(".maps");

/* The limiter's GCRA clock per (rule, source key) (FENCE_LIMIT_KEYS). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct limit_key);
	__type(value, struct limit_state);
	__uint(max_entries, FENCE_LIMIT_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} limit_state SEC(".maps");

/* Open connections per --max-conns key (FENCE_CONN_KEYS, never evicted). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct limit_key);
	__type(value, __u32);
	__uint(max_entries, FENCE_CONN_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_counts SEC(".maps");

/* The --max-conns key an MTA socket was charged to, in the socket itself. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__type(key, int);
	__type(value, struct conn_owner);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_owner SEC(".maps");

/* What each (source, SMTP port) did, for `top` (FENCE_SOURCE_KEYS). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct source_key);
	__type(value, struct source_stats);
	__uint(max_entries, FENCE_SOURCE_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sources SEC(".maps");

/* The SYNs of sources without a `sources` entry, per CPU: the count-min
 * sketch that tells a source's second SYN (FENCE_SKETCH_ROWS). Cell
 * row * FENCE_SKETCH_COLUMNS + column. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sketch_cell);
	__uint(max_entries, FENCE_SKETCH_ROWS *FENCE_SKETCH_COLUMNS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} source_sketch SEC(".maps");

/* The flood guard on `sources` inserts, per CPU (FENCE_SOURCE_INSERTS_PER_S). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct source_guard);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} source_guard SEC(".maps");

/* Recent SYN flows of sources with a `sources` entry (FENCE_SYN_FLOW_SETS):
 * shared by all CPUs, since a retransmission need not land on the CPU of the
 * first SYN. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct syn_flow_set);
	__uint(max_entries, FENCE_SYN_FLOW_SETS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} syn_flows SEC(".maps");

/* Recent SYN flows of the other sources, per CPU (FENCE_SYN_FLOW_CPU_SETS). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct syn_flow_set);
	__uint(max_entries, FENCE_SYN_FLOW_CPU_SETS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} syn_flows_cpu SEC(".maps");

/* Each source's last drop event (FENCE_EVENT_MARKS), by source hash. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct event_mark);
	__uint(max_entries, FENCE_EVENT_MARKS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_marks SEC(".maps");

/* Drop events for `smtpfence events` (a FENCE_EVENTS_BYTES ring buffer). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FENCE_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

/* The events stream's own GCRA clock (FENCE_EVENT_RATE, FENCE_EVENT_BURST). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct limit_state);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_clock SEC(".maps");

/* Paced rules' classes, clocks and counters by rule slot: 2 x --max-rules, sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_pace);
	__uint(max_entries, 2 * FENCE_DEFAULT_MAX_RULES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_pace SEC(".maps");

/* The pace clock and HTB class of each key of a paced rule (FENCE_PACE_KEYS). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct limit_key);
	__type(value, struct pace_key_state);
	__uint(max_entries, FENCE_PACE_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pace_keys SEC(".maps");

/* The paced SMTP sessions the egress program follows (FENCE_PACE_FLOW_KEYS). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pace_flow_key);
	__type(value, struct pace_flow);
	__uint(max_entries, FENCE_PACE_FLOW_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pace_flows SEC(".maps");

/* The entry of `key` in a hash `map`, made from `fresh` when there is none;
 * NULL only when the map refuses even after eviction. Two CPUs may race to
 * make it; the loser finds the winner's. */
static __always_inline void *lookup_or_create(void *map, const void *key, const void *fresh)
{
	void *value = bpf_map_lookup_elem(map, key);

	if (value)
		return value;
	bpf_map_update_elem(map, key, fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

#endif
