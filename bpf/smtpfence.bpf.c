// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * smtpfence data path: decides, per packet, whether a new SMTP connection
 * from a source is let in. Everything that is not TCP to an SMTP port passes
 * untouched; so does every packet the parser cannot make sense of, because the
 * kernel's own stack is the right place to reject those.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "gcra.h"
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

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct rule_key_v4);
	__type(value, struct rule_value);
	__uint(max_entries, FENCE_DEFAULT_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct rule_key_v6);
	__type(value, struct rule_value);
	__uint(max_entries, FENCE_DEFAULT_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_counters);
	__uint(max_entries, FENCE_DEFAULT_MAX_RULES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_info);
	__uint(max_entries, FENCE_DEFAULT_MAX_RULES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fence_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fence_stats);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct limit_key);
	__type(value, struct limit_state);
	__uint(max_entries, FENCE_LIMIT_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} limit_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct limit_key);
	__type(value, __u32);
	__uint(max_entries, FENCE_CONN_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__type(key, int);
	__type(value, struct conn_owner);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conn_owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct source_key);
	__type(value, struct source_stats);
	__uint(max_entries, FENCE_SOURCE_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sources SEC(".maps");

/* Recent SYN flows: tells a connection attempt from its retransmissions
 * (FENCE_SYN_FLOW_KEYS). Shared by all CPUs: a retransmission need not land
 * on the CPU of the first SYN. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct syn_flow_key);
	__type(value, __u64);
	__uint(max_entries, FENCE_SYN_FLOW_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} syn_flows SEC(".maps");

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

/* Paced rules' clocks and counters, by rule slot (sized like rule_counters). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_pace);
	__uint(max_entries, 2 * FENCE_DEFAULT_MAX_RULES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_pace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct limit_key);
	__type(value, struct pace_key_state);
	__uint(max_entries, FENCE_PACE_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pace_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pace_flow_key);
	__type(value, struct pace_flow);
	__uint(max_entries, FENCE_PACE_FLOW_KEYS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pace_flows SEC(".maps");

/* CAS attempts on a contended GCRA clock before the SYN is dropped. Every
 * failed attempt means another CPU admitted a connection for the same key at
 * that instant, so giving up errs towards the limit, never past it. */
#define GCRA_CAS_ATTEMPTS 4

/* What the parser learnt about a packet. */
enum parse_result {
	PARSE_PASS,      /* not TCP to an SMTP port: none of our business */
	PARSE_MALFORMED, /* truncated or invalid: pass, count */
	PARSE_SMTP,      /* TCP to an SMTP port with a complete header */
	PARSE_PORTLESS,  /* TCP whose port cannot be seen (fragment, long chain) */
};

struct packet {
	__u8 family; /* 4 or 6 */
	__u8 saddr[16];
	__u16 dport; /* host byte order; PARSE_SMTP only */
	struct tcphdr *tcp;
};

/*
 * The source lookup, kept behind this one function so that the LPM tries can
 * be replaced by a faster structure without touching the rest of the path:
 * the longest rule covering the source whose prefix is at most `max_prefixlen`.
 */
static __always_inline struct rule_value *lookup_source(const struct packet *pkt, __u32 max_prefixlen)
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
	struct rule_value *dry;  /* the longest dry-run rule longer than `live`: counts only */
};

/*
 * The longest prefix decides, except that an expired rule (its deadline is
 * kept here, in the kernel, so it ends even when no smtpfence process runs)
 * and a dry-run rule step aside for the next broader rule. `now` is the
 * CLOCK_BOOTTIME the caller already read, or 0: then it is read when a rule
 * with a deadline is met.
 */
