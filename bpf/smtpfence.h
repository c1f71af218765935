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

#define FENCE_LAYOUT_VERSION 1
#define FENCE_CONFIG_MAGIC 0x736d7466u /* "smtf": config map was initialised */

/* Default capacity: rules per address family, and rule slots in total.
 * Emergency rule sets are small; large block lists raise it at first attach
 * (`attach --max-rules`), which sizes the maps when they are created. */
#define FENCE_DEFAULT_MAX_RULES 65536

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
#define FENCE_PIN_PROG "prog"
#define FENCE_PIN_LINKS_DIR "links"

enum fence_action {
	FENCE_ACTION_ALLOW = 1, /* passes; wins over any broader rule */
	FENCE_ACTION_BLOCK = 2, /* drops new connections (SYN without ACK) */
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
	__u8 action;    /* enum fence_action */
	__u8 prefixlen; /* the rule's own prefix length: tells which prefix matched */
	__u16 pad;
};

/* Per-CPU, per-rule; summed in userspace. Counts SMTP connection attempts
 * (SYN without ACK to an SMTP port) and port-less TCP fragments. */
struct rule_counters {
	__u64 matched;
	__u64 dropped;
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
FENCE_STATIC_ASSERT(sizeof(struct rule_value) == 8, "rule_value layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_counters) == 16, "rule_counters layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_info) == 160, "rule_info layout");
FENCE_STATIC_ASSERT(sizeof(struct fence_config) == 8 + 8 * FENCE_PORT_WORDS, "fence_config layout");
FENCE_STATIC_ASSERT(sizeof(struct fence_stats) == 56, "fence_stats layout");

#endif
