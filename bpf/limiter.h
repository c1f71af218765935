/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The limiter (`limit`): a GCRA clock per (rule, source key) meters new
 * connections (--rate, --burst), and the sock_ops program counts the open
 * sessions of a key (--max-conns). The GCRA step here is also the events
 * stream's budget and the pace clocks' charge.
 */
#ifndef SMTPFENCE_LIMITER_H
#define SMTPFENCE_LIMITER_H

#include "gcra.h"
#include "maps.h"
#include "parsing.h"
#include "rules.h"

/* CAS attempts on a contended GCRA clock before the step gives up, which
 * refuses. Every failed attempt means another CPU took a slot of the same
 * clock at that instant, so giving up errs towards the limit, never past it. */
#define GCRA_CAS_ATTEMPTS 4

/* A tolerance that refuses nothing: the clock only orders (pacing). */
#define GCRA_UNLIMITED (~0ull)

/* One GCRA step on a clock `*tat` shared by all CPUs (gcra_admit): returns
 * the clock's new TAT, which is later than `now` and so never 0, or 0 when
 * the clock runs more than `tolerance` ahead or stays contended. */
static __always_inline __u64 gcra_take(__u64 *tat, __u64 now, __u64 interval, __u64 tolerance)
{
#pragma unroll
	for (int i = 0; i < GCRA_CAS_ATTEMPTS; i++) {
		__u64 seen = *tat;
		__u64 next;

		if (!gcra_admit(seen, now, interval, tolerance, &next))
			return 0;
		if (__sync_val_compare_and_swap(tat, seen, next) == seen)
			return next;
	}
	return 0;
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
static __always_inline enum limit_verdict apply_limit(const struct rule_value *rule,
						      const struct limit_key *key)
{
	if (rule->max_conns) {
		__u32 *open = bpf_map_lookup_elem(&conn_counts, key);

		if (open && *open >= rule->max_conns)
			return LIMIT_CONNS;
	}
	if (!rule->interval_ns)
		return LIMIT_PASS;

	__u64 now = bpf_ktime_get_ns();
	/* A new key starts with a full bucket: TAT = now. */
	struct limit_state fresh = { .tat_ns = now };
	struct limit_state *st = lookup_or_create(&limit_state, key, &fresh);

	if (!st)
		return LIMIT_PASS; /* the map refused even after eviction: fail open */
	if (!gcra_take(&st->tat_ns, now, rule->interval_ns, rule->tolerance_ns))
		return LIMIT_RATE;
	return LIMIT_PASS;
}

/* The remote address of a socket, as the rules know it; 0 when the socket
 * is neither IPv4 nor IPv6. */
static __always_inline int sock_remote(const struct bpf_sock_ops *skops, struct packet *remote)
{
	if (skops->family == 2 /* AF_INET */) {
		__u32 ip = skops->remote_ip4;

		remote->family = 4;
		__builtin_memcpy(remote->saddr, &ip, 4);
		return 1;
	}
	if (skops->family != 10 /* AF_INET6 */)
		return 0;
	__u32 ip6[4] = { skops->remote_ip6[0], skops->remote_ip6[1], skops->remote_ip6[2],
			 skops->remote_ip6[3] };

	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff)) {
		/* An IPv4 client of a dual-stack socket (::ffff:a.b.c.d):
		 * on the wire, and so in the rules, it is IPv4. */
		remote->family = 4;
		__builtin_memcpy(remote->saddr, &ip6[3], 4);
	} else {
		remote->family = 6;
		__builtin_memcpy(remote->saddr, ip6, 16);
	}
	return 1;
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
static __always_inline void charge_connection(struct bpf_sock_ops *skops,
					      const struct fence_config *cfg)
{
	struct packet pkt = {};

	if (!is_smtp_port_host(cfg, skops->local_port) || !sock_remote(skops, &pkt))
		return;
	struct rule_value *rule = find_live_rule(&pkt);

	if (!rule || rule->action != FENCE_ACTION_LIMIT || !rule->max_conns)
		return;

	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return;
	struct conn_owner *owner =
		bpf_sk_storage_get(&conn_owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!owner)
		return;
	make_limit_key(&owner->key, rule, pkt.family, pkt.saddr);
	owner->released = 0;

	__u32 none = 0;
	__u32 *open = lookup_or_create(&conn_counts, &owner->key, &none);

	if (open)
		__sync_fetch_and_add(open, 1);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void release_connection(struct bpf_sock_ops *skops)
{
	__u32 new_state = skops->args[1];

	if (new_state != BPF_TCP_FIN_WAIT1 && new_state != BPF_TCP_LAST_ACK &&
	    new_state != BPF_TCP_CLOSE)
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

#endif
