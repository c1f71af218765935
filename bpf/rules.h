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
static __always_inline struct judges find_judges(const struct packet *pkt)
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

#endif
