/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Which rules cover an address: the source lookup, behind one function, and
 * the walk down a source's prefix chain to the rules that judge it.
 */
#ifndef SMTPFENCE_RULES_H
#define SMTPFENCE_RULES_H

#include "maps.h"
#include "parsing.h"

/*
 * The source lookup, kept behind this one function so that the LPM tries can
 * be replaced by a faster structure without touching the rest of the path:
 * the longest rule covering the source whose prefix is at most `max_prefixlen`.
 */
static __always_inline struct rule_value *lookup_source(const struct packet *pkt,
							__u32 max_prefixlen)
{
	if (pkt->family == 4) {
		struct rule_key_v4 key = { .prefixlen = max_prefixlen };

		__builtin_memcpy(key.addr, pkt->saddr, 4);
		return bpf_map_lookup_elem(&rules_v4, &key);
	}
	struct rule_key_v6 key = { .prefixlen = max_prefixlen };

	__builtin_memcpy(key.addr, pkt->saddr, 16);
	return bpf_map_lookup_elem(&rules_v6, &key);
}

/*
 * The imported lists (FENCE_MAX_LISTS): the FENCE_LIST_HIT of the longest
 * listed prefix covering an address, or 0. Global functions, so that the
 * verifier checks each once, whatever the paths that call them.
 */

/* The list set the data path reads (its IPv4 cells and its prefix hash),
 * and the room for a key. */
static __always_inline int list_set_maps(void **cells, void **prefixes, struct list_key **key)
{
	__u32 zero = 0;
	struct fence_config *cfg = bpf_map_lookup_elem(&config, &zero);

	if (!cfg || !cfg->list_set)
		return 0;
	__u32 set = cfg->list_set - 1;

	*cells = bpf_map_lookup_elem(&list_v4_sets, &set);
	*prefixes = bpf_map_lookup_elem(&list_prefix_sets, &set);
	*key = bpf_map_lookup_elem(&list_scratch, &zero);
	return *cells && *prefixes && *key;
}

/* The hash's key of a prefix given as two host-order halves, in `key`
 * (list_scratch: see there). */
static __always_inline void fill_list_key(struct list_key *key, __u32 key_prefixlen, __u64 hi, __u64 lo)
{
	key->prefixlen = key_prefixlen;
	hi = bpf_cpu_to_be64(hi);
	lo = bpf_cpu_to_be64(lo);
	__builtin_memcpy(key->addr, &hi, 8);
	__builtin_memcpy(key->addr + 8, &lo, 8);
}

/* The hit of exactly this prefix in the hash, or 0. */
static __always_inline __u32 listed_prefix(void *prefixes, struct list_key *key, __u32 key_prefixlen, __u64 hi,
					   __u64 lo)
{
	fill_list_key(key, key_prefixlen, hi, lo);
	struct list_value *value = bpf_map_lookup_elem(prefixes, key);

	return value ? value->hit : 0;
}

__attribute__((noinline)) __u32 lookup_list_v4(__u32 addr_be)
{
	void *cells, *prefixes;
	struct list_key *key;

	if (!list_set_maps(&cells, &prefixes, &key))
		return 0;
	__u32 addr = bpf_ntohl(addr_be);
	__u32 index = addr >> 16;
	__u64 *cell = bpf_map_lookup_elem(cells, &index);

	if (!cell)
		return 0;
	if (!(*cell & FENCE_LIST_BLOCK))
		return (__u32)*cell;
	index = (__u32)*cell + ((addr >> 8) & 0xff);
	cell = bpf_map_lookup_elem(cells, &index);
	if (!cell)
		return 0;
	__u64 value = *cell;
	__u32 longer = (__u32)(value >> FENCE_LIST_LONGER_SHIFT);

	/* The lengths listed inside this /24, longest first. */
	for (__s32 prefixlen = 32; longer && prefixlen > 24; prefixlen--) {
		__u32 bit = 1u << (prefixlen - 25);

		if (!(longer & bit))
			continue;
		longer &= ~bit;
		__u64 masked = (__u64)(addr & (~0u << (32 - prefixlen))) << 32;
		__u32 hit = listed_prefix(prefixes, key, FENCE_LIST_KEY_V4 | prefixlen, masked, 0);

		if (hit)
			return hit;
	}
	return (__u32)value;
}

/* The first `prefixlen` bits of a 64-bit half in host order. */
static __always_inline __u64 keep_bits(__u64 half, __s32 prefixlen)
{
	if (prefixlen <= 0)
		return 0;
	if (prefixlen >= 64)
		return half;
	return half & ~(~0ull >> prefixlen);
}

/* The hit of the IPv6 address hi:lo's prefix of this length, if listed. */
static __always_inline __u32 listed_prefix_v6(void *prefixes, struct list_key *key, __s32 prefixlen, __u64 hi,
					      __u64 lo)
{
	return listed_prefix(prefixes, key, prefixlen, keep_bits(hi, prefixlen), keep_bits(lo, prefixlen - 64));
}

/* The hit of the longest prefix of `address` among lengths[0..count), which
 * are longest first, or 0. */
static __always_inline __u32 longest_listed_v6(void *prefixes, struct list_key *key, const __u8 *lengths,
					       __u32 count, __u64 hi, __u64 lo)
{
	for (__u32 i = 0; i < FENCE_LIST_GATE_LENGTHS; i++) {
		if (i >= count)
			break;
		__u32 hit = listed_prefix_v6(prefixes, key, lengths[i], hi, lo);

		if (hit)
			return hit;
	}
	return 0;
}