static __always_inline struct judges find_judges(const struct packet *pkt, __u64 now)
{
	struct judges j = {};
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

static __always_inline enum parse_result parse_ipv4(void *l3, void *data_end,
						    const struct fence_config *cfg,
						    struct packet *pkt)
{
	struct iphdr *ip = l3;

	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
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

static __always_inline enum parse_result parse_ipv6(void *l3, void *data_end,
						    const struct fence_config *cfg,
						    struct packet *pkt)
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
				return fh->nexthdr == IPPROTO_TCP || ipv6_is_ext_header(fh->nexthdr) ?
					       PARSE_PORTLESS : PARSE_PASS;
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

static __always_inline enum parse_result parse_packet(struct xdp_md *ctx,
						      const struct fence_config *cfg,
						      struct packet *pkt)
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
	return bpf_map_update_elem(&syn_flows, &key, &now, BPF_NOEXIST) != -17 /* EEXIST */;
}

/* The limiter key of `saddr` under `rule`: the rule's id and the source
 * masked to the rule's key length. */
static __always_inline void make_limit_key(struct limit_key *key, const struct rule_value *rule,
					   __u8 family, const __u8 *saddr)
{
	__u32 bits = rule->key_prefixlen;

	key->rule_id = rule->rule_id;
	key->family = family;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		__u8 byte = saddr[i];

		if (bits >= 8)
			bits -= 8;
		else {
			byte &= (__u8)(0xff00 >> bits);
			bits = 0;
		}
		key->addr[i] = byte;
	}
}

enum limit_verdict { LIMIT_PASS, LIMIT_RATE, LIMIT_CONNS };

/* `key` is the source's limiter key under `rule` (make_limit_key). */
static __always_inline enum limit_verdict apply_limit(const struct rule_value *rule, const struct limit_key *key)
{
	if (rule->max_conns) {
		__u32 *open = bpf_map_lookup_elem(&conn_counts, key);

		if (open && *open >= rule->max_conns)
			return LIMIT_CONNS;
	}
	if (!rule->interval_ns)
		return LIMIT_PASS;

	__u64 now = bpf_ktime_get_ns();
	struct limit_state *st = bpf_map_lookup_elem(&limit_state, key);

	if (!st) {
		/* A new key starts with a full bucket: TAT = now. Two CPUs may race
		 * to create it; the loser finds the winner's entry. */
		struct limit_state fresh = { .tat_ns = now };

		bpf_map_update_elem(&limit_state, key, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&limit_state, key);
		if (!st)
			return LIMIT_PASS; /* the map refused even after eviction: fail open */
	}
#pragma unroll
	for (int i = 0; i < GCRA_CAS_ATTEMPTS; i++) {
		__u64 tat = st->tat_ns;
		__u64 next;

		if (!gcra_admit(tat, now, rule->interval_ns, rule->tolerance_ns, &next))
			return LIMIT_RATE;
		if (__sync_val_compare_and_swap(&st->tat_ns, tat, next) == tat)
			return LIMIT_PASS;
	}
	return LIMIT_RATE;
}

/* The pace of a paced rule, or NULL (not paced, or a stale entry). */
static __always_inline struct rule_pace *pace_of(const struct rule_value *rule)
{
	if (!(rule->flags & FENCE_RULE_PACED))
		return 0;
	__u32 slot = rule->slot;
	struct rule_pace *pace = bpf_map_lookup_elem(&rule_pace, &slot);

	if (!pace || pace->rule_id != rule->rule_id || !pace->interval_ns)
		return 0;
	return pace;
}

/* A paced rule admits a new connection attempt while its key's clock runs
 * at most FENCE_PACE_ADMIT_INTERVALS intervals ahead, within
 * FENCE_PACE_ADMIT_MIN_NS and FENCE_PACE_ADMIT_MAX_NS; a retransmitted SYN
 * (the attempt was refused once) while it runs at most twice that ahead, so
 * that a refused attempt mostly waits a second, not the sender's SYN
 * backoff. A key with no clock yet is idle. */
static __always_inline int pace_admits(const struct rule_value *rule, const struct limit_key *key, int new_attempt)
{
	struct rule_pace *pace = pace_of(rule);

	if (!pace)
		return 1;
	struct pace_key_state *clock = bpf_map_lookup_elem(&pace_keys, key);

	if (!clock)
		return 1;
	__u64 ahead = pace->interval_ns * FENCE_PACE_ADMIT_INTERVALS;

	if (ahead < FENCE_PACE_ADMIT_MIN_NS)
		ahead = FENCE_PACE_ADMIT_MIN_NS;
	if (!new_attempt)
		ahead *= 2;
	if (ahead > FENCE_PACE_ADMIT_MAX_NS)
		ahead = FENCE_PACE_ADMIT_MAX_NS;
	if (clock->tat_ns <= bpf_ktime_get_ns() + ahead)
		return 1;
	__sync_fetch_and_add(&pace->refused, 1);
	return 0;
}

