/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Message pacing (`limit --messages`), at the mail host's egress (tc, before
 * the root qdisc): a reply of the mail host to a source of a paced rule is
 * steered into the rule's HTB class (skb->priority = classid) when it answers
 * a message body; everything else leaves as before. At ingress, a paced key
 * whose clock runs far ahead is refused new connections. See
 * FENCE_PACE_MIN_UPLOAD.
 */
#ifndef SMTPFENCE_PACING_H
#define SMTPFENCE_PACING_H

#include <linux/pkt_cls.h>

#include "limiter.h"
#include "maps.h"
#include "parsing.h"

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
static __always_inline int pace_admits(const struct rule_value *rule, const struct limit_key *key,
				       int new_attempt)
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
static __always_inline struct pace_key_state *
pace_clock(const struct rule_value *rule, struct rule_pace *pace, const struct packet *remote)
{
	struct limit_key key = {};

	make_limit_key(&key, rule, remote->family, remote->saddr);
	struct pace_key_state *clock = bpf_map_lookup_elem(&pace_keys, &key);

	if (clock)
		return clock;
	/* Only a key without a clock draws a class. */
	struct pace_key_state fresh = {};
	__u32 classes = pace->classes ? pace->classes : 1;

	fresh.class_offset = __sync_fetch_and_add(&pace->next_class, 1) % classes;
	return lookup_or_create(&pace_keys, &key, &fresh);
}

/* Moves a key's clock one interval on for a steered packet; returns when
 * that packet leaves the class at the latest. */
static __always_inline __u64 charge_pace(struct pace_key_state *clock, __u64 interval, __u64 now)
{
	__u64 until = gcra_take(&clock->tat_ns, now, interval, GCRA_UNLIMITED);

	/* Contended: the class paces the packet all the same; the clock is
	 * behind by one interval, which the next charge makes up. */
	return until ? until : now + interval;
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

/* A new reply turn of a session: the client sent something since the last.
 * Holds the reply's first segment when it answers a message body. */
static __always_inline void pace_reply_turn(struct __sk_buff *skb, const struct egress_segment *seg,
					    const struct rule_value *rule, struct rule_pace *pace,
					    struct pace_flow *flow, __u32 ack, __u64 now)
{
	__u32 upload = ack - flow->turn_ack;

	flow->turn_ack = ack;
	flow->held = 0;
	if (upload < FENCE_PACE_MIN_UPLOAD || is_tls_handshake(skb, seg->payload_off))
		return;
	/* The reply to a message body: it lets the session's next message start. */
	struct pace_key_state *clock = pace_clock(rule, pace, &seg->remote);

	if (!clock)
		return;
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
		return;
	/* Only the reply's first segment waits in the class: the class charges
	 * every packet, and one per message keeps it at the pace. Later segments
	 * (more of the reply, TLS records after it) overtake it, and the sender's
	 * TCP keeps them until the first arrives: it cannot read past it. */
	flow->hold_until_ns = hold_packet(skb, pace, clock, now);
	if (flow->hold_until_ns)
		flow->held = FENCE_PACE_HELD_REPLY;
}

/* Follows a paced session through one of the mail host's segments: holds
 * the SYN-ACK of a new session and the first segment of every reply that
 * lets a message start; returns the tc action. */
static __always_inline int pace_segment(struct __sk_buff *skb, const struct egress_segment *seg,
					const struct rule_value *rule, struct rule_pace *pace)
{
	struct tcphdr *tcp = seg->tcp;
	struct pace_flow_key key = {
		.family = seg->remote.family,
		.local_port = bpf_ntohs(tcp->source),
		.remote_port = bpf_ntohs(tcp->dest),
	};

	__builtin_memcpy(key.addr, seg->remote.saddr, 16);
	__u32 seq = bpf_ntohl(tcp->seq);
	__u32 ack = bpf_ntohl(tcp->ack_seq);
	__u32 end = seq + seg->payload_len + (tcp->syn ? 1 : 0);
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
		struct pace_flow fresh = { .turn_ack = ack,
					   .sent_end = end,
					   .rule_id = rule->rule_id };

		fresh.hold_until_ns =
			hold_packet(skb, pace, pace_clock(rule, pace, &seg->remote), now);
		if (fresh.hold_until_ns)
			fresh.held = FENCE_PACE_HELD_HANDSHAKE;
		bpf_map_update_elem(&pace_flows, &key, &fresh, BPF_ANY);
		return TC_ACT_UNSPEC;
	}
	if (!flow) {
		/* A session open before the rule (or forgotten by the LRU): its
		 * first reply starts the count, and its next message is free. */
		struct pace_flow fresh = { .turn_ack = ack,
					   .sent_end = end,
					   .rule_id = rule->rule_id };

		bpf_map_update_elem(&pace_flows, &key, &fresh, BPF_ANY);
		return TC_ACT_UNSPEC;
	}
	flow->sent_end = end;
	if (ack != flow->turn_ack) /* else more of the same reply */
		pace_reply_turn(skb, seg, rule, pace, flow, ack, now);
	return TC_ACT_UNSPEC;
}

#endif