/* The same over lengths held in the cells from `at` (a count, then the lengths). */
static __always_inline __u32 longest_listed_v6_by_cells(void *cells, void *prefixes, struct list_key *key,
							__u32 at, __u64 hi, __u64 lo)
{
	__u64 *count = bpf_map_lookup_elem(cells, &at);

	if (!count)
		return 0;
	for (__u32 i = 1; i <= 127; i++) {
		if (i > *count)
			break;
		__u32 index = at + i;
		__u64 *length = bpf_map_lookup_elem(cells, &index);

		if (!length)
			return 0;
		__u32 hit = listed_prefix_v6(prefixes, key, *length & 0xff, hi, lo);

		if (hit)
			return hit;
	}
	return 0;
}

__attribute__((noinline)) __u32 lookup_list_v6(__u64 hi_be, __u64 lo_be)
{
	void *cells, *prefixes;
	struct list_key *key;

	if (!list_set_maps(&cells, &prefixes, &key))
		return 0;
	__u64 hi = bpf_be64_to_cpu(hi_be), lo = bpf_be64_to_cpu(lo_be);

	fill_list_key(key, FENCE_LIST_KEY_GATE, hi & ~0xffffffffull, 0);
	struct list_value *gate = bpf_map_lookup_elem(prefixes, key);

	if (!gate)
		return longest_listed_v6_by_cells(cells, prefixes, key, FENCE_LIST_V6_SHORT, hi, lo);
	/* A set is never changed once published: the gate stays as read. */
	__u32 gate_hit = gate->hit;
	__u32 hit = gate->count == FENCE_LIST_GATE_OVERFLOW ?
			    longest_listed_v6_by_cells(cells, prefixes, key, FENCE_LIST_V6_LONG, hi, lo) :
			    longest_listed_v6(prefixes, key, gate->lengths, gate->count, hi, lo);

	return hit ? hit : gate_hit;
}

/* The rule of the longest listed prefix covering the source that is in
 * force, and that prefix's length; NULL when none is. */
static __always_inline struct rule_value *find_list_rule(const struct packet *pkt, __u32 *prefixlen)
{
	__u32 hit;

	if (pkt->family == 4) {
		__u32 addr;

		__builtin_memcpy(&addr, pkt->saddr, 4);
		hit = lookup_list_v4(addr);
	} else {
		__u64 hi, lo;

		__builtin_memcpy(&hi, pkt->saddr, 8);
		__builtin_memcpy(&lo, pkt->saddr + 8, 8);
		hit = lookup_list_v6(hi, lo);
	}
	if (!hit)
		return 0;
	__u32 list = FENCE_LIST_HIT_LIST(hit);
	struct rule_value *rule = bpf_map_lookup_elem(&list_rules, &list);

	if (!rule || !rule->action)
		return 0;
	/* An expired list steps aside until it is reaped; a broader prefix
	 * of another list takes over only then (the set is rebuilt). */
	if (rule->expires_ns && bpf_ktime_get_boot_ns() >= rule->expires_ns)
		return 0;
	*prefixlen = FENCE_LIST_HIT_PREFIXLEN(hit);
	return rule;
}

/* The rules that judge a source. */
struct judges {
	struct rule_value *live; /* decides the packet: the longest live rule */
	struct rule_value *dry; /* the longest dry-run rule longer than `live`: counts only */
};

/*
 * The longest prefix decides, except that an expired rule (its deadline is
 * kept here, in the kernel, so it ends even when no smtpfence process runs)
 * and a dry-run rule step aside for the next broader rule. The deadlines'
 * clock (CLOCK_BOOTTIME) is read only when a rule with a deadline is met.
 */
static __always_inline struct judges find_rule_judges(const struct packet *pkt, __u32 *live_prefixlen)
{
	struct judges j = {};
	__u64 now = 0;
	__u32 prefixlen = pkt->family == 4 ? 32 : 128;

#pragma unroll
	for (int i = 0; i < FENCE_MAX_RULE_LAYERS; i++) {
		struct rule_value *rule = lookup_source(pkt, prefixlen);

		if (!rule)
			break;
		int skip = 0;

		if (rule->expires_ns) {
			if (!now)
				now = bpf_ktime_get_boot_ns();
			skip = now >= rule->expires_ns;
		}
		if (!skip) {
			if (!(rule->flags & FENCE_RULE_DRY_RUN)) {
				j.live = rule;
				*live_prefixlen = rule->prefixlen;
				break;
			}
			if (!j.dry)
				j.dry = rule;
		}
		if (rule->prefixlen == 0)
			break;
		prefixlen = rule->prefixlen - 1;
	}
	return j;
}

/*
 * The rules and the lists together: a listed prefix longer than the live
 * rule's decides instead (a rule for the very same prefix wins over a list);
 * a dry-run rule counts only while it is longer than whatever decides.
 * `live_prefixlen` gets the length of the prefix the live one matched (a
 * list's entry's: its rule's own is 0). It is an out-parameter, not a
 * member, to keep the XDP program's stack within the verifier's 512 bytes.
 */
static __always_inline struct judges find_judges(const struct packet *pkt, __u32 *live_prefixlen)
{
	struct judges j = find_rule_judges(pkt, live_prefixlen);
	__u32 list_prefixlen = 0;
	struct rule_value *list = find_list_rule(pkt, &list_prefixlen);

	if (!list)
		return j;
	if (j.live && j.live->prefixlen >= list_prefixlen)
		return j;
	j.live = list;
	*live_prefixlen = list_prefixlen;
	if (j.dry && j.dry->prefixlen <= list_prefixlen)
		j.dry = 0;
	return j;
}

/* The rule that decides a packet from this source, or NULL. */
static __always_inline struct rule_value *find_live_rule(const struct packet *pkt)
{
	__u32 prefixlen;

	return find_judges(pkt, &prefixlen).live;
}

#endif