/* What `rule` does to this attempt. A limit meters connections; a port-less
 * fragment is none, so only a block drops those. `live` is a constant: a
 * dry-run rule is never paced (the CLI refuses it), so its judgement skips
 * the pace, which also keeps the program within the verifier's budget. */
static __always_inline enum fence_verdict judge(const struct rule_value *rule, const struct packet *pkt,
						enum parse_result res, int new_attempt, const int live)
{
	if (rule->action == FENCE_ACTION_BLOCK)
		return FENCE_VERDICT_BLOCKED;
	if (rule->action == FENCE_ACTION_LIMIT && res == PARSE_SMTP) {
		struct limit_key key = {};

		make_limit_key(&key, rule, pkt->family, pkt->saddr);
		enum limit_verdict limited = apply_limit(rule, &key);

		if (limited == LIMIT_RATE)
			return FENCE_VERDICT_RATE;
		if (limited == LIMIT_CONNS)
			return FENCE_VERDICT_CONNS;
		/* Last: a connection the other terms refuse pays no message. */
		if (live && !pace_admits(rule, &key, new_attempt))
			return FENCE_VERDICT_RATE;
	}
	return FENCE_VERDICT_PASSED;
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

	if (!clock)
		return 0;
#pragma unroll
	for (int i = 0; i < GCRA_CAS_ATTEMPTS; i++) {
		__u64 tat = clock->tat_ns;
		__u64 next;

		if (!gcra_admit(tat, now, interval, (FENCE_EVENT_BURST - 1) * interval, &next))
			return 0;
		if (__sync_val_compare_and_swap(&clock->tat_ns, tat, next) == tat)
			return 1;
	}
	return 0;
}

