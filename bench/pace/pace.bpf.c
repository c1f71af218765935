// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * PROTOTYPE (bench/pace, issue 8): pace the mail host's own SMTP replies to a
 * paced source with earliest-departure-time (EDT). Attached as a tc egress
 * (clsact) program on the mail host's interface, under the fq root qdisc,
 * which holds every skb until skb->tstamp (CLOCK_MONOTONIC).
 *
 * Packets judged: IPv4/TCP from an SMTP port (25, 465, 587) to a destination
 * inside cfg.net/cfg.mask (the "rule"). Everything else returns TC_ACT_OK
 * untouched (tstamp unchanged), after one config lookup and the parse.
 *
 * Modes (cfg.mode):
 *   0 MEASURE  nothing is delayed; counters only (payload packets, turns)
 *   1 PACKET   every payload-carrying packet takes one slot of the clock
 *   2 TURN     only a "turn" takes a slot: a payload packet whose ack_seq
 *              differs from the previous payload packet of the same flow,
 *              i.e. the client sent bytes in between (a reply to something).
 *              Continuation segments of the same reply follow unpaced.
 *   3 BIGTURN  only a turn after which the client had uploaded at least
 *              cfg.min_upload bytes since the flow's previous server payload
 *              (the ack_seq delta): the reply to a message body, not to a
 *              command, whatever the encryption. A heuristic under test.
 * Clock (cfg.per_session): 0 one clock for the whole rule (bpf_spin_lock),
 *   1 one clock per TCP flow (per session).
 * Every packet of a paced flow (pure ACKs and FIN included) departs no earlier
 * than the flow's previous packet: fq orders a flow's queue by time_to_send,
 * so without this an unpaced ACK would overtake a held reply.
 * cfg.max_delay_ns bounds the delay of any packet (stays far below fq's
 * horizon and senders' timeouts); when the clock runs further ahead than that,
 * the packet leaves at now + max_delay and the clock is pulled back (counted
 * as "capped": the pace is not held then, the session is never stalled).
 *
 * cfg.free_turns exempts a flow's first turns (connection set-up) from the
 * clock; the connection cap (XDP, SYNs) is then what paces connections.
 *
 * cfg.edt = 0 computes the departure times (stats: the delays EDT would give)
 * without writing them. cfg.classid != 0 steers every payload packet of a
 * paced flow into an HTB class (skb->priority = major:minor, which HTB honours
 * before its filters): with a size table (stab mpu) that makes every packet
 * cost the same, the class's rate is a packet rate, the same per-rule clock as
 * EDT but as a token bucket. This lab's kernel has no sch_fq (nor etf, netem,
 * act_police, sch_bpf): see README.md.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef BPF_SKB_TSTAMP_DELIVERY_MONO
#define BPF_SKB_TSTAMP_DELIVERY_MONO 1
#endif

struct pace_cfg {
	__u32 net; /* network byte order */
	__u32 mask; /* network byte order; 0 = rule off */
	__u64 interval_ns; /* one slot */
	__u64 max_delay_ns; /* bound per packet */
	__u32 mode;
	__u32 per_session;
	__u32 edt; /* 1: write the departure time (needs fq as root) */
	__u32 min_upload; /* mode 3 threshold, bytes */
	__u32 free_turns; /* a flow's first free_turns turns take no slot
	                     * (connection set-up: banner, EHLO, STARTTLS, TLS) */
	__u32 classid; /* != 0: payload packets of paced flows get
	                     * skb->priority = classid (an HTB class), the
	                     * token-bucket stand-in for fq on kernels without it */
};

struct pace_clock {
	struct bpf_spin_lock lock;
	__u64 next;
};

struct flow_key {
	__u32 daddr;
	__u16 dport;
	__u16 sport;
};

struct flow_val {
	__u64 last_depart; /* departure time of the flow's last packet */
	__u64 next; /* per-session clock */
	__u32 last_ack; /* ack_seq of the flow's last payload packet */
	__u32 turns;
	__u32 payload_pkts;
	__u32 have_ack;
	__u32 slotted_ack; /* ack_seq of the flow's last slotted turn */
	__u32 slotted;
	__u64 first_ns;
	__u64 last_ns;
	__u64 max_delay_ns;
};

enum {
	ST_MATCHED, /* packets from an SMTP port to the rule's net */
	ST_PAYLOAD, /* of those, carrying payload */
	ST_TURNS, /* of those, turns */
	ST_SLOTS, /* packets that took a slot of the clock */
	ST_DELAYED, /* packets whose departure was moved later */
	ST_CAPPED, /* slots capped at max_delay */
	ST_MAX_DELAY_NS, /* largest delay given to a packet */
	ST_SUM_DELAY_NS, /* sum of the delays of slotted packets */
	ST_FLOWS, /* flows seen */
	ST_OTHER, /* packets passed without a look at the rule */
	ST_BANNERS, /* first server payload of a flow */
	ST_STEERED, /* packets steered into the HTB class */
	ST_HIST, /* turns by client upload since the previous server
	                  * payload: [ST_HIST + i] counts i*128 <= bytes < (i+1)*128,
	                  * the last bucket everything >= 2048 */
	ST_N = ST_HIST + 17,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pace_cfg);
	__uint(max_entries, 1);
} pace_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pace_clock);
	__uint(max_entries, 1);
} pace_clock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, ST_N);
} pace_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
	__uint(max_entries, 4096);
} pace_flows SEC(".maps");

