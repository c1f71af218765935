/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one header shared by the XDP program (bpf/) and userspace (userspace/).
 * Every pinned map's key and value layout, every enum and every map name lives
 * here, so the two sides cannot drift apart. Userspace never re-declares these.
 *
 * Changing a layout changes FENCE_LAYOUT_VERSION: pinned maps outlive the
 * binary that made them, and a build must recognise maps it cannot read.
 */
#ifndef SMTPFENCE_SHARED_H
#define SMTPFENCE_SHARED_H

#include <linux/types.h>

#define FENCE_LAYOUT_VERSION 2
#define FENCE_CONFIG_MAGIC 0x736d7466u /* "smtf": config map was initialised */

/* Default capacity: rules per address family (the rule slots of
 * rule_counters and rule_info are twice that, for both families). Emergency
 * rule sets are small; large block lists raise it at first attach
 * (`attach --max-rules`), which sizes the maps when they are created. */
#define FENCE_DEFAULT_MAX_RULES 65536

/* Limiter state: one GCRA clock per (rule, source key). An LRU map, so that a
 * flood of (spoofed) sources recycles the least recently seen keys instead of
 * failing; 262144 keys take about 30 MiB of kernel memory. */
#define FENCE_LIMIT_KEYS 262144
/* Concurrent-connection counts for --max-conns: a plain hash, never evicted,
 * because forgetting a count would let a source exceed its cap. */
#define FENCE_CONN_KEYS 65536

#define FENCE_REASON_LEN 120
#define FENCE_USER_LEN 32
#define FENCE_PORT_WORDS (65536 / 64)

/* Pinned object names, relative to the pin directory. */
#define FENCE_MAP_RULES_V4 "rules_v4"
#define FENCE_MAP_RULES_V6 "rules_v6"
#define FENCE_MAP_RULE_COUNTERS "rule_counters"
#define FENCE_MAP_RULE_INFO "rule_info"
#define FENCE_MAP_CONFIG "config"
#define FENCE_MAP_STATS "stats"
#define FENCE_MAP_LIMIT_STATE "limit_state"
#define FENCE_MAP_CONN_COUNTS "conn_counts"
#define FENCE_MAP_CONN_OWNER "conn_owner"
#define FENCE_PIN_SOCKOPS_LINK "sockops_link"
#define FENCE_PIN_PROG "prog"
#define FENCE_PIN_LINKS_DIR "links"

enum fence_action {
	FENCE_ACTION_ALLOW = 1, /* passes; wins over any broader rule */
	FENCE_ACTION_BLOCK = 2, /* drops new connections (SYN without ACK) */
	FENCE_ACTION_LIMIT = 3, /* admits new connections at a rate and/or up to a concurrency */
};

/* LPM trie keys: prefixlen first, as the kernel's bpf_lpm_trie_key requires. */
struct rule_key_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct rule_key_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Value of both LPM tries. `slot` indexes rule_counters and rule_info. */
struct rule_value {
	__u32 slot;
	__u8 action;        /* enum fence_action */
	__u8 prefixlen;     /* the rule's own prefix length: tells which prefix matched */
	__u8 key_prefixlen; /* LIMIT: sources sharing this many leading bits share a key */
	__u8 pad;
	__u32 rule_id;      /* unique for the life of the maps: keys the limiter state, so
			     * that a reused slot or a changed rule starts with fresh state */
	__u32 max_conns;    /* LIMIT: concurrent connections per key; 0 = no cap */
	__u64 interval_ns;  /* LIMIT: one new connection per interval; 0 = no rate */
	__u64 tolerance_ns; /* LIMIT: (burst - 1) * interval_ns: how far ahead a key may run */
};

/* Per-CPU, per-rule; summed in userspace. Counts SMTP connection attempts
 * (SYN without ACK to an SMTP port) and port-less TCP fragments. */
struct rule_counters {
	__u64 matched;       /* attempts this rule decided */
	__u64 dropped;       /* of those, dropped (any reason) */
	__u64 rate_dropped;  /* LIMIT: dropped because the key ran ahead of its rate */
	__u64 conns_dropped; /* LIMIT: dropped because the key had max_conns open */
};

/* Key of the limiter maps. `addr` is the source masked to the rule's
 * key_prefixlen (all zero past it), so one key covers a source, a prefix
 * inside the rule, or the whole rule. */
struct limit_key {
	__u32 rule_id;
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];
};

/* GCRA state: the theoretical arrival time of the key's next connection,
 * in bpf_ktime_get_ns() nanoseconds. */
struct limit_state {
	__u64 tat_ns;
};

/* Socket storage of an MTA socket counted against a --max-conns key: which
 * key to release when the socket stops being a live session. */
struct conn_owner {
	struct limit_key key;
	__u32 released;
};

/* Read and written by userspace only: what an admin needs to know about a
 * rule. Kept in a pinned map so that the rules and their story live in one
 * place and survive the CLI. */
struct rule_info {
	__u64 created_unix; /* seconds since the epoch */
	char created_by[FENCE_USER_LEN];
	char reason[FENCE_REASON_LEN];
};

/* Single-entry array: the knobs the data path reads on every packet. */
struct fence_config {
	__u32 magic;          /* FENCE_CONFIG_MAGIC once initialised */
	__u32 layout_version; /* FENCE_LAYOUT_VERSION of the maps' creator */
	__u64 netns_cookie;   /* the mail host's network namespace: the sock_ops
			       * program sees every namespace's sockets */
	__u32 next_rule_id;   /* handed out by userspace under the pin-dir lock */
	__u32 pad;
	__u64 smtp_ports[FENCE_PORT_WORDS]; /* bitmap: bit p set = port p is SMTP */
};

/* Single-entry per-CPU array of global packet counters. */
struct fence_stats {
	__u64 seen;      /* every packet the program ran on */
	__u64 passed;    /* XDP_PASS */
	__u64 dropped;   /* XDP_DROP */
	__u64 smtp;      /* TCP segments to an SMTP port */
	__u64 smtp_syn;  /* of those, connection attempts (SYN without ACK) */
	__u64 fragments; /* TCP fragments judged by source alone (no port) */
	__u64 malformed; /* truncated or invalid headers (always passed) */
};

#ifdef __cplusplus
#define FENCE_STATIC_ASSERT static_assert
#else
#define FENCE_STATIC_ASSERT _Static_assert
#endif
FENCE_STATIC_ASSERT(sizeof(struct rule_key_v4) == 8, "rule_key_v4 layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_key_v6) == 20, "rule_key_v6 layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_value) == 32, "rule_value layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_counters) == 32, "rule_counters layout");
FENCE_STATIC_ASSERT(sizeof(struct limit_key) == 24, "limit_key layout");
FENCE_STATIC_ASSERT(sizeof(struct limit_state) == 8, "limit_state layout");
FENCE_STATIC_ASSERT(sizeof(struct conn_owner) == 28, "conn_owner layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_info) == 160, "rule_info layout");
FENCE_STATIC_ASSERT(sizeof(struct fence_config) == 24 + 8 * FENCE_PORT_WORDS, "fence_config layout");
FENCE_STATIC_ASSERT(sizeof(struct fence_stats) == 56, "fence_stats layout");

#endif