static __always_inline void emit_event(const struct packet *pkt, const struct rule_value *rule,
				       enum fence_verdict verdict, __u64 now, struct fence_stats *st)
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
	struct source_stats *src = bpf_map_lookup_elem(&sources, &key);

	if (!src) {
		struct source_stats fresh = { .first_seen_ns = now };

		bpf_map_update_elem(&sources, &key, &fresh, BPF_NOEXIST);
		src = bpf_map_lookup_elem(&sources, &key);
		if (!src)
			return;
	}
	__sync_fetch_and_add(&src->syn_packets, 1);
	if (new_attempt) {
		__sync_fetch_and_add(&src->attempts, 1);
		if (verdict != FENCE_VERDICT_PASSED && verdict != FENCE_VERDICT_WOULD_DROP)
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

SEC("xdp")
int smtpfence_xdp(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct fence_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct fence_stats *st = bpf_map_lookup_elem(&stats, &zero);

	if (!cfg || !st)
		return XDP_PASS;
	st->seen++;

	struct packet pkt = {};
	enum parse_result res = parse_packet(ctx, cfg, &pkt);
	int new_attempt = 0;
	__u64 now = 0;

	switch (res) {
	case PARSE_MALFORMED:
		st->malformed++;
		/* fall through */
	case PARSE_PASS:
		st->passed++;
		return XDP_PASS;
	case PARSE_SMTP:
		st->smtp++;
		if (!is_new_connection(pkt.tcp)) {
			/* Established sessions finish what they are doing. */
			st->passed++;
			return XDP_PASS;
		}
		st->smtp_syn++;
		/* Attempt or retransmission: counting only. Every SYN is judged
		 * below as before (a limit charges an admitted retransmission
		 * like any SYN; a rule changed since the first SYN judges it). */
		now = bpf_ktime_get_boot_ns();
		new_attempt = is_new_attempt(&pkt, now);
		if (new_attempt)
			st->smtp_attempts++;
		break;
	case PARSE_PORTLESS:
		st->fragments++;
		break;
	}

	struct judges j = find_judges(&pkt, now);
	enum fence_verdict verdict = FENCE_VERDICT_PASSED;
	const struct rule_value *decider = j.live;

	if (j.live) {
		verdict = judge(j.live, &pkt, res, new_attempt, 1);
		count_rule(j.live, verdict, new_attempt);
	}
	if (j.dry) {
		enum fence_verdict would = judge(j.dry, &pkt, res, new_attempt, 0) == FENCE_VERDICT_PASSED ?
						   FENCE_VERDICT_PASSED : FENCE_VERDICT_WOULD_DROP;

		count_rule(j.dry, would, new_attempt);
		if (would == FENCE_VERDICT_WOULD_DROP) {
			st->would_drop++;
			if (verdict == FENCE_VERDICT_PASSED) {
				verdict = would;
				decider = j.dry;
			}
		}
	}
	if (res == PARSE_SMTP)
		account_source(&pkt, decider, verdict, new_attempt, now, st);

	if (verdict != FENCE_VERDICT_PASSED && verdict != FENCE_VERDICT_WOULD_DROP) {
		st->dropped++;
		if (new_attempt)
			st->dropped_attempts++;
		return XDP_DROP;
	}
	st->passed++;
	return XDP_PASS;
}

/*
 * --max-conns bookkeeping, on the mail host's own TCP sockets: attached to the
 * root cgroup, so it sees every socket of the host (of every namespace; only
 * the fence's own namespace counts). A server socket of an SMTP port that
 * reaches ESTABLISHED from a source under a max-conns rule is charged to the
 * rule's key; it is released exactly once, when the socket stops being a live
 * session: the MTA closed it (FIN_WAIT1, LAST_ACK) or it died (CLOSE, e.g. a
 * reset). A client that vanishes without a FIN is released when the MTA's own
 * timeout closes the socket.
 */
static __always_inline void charge_connection(struct bpf_sock_ops *skops, const struct fence_config *cfg)
{
	if (!is_smtp_port_host(cfg, skops->local_port))
		return;

	struct packet pkt = {};

	if (skops->family == 2 /* AF_INET */) {
		__u32 ip = skops->remote_ip4;

		pkt.family = 4;
		__builtin_memcpy(pkt.saddr, &ip, 4);
	} else if (skops->family == 10 /* AF_INET6 */) {
		__u32 ip6[4] = { skops->remote_ip6[0], skops->remote_ip6[1], skops->remote_ip6[2],
				 skops->remote_ip6[3] };

		if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff)) {
			/* An IPv4 client of a dual-stack socket (::ffff:a.b.c.d):
			 * on the wire, and so in the rules, it is IPv4. */
			pkt.family = 4;
			__builtin_memcpy(pkt.saddr, &ip6[3], 4);
		} else {
			pkt.family = 6;
			__builtin_memcpy(pkt.saddr, ip6, 16);
		}
	} else {
		return;
	}

	struct rule_value *rule = find_judges(&pkt, 0).live;

	if (!rule || rule->action != FENCE_ACTION_LIMIT || !rule->max_conns)
		return;

	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return;
	struct conn_owner *owner = bpf_sk_storage_get(&conn_owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!owner)
		return;
	make_limit_key(&owner->key, rule, pkt.family, pkt.saddr);
	owner->released = 0;

	__u32 one = 1;
	__u32 *open = bpf_map_lookup_elem(&conn_counts, &owner->key);

	if (open)
		__sync_fetch_and_add(open, 1);
	else if (bpf_map_update_elem(&conn_counts, &owner->key, &one, BPF_NOEXIST) != 0 &&
		 (open = bpf_map_lookup_elem(&conn_counts, &owner->key)))
		__sync_fetch_and_add(open, 1);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void release_connection(struct bpf_sock_ops *skops)
{
	__u32 new_state = skops->args[1];

	if (new_state != BPF_TCP_FIN_WAIT1 && new_state != BPF_TCP_LAST_ACK && new_state != BPF_TCP_CLOSE)
		return;
	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return;
	struct conn_owner *owner = bpf_sk_storage_get(&conn_owner, sk, 0, 0);

	if (!owner || __sync_lock_test_and_set(&owner->released, 1))
		return;
	__u32 *open = bpf_map_lookup_elem(&conn_counts, &owner->key);

	if (open && *open > 0)
		__sync_fetch_and_sub(open, 1);
}

SEC("sockops")
int smtpfence_sockops(struct bpf_sock_ops *skops)
{
	__u32 zero = 0;
	struct fence_config *cfg = bpf_map_lookup_elem(&config, &zero);

	if (!cfg || bpf_get_netns_cookie(skops) != cfg->netns_cookie)
		return 1;
	if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		charge_connection(skops, cfg);
	else if (skops->op == BPF_SOCK_OPS_STATE_CB)
		release_connection(skops);
	return 1;
}

/*
 * Message pacing, at the mail host's egress (tc, before the root qdisc): a
 * reply of the mail host to a source of a paced rule is steered into the
 * rule's HTB class (skb->priority = classid) when it answers a message body;
 * everything else leaves as before. See FENCE_PACE_MIN_UPLOAD.
 */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_STOLEN 4

