// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The benchmark's baseline: the cheapest XDP program that still does the
 * parsing any SMTP filter has to do. It walks Ethernet, then IPv4 or IPv6,
 * then TCP, with the bounds checks the verifier demands, reads the destination
 * port and the flags, and passes every packet. No VLAN tags, no IPv6 extension
 * headers, no maps, no counters.
 *
 * What the fence costs on top of this is the price of its decision (config
 * lookup, port bitmap, counters, LPM lookup), not of touching the packet.
 *
 * baseline_tc is the same parse as a tc program, the baseline of the fence's
 * egress (message pacing) program: it reads the source port and lets the
 * packet go on (TC_ACT_UNSPEC).
 *
 * spoof_xdp plays a spoofed SYN flood: BPF_PROG_TEST_RUN repeats one frame,
 * so it rewrites the frame's source address to a random one inside the
 * prefix userspace sets (spoof_v4_* or spoof_v6_*), then tail-calls the
 * program under test in spoof_target (the fence, or baseline_xdp for the
 * baseline column: the rewrite costs both the same).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Parses Ethernet, IPv4 or IPv6, TCP; returns the TCP header or NULL. */
static __always_inline struct tcphdr *parse_tcp(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > data_end)
		return 0;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
			return 0;
		if (ip->protocol != IPPROTO_TCP)
			return 0;
		tcp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return 0;
		if (ip6->nexthdr != IPPROTO_TCP)
			return 0;
		tcp = (void *)(ip6 + 1);
	} else {
		return 0;
	}

	if ((void *)(tcp + 1) > data_end || tcp->doff < 5)
		return 0;
	return tcp;
}

SEC("xdp")
int baseline_xdp(struct xdp_md *ctx)
{
	struct tcphdr *tcp = parse_tcp((void *)(long)ctx->data, (void *)(long)ctx->data_end);

	if (!tcp)
		return XDP_PASS;
	/* The volatile store keeps the port and flag reads (and so the whole
	 * parse) alive: the compiler may not drop a volatile access. */
	volatile __u32 sink = ((__u32)bpf_ntohs(tcp->dest) << 16) | ((__u32)tcp->syn << 1) |
			      tcp->ack;
	(void)sink;
	return XDP_PASS;
}

/* Set by userspace before a run: the source prefix (network byte order) and
 * the mask of its fixed bits; the other bits are random. */
volatile __u32 spoof_v4_prefix;
volatile __u32 spoof_v4_mask;
volatile __u8 spoof_v6_prefix[16];
volatile __u8 spoof_v6_mask[16];
__u64 spoof_state = 0x9e3779b97f4a7c15ull; /* xorshift64; the bench runs on one CPU */

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} spoof_target SEC(".maps");

static __always_inline __u64 spoof_random(void)
{
	__u64 x = spoof_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	spoof_state = x;
	return x;
}

SEC("xdp")
int spoof_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return XDP_ABORTED;
		ip->saddr = spoof_v4_prefix | ((__u32)spoof_random() & ~spoof_v4_mask);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_ABORTED;
		__u64 r[2] = { spoof_random(), spoof_random() };
		__u8 *random = (__u8 *)r;

#pragma unroll
		for (int i = 0; i < 16; i++)
			ip6->saddr.in6_u.u6_addr8[i] = spoof_v6_prefix[i] |
						       (random[i] & ~spoof_v6_mask[i]);
	}
	bpf_tail_call(ctx, &spoof_target, 0);
	return XDP_ABORTED;
}

SEC("tc")
int baseline_tc(struct __sk_buff *skb)
{
	struct tcphdr *tcp = parse_tcp((void *)(long)skb->data, (void *)(long)skb->data_end);

	if (tcp) {
		volatile __u32 sink = ((__u32)bpf_ntohs(tcp->source) << 16) |
				      ((__u32)tcp->syn << 1) | tcp->ack;
		(void)sink;
	}
	return -1; /* TC_ACT_UNSPEC */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
