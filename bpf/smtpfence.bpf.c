// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * smtpfence data path: three programs over the pinned maps of maps.h.
 *  - XDP, at ingress: decides, per packet, whether a new SMTP connection from
 *    a source is let in. Everything that is not TCP to an SMTP port passes
 *    untouched; so does every packet the parser cannot make sense of.
 *  - sock_ops: counts the open sessions of --max-conns keys (limiter.h).
 *  - tc, at egress: paces the messages of paced rules (pacing.h).
 * Each reads as a summary; the topics are in the headers: parsing.h, rules.h
 * (which rules cover a source), verdict.h (what they do), limiter.h,
 * pacing.h, accounting.h (counters and events), sources.h (per-source state
 * a spoofed flood does not pay for).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "accounting.h"
#include "limiter.h"
#include "maps.h"
#include "pacing.h"
#include "parsing.h"
#include "rules.h"
#include "smtpfence_abi.h"
#include "sources.h"
#include "verdict.h"

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
	struct syn_context syn = {};

	if (!count_parsed(res, &pkt, st, &syn)) {
		st->passed++;
		return XDP_PASS;
	}
	struct decision d = decide(&pkt, res, syn.new_attempt, st);

	if (res == PARSE_SMTP)
		account_source(&pkt, &syn, d.decider, d.prefixlen, d.verdict, st);
	return count_verdict(d.verdict, syn.new_attempt, st) ? XDP_DROP : XDP_PASS;
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
	struct rule_value *rule = find_live_rule(&seg.remote);

	if (!rule || rule->action != FENCE_ACTION_LIMIT)
		return TC_ACT_UNSPEC;
	struct rule_pace *pace = pace_of(rule);

	if (!pace || !pace->classid)
		return TC_ACT_UNSPEC;
	return pace_segment(skb, &seg, rule, pace);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