/* Where the egress parser found a mail host's SMTP segment with payload. */
struct egress_segment {
	struct packet remote; /* family and the remote address (in saddr) */
	struct tcphdr *tcp;
	__u32 payload_off;    /* from the start of the frame */
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

/* A TLS handshake record (ChangeCipherSpec 0x14, Handshake 0x16, version
 * 3.x) starts the reply: the STARTTLS negotiation, not an answer to a body
 * (the ClientHello is an upload of hundreds of bytes too). */
static __always_inline int is_tls_handshake(struct __sk_buff *skb, __u32 off)
{
	__u8 head[2];

	if (bpf_skb_load_bytes(skb, off, head, sizeof(head)) != 0)
		return 0;
	return (head[0] == 0x14 || head[0] == 0x16) && head[1] == 0x03;
}

/* The clock of the key `remote` belongs to under a paced rule, made (idle,
 * with the rule's next class) when the key first sends; NULL only when the
 * map refuses even after eviction. */
static __always_inline struct pace_key_state *pace_clock(const struct rule_value *rule, struct rule_pace *pace,
							 const struct packet *remote)
{
	struct limit_key key = {};

	make_limit_key(&key, rule, remote->family, remote->saddr);
	struct pace_key_state *clock = bpf_map_lookup_elem(&pace_keys, &key);

	if (clock)
		return clock;
	struct pace_key_state fresh = {};
	__u32 classes = pace->classes ? pace->classes : 1;

	fresh.class_offset = __sync_fetch_and_add(&pace->next_class, 1) % classes;
	/* Two CPUs may race to make it; the loser finds the winner's. */
	bpf_map_update_elem(&pace_keys, &key, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&pace_keys, &key);
}

/* Moves a key's clock one interval on for a steered packet; returns when
 * that packet leaves the class at the latest. */
static __always_inline __u64 charge_pace(struct pace_key_state *clock, __u64 interval, __u64 now)
{
#pragma unroll
	for (int i = 0; i < GCRA_CAS_ATTEMPTS; i++) {
		__u64 tat = clock->tat_ns;
		__u64 depart = tat > now ? tat : now;

		if (__sync_val_compare_and_swap(&clock->tat_ns, tat, depart + interval) == tat)
			return depart + interval;
	}
	/* Contended: the class paces the packet all the same; the clock is
	 * behind by one interval, which the next charge makes up. */
	return now + interval;
}

/* Steers a packet that lets a message start into the class of `clock`'s key
 * and moves the clock one interval on; returns when the packet leaves at the
 * latest. 0 when it would wait more than FENCE_PACE_MAX_DELAY_NS (it then
 * leaves unpaced, counted as overflow) or the key has no clock. */
static __always_inline __u64 hold_packet(struct __sk_buff *skb, struct rule_pace *pace,
					 struct pace_key_state *clock, __u64 now)
{
	if (!clock)
		return 0;
	if (clock->tat_ns > now + FENCE_PACE_MAX_DELAY_NS) {
		__sync_fetch_and_add(&pace->overflow, 1);
		return 0;
	}
	__u64 until = charge_pace(clock, pace->interval_ns, now);

