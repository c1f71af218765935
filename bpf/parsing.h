/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The parsers: what a packet is, read with bounds checks only. Ingress
 * (XDP) finds the source and SMTP port of a TCP packet, through VLAN tags,
 * IPv4 options, IPv6 extension headers and fragments; egress (tc) finds the
 * mail host's own SMTP segments to a remote address. A packet the parser
 * cannot make sense of passes: the kernel's own stack is the right place to
 * reject it.
 */
#ifndef SMTPFENCE_PARSING_H
#define SMTPFENCE_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "smtpfence_abi.h"

/* 802.1Q and 802.1ad; XDP sees tags only where the NIC does not strip them. */
#define MAX_VLAN_TAGS 2
/* Enough for any real IPv6 packet (hop-by-hop, routing, fragment, two
 * destination-options headers, AH); a longer chain is judged by source alone. */
#define MAX_IPV6_EXT_HEADERS 6

#define IPV4_MF 0x2000
#define IPV4_OFFSET_MASK 0x1fff
#define IPV6_FRAG_OFFSET_MASK 0xfff8

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct ipv6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* What the parser learnt about a packet. */
enum parse_result {
	PARSE_PASS, /* not TCP to an SMTP port: none of our business */
	PARSE_MALFORMED, /* truncated or invalid: pass, count */
	PARSE_SMTP, /* TCP to an SMTP port with a complete header */
	PARSE_PORTLESS, /* TCP whose port cannot be seen (fragment, long chain) */
};

/* An address the rules are looked up by: an ingress packet's source (and
 * its SMTP SYN), a socket's or an egress segment's remote. */
struct packet {
	__u8 family; /* 4 or 6 */
	__u8 saddr[16];
	__u16 dport; /* host byte order; PARSE_SMTP only */
	struct tcphdr *tcp;
};

/* `port` in host byte order. */
static __always_inline int is_smtp_port_host(const struct fence_config *cfg, __u32 port)
{
	return (cfg->smtp_ports[(port >> 6) & (FENCE_PORT_WORDS - 1)] >> (port & 63)) & 1;
}

static __always_inline int is_smtp_port(const struct fence_config *cfg, __be16 port)
{
	return is_smtp_port_host(cfg, bpf_ntohs(port));
}

/* Classifies a TCP header at `l4` of a packet that is not a later fragment. */
static __always_inline enum parse_result parse_tcp(void *l4, void *data_end,
						   const struct fence_config *cfg,
						   struct packet *pkt, int first_fragment)
{
	struct tcphdr *tcp = l4;

	if ((void *)(tcp + 1) > data_end || tcp->doff < 5)
		/* A first fragment cut before the flags hides a possible SYN;
		 * an unfragmented truncated segment the kernel drops itself. */
		return first_fragment ? PARSE_PORTLESS : PARSE_MALFORMED;
	if (!is_smtp_port(cfg, tcp->dest))
		return PARSE_PASS;
	pkt->tcp = tcp;
	pkt->dport = bpf_ntohs(tcp->dest);
	return PARSE_SMTP;
}

static __always_inline enum parse_result
parse_ipv4(void *l3, void *data_end, const struct fence_config *cfg, struct packet *pkt)
{
	struct iphdr *ip = l3;

	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	/* The options too must be in the frame: a first fragment cut inside
	 * them is a truncated header, not a fragment whose port is hidden. */
	if (l3 + ip->ihl * 4 > data_end)
		return PARSE_MALFORMED;
	if (ip->protocol != IPPROTO_TCP)
		return PARSE_PASS;

	pkt->family = 4;
	__builtin_memcpy(pkt->saddr, &ip->saddr, 4);

	__u16 frag = bpf_ntohs(ip->frag_off);

	if (frag & IPV4_OFFSET_MASK)
		return PARSE_PORTLESS;
	return parse_tcp(l3 + ip->ihl * 4, data_end, cfg, pkt, (frag & IPV4_MF) != 0);
}

static __always_inline int ipv6_is_ext_header(__u8 nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_MH:
		return 1;
	}
	return 0;
}

