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