	__sync_fetch_and_add(&pace->messages, 1);
	__sync_fetch_and_add(&pace->packets, 1);
	skb->priority = pace->classid + clock->class_offset;
	return until;
}

/* Sequence number order, modulo 2^32. */
static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

SEC("tc")
int smtpfence_pace(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct fence_config *cfg = bpf_map_lookup_elem(&config, &zero);

	if (!cfg || !cfg->paced_rules)
		return TC_ACT_UNSPEC;

	struct egress_segment seg = {};

	if (!parse_egress(skb, cfg, &seg))
		return TC_ACT_UNSPEC;
	struct rule_value *rule = find_judges(&seg.remote, 0).live;

	if (!rule || rule->action != FENCE_ACTION_LIMIT)
		return TC_ACT_UNSPEC;
	struct rule_pace *pace = pace_of(rule);

	if (!pace || !pace->classid)
		return TC_ACT_UNSPEC;

	struct tcphdr *tcp = seg.tcp;
	struct pace_flow_key key = {
		.family = seg.remote.family,
		.local_port = bpf_ntohs(tcp->source),
		.remote_port = bpf_ntohs(tcp->dest),
	};

	__builtin_memcpy(key.addr, seg.remote.saddr, 16);
	__u32 seq = bpf_ntohl(tcp->seq);
	__u32 ack = bpf_ntohl(tcp->ack_seq);
	__u32 end = seq + seg.payload_len + (tcp->syn ? 1 : 0);
	__u64 now = bpf_ktime_get_ns();
	struct pace_flow *flow = bpf_map_lookup_elem(&pace_flows, &key);

	/* An entry left by an earlier session on the same ports (the LRU keeps
	 * flows past their end) under another rule, or any SYN-ACK but the
	 * same handshake's again, is not this session's: its random ISN would
	 * compare "before" the old sequence half the time, and the whole
	 * session would pass as retransmissions, unpaced. */
	if (flow && (flow->rule_id != rule->rule_id || (tcp->syn && seq != flow->sent_end - 1)))
		flow = 0;
	if (flow && seq_before(seq, flow->sent_end)) {
		/* A retransmission. While the original may still wait in the
		 * class, sending it unpaced would let the held packet's message
		 * start early; the original is still queued, so nothing is lost.
		 * Taken away as if sent (STOLEN), not dropped (SHOT): a SYN-ACK
		 * retransmission that fails makes the kernel give up the
		 * half-open connection, and the sender's ACK then meets a RST. */
		if (flow->held && now < flow->hold_until_ns)
			return TC_ACT_STOLEN;
		return TC_ACT_UNSPEC;
	}
	if (tcp->syn) {
		/* A new session: its SYN-ACK carries the first message. */
		struct pace_flow fresh = { .turn_ack = ack, .sent_end = end, .rule_id = rule->rule_id };

		fresh.hold_until_ns = hold_packet(skb, pace, pace_clock(rule, pace, &seg.remote), now);
		if (fresh.hold_until_ns)
			fresh.held = FENCE_PACE_HELD_HANDSHAKE;
		bpf_map_update_elem(&pace_flows, &key, &fresh, BPF_ANY);
		return TC_ACT_UNSPEC;
	}
	if (!flow) {
		/* A session open before the rule (or forgotten by the LRU): its
		 * first reply starts the count, and its next message is free. */
		struct pace_flow fresh = { .turn_ack = ack, .sent_end = end, .rule_id = rule->rule_id };

		bpf_map_update_elem(&pace_flows, &key, &fresh, BPF_ANY);
		return TC_ACT_UNSPEC;
	}
	flow->sent_end = end;
	if (ack == flow->turn_ack)
		return TC_ACT_UNSPEC; /* more of the same reply */

	/* A new reply turn: the client sent something since the last. */
	__u32 upload = ack - flow->turn_ack;

	flow->turn_ack = ack;
	flow->held = 0;
	if (upload < FENCE_PACE_MIN_UPLOAD || is_tls_handshake(skb, seg.payload_off))
		return TC_ACT_UNSPEC;
	/* The reply to a message body: it lets the session's next message start. */
	struct pace_key_state *clock = pace_clock(rule, pace, &seg.remote);

	if (!clock)
		return TC_ACT_UNSPEC;
	if (flow->bodies < 0xffff)
		flow->bodies++;
	/* The session's first body was let in by its SYN-ACK, so a session of one
	 * message (Postfix with TLS) costs one slot. But the reply to it frees a
	 * second message at once: senders that reuse sessions would get two
	 * messages per new session, and a second in which many sessions start
	 * (a backlog unloaded) up to twice the pace. So once a key has carried a
	 * second message in a session, its first body replies are held as well:
	 * every message then starts on a slot of its own, and a session costs
	 * one slot more than its messages. */
	if (flow->bodies == 2)
		clock->flags |= FENCE_PACE_KEY_REUSES;
	else if (flow->bodies == 1 && !(clock->flags & FENCE_PACE_KEY_REUSES))
		return TC_ACT_UNSPEC;
	/* Only the reply's first segment waits in the class: the class charges
	 * every packet, and one per message keeps it at the pace. Later segments
	 * (more of the reply, TLS records after it) overtake it, and the sender's
	 * TCP keeps them until the first arrives: it cannot read past it. */
	flow->hold_until_ns = hold_packet(skb, pace, clock, now);
	if (flow->hold_until_ns)
		flow->held = FENCE_PACE_HELD_REPLY;
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