static __always_inline enum parse_result
parse_ipv6(void *l3, void *data_end, const struct fence_config *cfg, struct packet *pkt)
{
	struct ipv6hdr *ip6 = l3;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;

	pkt->family = 6;
	__builtin_memcpy(pkt->saddr, &ip6->saddr, 16);

	__u8 nexthdr = ip6->nexthdr;
	void *cursor = ip6 + 1;
	int fragmented = 0;

#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
		if (!ipv6_is_ext_header(nexthdr))
			break;
		if (nexthdr == IPPROTO_FRAGMENT) {
			struct ipv6_frag_hdr *fh = cursor;

			if ((void *)(fh + 1) > data_end)
				return PARSE_MALFORMED;
			if (bpf_ntohs(fh->frag_off) & IPV6_FRAG_OFFSET_MASK)
				/* A later fragment: TCP or not, its port is unknowable. */
				return fh->nexthdr == IPPROTO_TCP ||
						       ipv6_is_ext_header(fh->nexthdr) ?
					       PARSE_PORTLESS :
					       PARSE_PASS;
			fragmented = 1;
			nexthdr = fh->nexthdr;
			cursor = fh + 1;
			continue;
		}
		struct ipv6_ext_hdr *eh = cursor;

		if ((void *)(eh + 1) > data_end)
			return PARSE_MALFORMED;
		/* AH counts its length in 4-byte units less 2, the others in
		 * 8-byte units less 1. */
		__u32 len = nexthdr == IPPROTO_AH ? ((__u32)eh->hdrlen + 2) * 4 :
						    ((__u32)eh->hdrlen + 1) * 8;
		nexthdr = eh->nexthdr;
		cursor += len;
		/* A header cut short by the end of the frame is a truncated
		 * header, whatever it says comes next. */
		if (cursor > data_end)
			return PARSE_MALFORMED;
	}
	if (ipv6_is_ext_header(nexthdr))
		/* Chain longer than we walk: a SYN could hide behind it. */
		return PARSE_PORTLESS;
	if (nexthdr != IPPROTO_TCP)
		return PARSE_PASS;
	return parse_tcp(cursor, data_end, cfg, pkt, fragmented);
}

/* Walks Ethernet and up to MAX_VLAN_TAGS VLAN tags: sets *proto to the
 * EtherType they carry and *l3 to what follows; 0 when a header is cut short. */
static __always_inline int parse_ethernet(void *data, void *data_end, __be16 *proto, void **l3)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	__be16 type = eth->h_proto;
	void *cursor = eth + 1;

#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (type != bpf_htons(ETH_P_8021Q) && type != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vlan = cursor;

		if ((void *)(vlan + 1) > data_end)
			return 0;
		type = vlan->encapsulated_proto;
		cursor = vlan + 1;
	}
	*proto = type;
	*l3 = cursor;
	return 1;
}

static __always_inline enum parse_result
parse_packet(struct xdp_md *ctx, const struct fence_config *cfg, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 proto;
	void *cursor;

	if (!parse_ethernet(data, data_end, &proto, &cursor))
		return PARSE_MALFORMED;

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(cursor, data_end, cfg, pkt);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(cursor, data_end, cfg, pkt);
	return PARSE_PASS;
}

static __always_inline int is_new_connection(const struct tcphdr *tcp)
{
	return tcp->syn && !tcp->ack;
}

/* Where the egress parser found a mail host's SMTP segment with payload. */
struct egress_segment {
	struct packet remote; /* family and the remote address (in saddr) */
	struct tcphdr *tcp;
	__u32 payload_off; /* from the start of the frame */
	__u32 payload_len;
};

/* Only what the mail host's own stack sends: no fragments, no IPv6
 * extension headers; anything else is not ours to pace. */
static __always_inline int parse_egress(struct __sk_buff *skb, const struct fence_config *cfg,
					struct egress_segment *seg)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__be16 proto;
	void *cursor;

	if (!parse_ethernet(data, data_end, &proto, &cursor))
		return 0;

	__u32 l3_len;
	struct tcphdr *tcp;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || ip->ihl < 5 ||
		    (ip->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK)))
			return 0;
		tcp = (void *)ip + ip->ihl * 4;
		l3_len = bpf_ntohs(ip->tot_len);
		if (l3_len < ip->ihl * 4)
			return 0;
		l3_len -= ip->ihl * 4;
		seg->remote.family = 4;
		__builtin_memcpy(seg->remote.saddr, &ip->daddr, 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return 0;
		tcp = (void *)(ip6 + 1);
		l3_len = bpf_ntohs(ip6->payload_len);
		seg->remote.family = 6;
		__builtin_memcpy(seg->remote.saddr, &ip6->daddr, 16);
	} else {
		return 0;
	}
	if ((void *)(tcp + 1) > data_end || !is_smtp_port(cfg, tcp->source))
		return 0;
	__u32 tcp_len = tcp->doff * 4;

	if (tcp_len < sizeof(*tcp) || l3_len < tcp_len)
		return 0;
	/* Segments with payload, and SYN-ACKs; not pure ACKs, FINs, RSTs. */
	if (l3_len == tcp_len && !(tcp->syn && tcp->ack))
		return 0;
	seg->tcp = tcp;
	seg->payload_off = (__u32)((void *)tcp - data) + tcp_len;
	seg->payload_len = l3_len - tcp_len;
	return 1;
}

#endif
