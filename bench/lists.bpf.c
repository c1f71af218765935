// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The list benchmark's programs (bench/bench_lists.cpp). The fence's own maps
 * are reused from its pin directory (maps.h pins them by name), so that
 * lookup_only runs the data path's very lookup (rules.h find_judges: rules
 * and lists) on the lists userspace published.
 *
 * random_source writes a source address into the frame, drawn at random from
 * bench_sources, then tail-calls the program under measurement: so that a
 * million-packet run sees a million sources (a repeated packet would hide
 * every cache miss). With one address in bench_sources it is the same
 * source repeated. Its own cost is in every row, the baseline's included.
 */
#include "../bpf/rules.h"

struct bench_source {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct bench_source);
	__uint(max_entries, 1 << 21);
} bench_sources SEC(".maps");

/* The program random_source hands the frame to. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} measured SEC(".maps");

/* The reference: the kernel's LPM trie holding the same IPv4 or IPv6 prefixes. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct rule_key_v4);
	__type(value, __u32);
	__uint(max_entries, 1 << 21);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} reference_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct rule_key_v6);
	__type(value, __u32);
	__uint(max_entries, 1 << 21);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} reference_v6 SEC(".maps");

__u32 source_mask = 0; /* bench_sources holds source_mask + 1 addresses */

SEC("xdp")
int random_source(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__u32 index = bpf_get_prandom_u32() & source_mask;
	struct bench_source *source = bpf_map_lookup_elem(&bench_sources, &index);

	if (!source)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(&ip->saddr, source->addr, 4);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(&ip6->saddr, source->addr, 16);
	}
	bpf_tail_call(ctx, &measured, 0);
	return XDP_ABORTED;
}

/* The bare parse: what any SMTP filter pays. */
SEC("xdp")
int parse_only(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct fence_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct packet pkt = {};

	if (!cfg)
		return XDP_ABORTED;
	return parse_packet(ctx, cfg, &pkt) == PARSE_SMTP ? XDP_PASS : XDP_ABORTED;
}

/* The parse and the fence's lookup: which rule or list decides. */
SEC("xdp")
int lookup_only(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct fence_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct packet pkt = {};

	if (!cfg || parse_packet(ctx, cfg, &pkt) != PARSE_SMTP)
		return XDP_ABORTED;
	struct rule_value *rule = find_live_rule(&pkt);

	return rule && rule->action == FENCE_ACTION_BLOCK ? XDP_DROP : XDP_PASS;
}

/* The parse and one kernel LPM trie lookup. */
SEC("xdp")
int lpm_reference(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct fence_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct packet pkt = {};
	__u32 *hit;

	if (!cfg || parse_packet(ctx, cfg, &pkt) != PARSE_SMTP)
		return XDP_ABORTED;
	if (pkt.family == 4) {
		struct rule_key_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, pkt.saddr, 4);
		hit = bpf_map_lookup_elem(&reference_v4, &key);
	} else {
		struct rule_key_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, pkt.saddr, 16);
		hit = bpf_map_lookup_elem(&reference_v6, &key);
	}
	return hit ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