static __always_inline void stat_add(__u32 i, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&pace_stats, &i);
	if (p)
		__sync_fetch_and_add(p, v);
}

static __always_inline void stat_max(__u32 i, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&pace_stats, &i);
	if (p && v > *p)
		*p = v; /* racy max: fine for a measurement */
}

static __always_inline int is_smtp_port(__u16 port)
{
	return port == 25 || port == 465 || port == 587;
}

SEC("tc")
int pace_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 zero = 0;

	struct pace_cfg *cfg = bpf_map_lookup_elem(&pace_cfg, &zero);
	if (!cfg || !cfg->mask)
		return TC_ACT_OK;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto other;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
		goto other;
	if ((ip->daddr & cfg->mask) != cfg->net)
		goto other;
	struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		goto other;
	__u16 sport = bpf_ntohs(tcp->source);
	if (!is_smtp_port(sport))
		goto other;

	stat_add(ST_MATCHED, 1);
	__u32 ip_len = bpf_ntohs(ip->tot_len);
	__u32 hdrs = ip->ihl * 4 + tcp->doff * 4;
	__u32 payload = ip_len > hdrs ? ip_len - hdrs : 0;
	/* A GSO skb: tot_len is of the first segment only; skb->len is right. */
	if (skb->gso_segs > 1)
		payload = skb->len > sizeof(*eth) + hdrs ? skb->len - sizeof(*eth) - hdrs : 0;

	struct flow_key fk = { .daddr = ip->daddr, .dport = tcp->dest, .sport = tcp->source };
	struct flow_val *fv = bpf_map_lookup_elem(&pace_flows, &fk);
	__u64 now = bpf_ktime_get_ns();
	if (!fv) {
		struct flow_val nv = { .first_ns = now };
		bpf_map_update_elem(&pace_flows, &fk, &nv, BPF_NOEXIST);
		fv = bpf_map_lookup_elem(&pace_flows, &fk);
		if (!fv)
			return TC_ACT_OK;
		stat_add(ST_FLOWS, 1);
	}
	fv->last_ns = now;

	int slot = 0, steer = 0;
	if (payload) {
		__u32 ack = bpf_ntohl(tcp->ack_seq);
		int turn = !fv->have_ack || ack != fv->last_ack;
		__u32 upload = fv->have_ack ? ack - fv->last_ack : 0;
		if (!fv->have_ack)
			stat_add(ST_BANNERS, 1);
		fv->have_ack = 1;
		fv->last_ack = ack;
		fv->payload_pkts++;
		stat_add(ST_PAYLOAD, 1);
		if (turn) {
			__u32 b = upload / 128;
			if (b > 16)
				b = 16;
			fv->turns++;
			stat_add(ST_TURNS, 1);
			stat_add(ST_HIST + b, 1);
		}
		slot = cfg->mode == 1 || (cfg->mode == 2 && turn) ||
		       (cfg->mode == 3 && turn && upload >= cfg->min_upload);
		if (fv->turns <= cfg->free_turns)
			slot = 0;
		if (slot) {
			fv->slotted = 1;
			fv->slotted_ack = ack;
		}
		/* Continuation segments of a slotted reply go the same way. */
		steer = slot || (fv->slotted && ack == fv->slotted_ack);
	}

	/* Read skb->tstamp once (TCP's own EDT time, CLOCK_MONOTONIC, or 0). */
	__u64 base = skb->tstamp;
	if (base < now)
		base = now;
	__u64 depart = base;
	if (slot) {
		__u64 t, interval = cfg->interval_ns, maxd = cfg->max_delay_ns;
		stat_add(ST_SLOTS, 1);
		if (cfg->per_session) {
			t = fv->next > now ? fv->next : now;
			if (maxd && t > now + maxd) {
				t = now + maxd;
				stat_add(ST_CAPPED, 1);
			}
			fv->next = t + interval;
		} else {
			struct pace_clock *c = bpf_map_lookup_elem(&pace_clock, &zero);
			if (!c)
				return TC_ACT_OK;
			int capped = 0;
			bpf_spin_lock(&c->lock);
			t = c->next > now ? c->next : now;
			if (maxd && t > now + maxd) {
				t = now + maxd;
				capped = 1;
			}
			c->next = t + interval;
			bpf_spin_unlock(&c->lock);
			if (capped)
				stat_add(ST_CAPPED, 1);
		}
		if (t > depart)
			depart = t;
	}
	if (fv->last_depart > depart)
		depart = fv->last_depart; /* keep the flow's order */
	fv->last_depart = depart;

	if (cfg->classid && steer) {
		skb->priority = cfg->classid;
		stat_add(ST_STEERED, 1);
	}

	if (depart > base) {
		__u64 d = depart - now;
		stat_add(ST_DELAYED, 1);
		stat_add(ST_SUM_DELAY_NS, d);
		stat_max(ST_MAX_DELAY_NS, d);
		if (d > fv->max_delay_ns)
			fv->max_delay_ns = d;
		if (cfg->edt)
			bpf_skb_set_tstamp(skb, depart, BPF_SKB_TSTAMP_DELIVERY_MONO);
	}
	return TC_ACT_OK;

other:
	stat_add(ST_OTHER, 1);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
