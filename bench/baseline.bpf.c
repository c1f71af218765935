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
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int baseline_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
			return XDP_PASS;
		if (ip->protocol != IPPROTO_TCP)
			return XDP_PASS;
		tcp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return XDP_PASS;
		if (ip6->nexthdr != IPPROTO_TCP)
			return XDP_PASS;
		tcp = (void *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}

	if ((void *)(tcp + 1) > data_end || tcp->doff < 5)
		return XDP_PASS;

	/* The volatile store keeps the port and flag reads (and so the whole
	 * parse) alive: the compiler may not drop a volatile access. */
	volatile __u32 sink = ((__u32)bpf_ntohs(tcp->dest) << 16) | ((__u32)tcp->syn << 1) | tcp->ack;
	(void)sink;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
