/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The ABI of smtpfence's BPF programs (XDP, sock_ops, tc egress), shared with
 * userspace: every pinned map's key and value layout, every enum, capacity and
 * map name lives here, so the two sides cannot drift apart. Userspace never
 * re-declares these.
 *
 * Changing a layout changes FENCE_LAYOUT_VERSION: pinned maps outlive the
 * binary that made them, and a build must recognise maps it cannot read.
 */
#ifndef SMTPFENCE_ABI_H
#define SMTPFENCE_ABI_H

#include <linux/types.h>

#define FENCE_LAYOUT_VERSION 4
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

/* Per-source accounting for `top`: an LRU map of (source, port). A spoofed
 * flood must not pay an LRU insert per SYN (about 0.2-0.5 us each), so a
 * source gets an entry only from its second SYN seen on one CPU within
 * FENCE_SKETCH_WINDOW_NS to 2 x that (the per-CPU count-min sketch below
 * remembers the first), and no more than FENCE_SOURCE_INSERTS_PER_S entries
 * are made per CPU per second; the SYNs of sources refused by that cap are
 * counted in fence_stats.untracked_syns. When it is full, the least recently
 * seen source is forgotten (its counts restart if it comes back); 65536
 * entries take about 10.5 MiB of kernel memory. */
#define FENCE_SOURCE_KEYS 65536
#define FENCE_SOURCE_INSERTS_PER_S 64

/* The per-CPU count-min sketch of the SYNs of sources without an entry:
 * FENCE_SKETCH_ROWS rows of FENCE_SKETCH_COLUMNS cells, one hash each. A cell
 * counts one window of FENCE_SKETCH_WINDOW_NS (about 4.3 s) and is read
 * until the next ends, so a source's earlier SYNs are remembered for 4.3 to
 * 8.6 s. When a source gets its entry, the sketch's counts of it, summed over
 * the CPUs, seed the entry, so that `top` misses none of its first SYNs (a
 * count-min estimate errs towards too many, never too few). */
#define FENCE_SKETCH_ROWS 2
#define FENCE_SKETCH_COLUMNS 8192
#define FENCE_SKETCH_WINDOW_SHIFT 32
#define FENCE_SKETCH_WINDOW_NS (1ull << FENCE_SKETCH_WINDOW_SHIFT)
/* bpf_loop bound when summing the sketch over the CPUs. */
#define FENCE_MAX_CPUS 4096

/* Recent SYN flows, to tell a connection attempt from its retransmissions: a
 * SYN whose (source address, source port, destination port, sequence number)
 * was seen less than FENCE_SYN_FLOW_WINDOW_NS ago is a retransmission of
 * the same attempt. Counting only: the verdict of every SYN is computed as
 * usual. Fixed-size set-associative tables, so that a new flow costs no map
 * insert: FENCE_SYN_FLOW_WAYS slots per set, a flow's set chosen by its hash,
 * and a new flow takes the set's oldest slot. Flows of sources with a
 * `sources` entry go to a table shared by all CPUs (FENCE_SYN_FLOW_SETS sets:
 * 65536 flows, 1 MiB), those of other sources (a spoofed flood) to a per-CPU
 * table (FENCE_SYN_FLOW_CPU_SETS sets: 16384 flows, 256 KiB per CPU), where
 * RSS keeps a flow's retransmissions on one CPU. A forgotten flow's
 * retransmission counts as a new attempt, so attempts err towards too many,
 * never too few. The window covers the longest SYN retransmission schedule
 * of a default Linux sender (tcp_syn_retries 6: 127 s) with room to spare. */
#define FENCE_SYN_FLOW_WAYS 4
#define FENCE_SYN_FLOW_SETS 16384
#define FENCE_SYN_FLOW_CPU_SETS 4096
#define FENCE_SYN_FLOW_WINDOW_NS (180ull * 1000000000ull)

/* Drop events (ring buffer): a source yields an event on its first drop by a
 * rule, and again only after FENCE_EVENT_REPEAT_NS without one; the whole
 * stream is held to FENCE_EVENT_RATE per second (bursts of
 * FENCE_EVENT_BURST) so that a flood from many sources cannot flood it. The
 * last event of a source is marked in a direct-mapped table of
 * FENCE_EVENT_MARKS slots, which needs no insert and, at 256 KiB, stays in
 * cache under a flood of new sources: two sources sharing a slot may each
 * repeat their event early (a 32-bit tag tells them apart, so one misses an
 * event only on a tag collision, about 1 in 4 billion). */
#define FENCE_EVENTS_BYTES (256 * 1024)
#define FENCE_EVENT_MARKS 16384
#define FENCE_EVENT_REPEAT_NS (60ull * 1000000000ull)
#define FENCE_EVENT_RATE 100
#define FENCE_EVENT_BURST 200

/* How many rules of one source's prefix chain the data path looks past when
 * the longest one has expired or is a dry run. A deeper chain of such rules
 * is judged as if no rule covered the source (never a drop). */
#define FENCE_MAX_RULE_LAYERS 8

/* Message pacing (`limit --messages`). The mail host's packets to a paced
 * rule's sources go through a tc egress program, which steers the ones that
 * let a message start into the rule's HTB class; the class lets one packet
 * through per message interval, in order. Those packets are:
 *  - the SYN-ACK of a new session, which carries its first message;
 *  - the reply to every later message body of the session (the client sent
 *    at least FENCE_PACE_MIN_UPLOAD bytes since the previous reply, counted
 *    from TCP sequence numbers, so STARTTLS hides nothing): the sender waits
 *    for it before its next message.
 * So messages follow the pace whatever the sender's session reuse,
 * pipelining or TLS. (The reply to a session's first body is held too once
 * the key has reused a session: FENCE_PACE_KEY_REUSES.) A clock per key (pace_keys) follows its class: a new
 * connection is refused (its SYN dropped, so the sender retries) while the
 * clock runs more than FENCE_PACE_ADMIT_INTERVALS intervals ahead (at
 * least FENCE_PACE_ADMIT_MIN_NS, at most FENCE_PACE_ADMIT_MAX_NS; for a SYN
 * retransmission twice that, within the same maximum): so that
 * sessions do not pile up behind the class (each new one brings its first
 * two messages close together), and a SYN-ACK waits well below a sender's
 * connect timeout (Postfix 30 s); the sender's SYN retransmissions meanwhile
 * are answered when the SYN-ACK leaves. A reply never waits more than FENCE_PACE_MAX_DELAY_NS: one that would
 * leaves unpaced (counted as `overflow`), far below senders' data timeouts
 * (Postfix smtp_data_done_timeout 600 s, Exim's data_timeout 5 min), after
 * which a sender whose body was accepted sends it again (the message arrives
 * twice). The slowest pace is one message per FENCE_PACE_MAX_INTERVAL_NS. */
#define FENCE_PACE_MIN_UPLOAD 256
#define FENCE_PACE_ADMIT_INTERVALS 8
#define FENCE_PACE_ADMIT_MIN_NS (2ull * 1000000000ull)
#define FENCE_PACE_ADMIT_MAX_NS (20ull * 1000000000ull)
#define FENCE_PACE_MAX_DELAY_NS (60ull * 1000000000ull)
#define FENCE_PACE_MAX_INTERVAL_NS (10ull * 1000000000ull)
#define FENCE_PACE_HELD_REPLY 1 /* the first segment of a reply */
#define FENCE_PACE_HELD_HANDSHAKE 2 /* a SYN-ACK */

/* The HTB root smtpfence installs on a paced interface ("SF"); a paced
 * rule's class is FENCE_PACE_QDISC_MAJOR:minor. */
#define FENCE_PACE_QDISC_MAJOR 0x5346
/* Its size table makes every packet cost this many bytes, so that a class's
 * byte rate is a packet rate: messages/s x FENCE_PACE_PACKET_COST. */
#define FENCE_PACE_PACKET_COST 10000
/* Flows the egress program follows (LRU): one per paced SMTP session. */
#define FENCE_PACE_FLOW_KEYS 65536
/* Pace clocks (LRU): one per key of a paced rule (--per source, /LEN, rule). */
#define FENCE_PACE_KEYS 65536
/* HTB classes of a paced rule keyed narrower than the rule (--per source or
 * /LEN): a key gets the next class, round robin, when it first sends; up to
 * this many keys at once are held in classes of their own, beyond that two
 * keys may share one (each then gets at most its pace, possibly less). */
#define FENCE_PACE_KEY_CLASSES 64
/* The egress filter's tc handle and priority on every attached interface. */
#define FENCE_TC_HANDLE 0x5346
#define FENCE_TC_PRIORITY 0x5346

/* Imported prefix lists (`smtpfence import`). Each list is a rule without a
 * prefix of its own: list_rules[list] holds its action, deadline and counter
 * slot (rule_counters has FENCE_MAX_LISTS slots past the rules' for them).
 * Its prefixes live in a "list set", all lists compiled together, so that a
 * lookup costs a few memory reads for ten prefixes or millions:
 *  - IPv4 up to /24: a 16-8 table (DPDK's DIR-24-8 with its first level
 *    split, so that memory follows the lists): cell a>>16 of the first
 *    FENCE_LIST_V4_ROOT cells, then, where longer prefixes start, a block of
 *    256 cells by the next byte. A cell holds the FENCE_LIST_HIT of the
 *    longest listed prefix there (0: none), or FENCE_LIST_BLOCK | the block's
 *    first cell; a block's cell also says which lengths /25../32 are listed
 *    inside its /24 (FENCE_LIST_LONGER).
 *  - IPv4 /25../32 and IPv6: a hash of prefixes (list_key). An IPv6 address
 *    first finds the gate of its /32, which lists the lengths longer than /32
 *    listed inside it (longest first) and the hit of the longest prefix up to
 *    /32 covering it; prefixes /24../32 exist only in gates, shorter ones
 *    also in the hash, tried by length when an address has no gate.
 * Among lists that list the same prefix, an allow list wins over a block
 * list, then the list whose name sorts first. Two sets exist while one is
 * built: fence_config.list_set says which one the data path reads (0: none),
 * and flips only once the new one is whole. */
#define FENCE_MAX_LISTS 64
#define FENCE_LIST_NAME_LEN 72 /* a name of up to 64 characters, NUL-padded */
#define FENCE_LIST_V4_ROOT 65536
/* IPv6 prefix lengths, after the v4 root cells: at FENCE_LIST_V6_SHORT the
 * count of lengths below /24 listed, then those lengths, longest first; at
 * FENCE_LIST_V6_LONG the same for lengths above /32 (for a gate that lists
 * more than FENCE_LIST_GATE_LENGTHS). */
#define FENCE_LIST_V6_SHORT FENCE_LIST_V4_ROOT
#define FENCE_LIST_V6_LONG (FENCE_LIST_V4_ROOT + 128)
#define FENCE_LIST_V4_BLOCKS_START (FENCE_LIST_V4_ROOT + 256) /* first block of 256 cells */
#define FENCE_LIST_BLOCK (1ull << 63)
#define FENCE_LIST_LONGER_SHIFT 32 /* bit (32 + len - 25): /len is listed inside the /24 */
#define FENCE_LIST_HIT(list, prefixlen) (((__u32)(prefixlen) << 8) | ((__u32)(list) + 1))
#define FENCE_LIST_HIT_LIST(hit) (((hit) & 0xff) - 1)
#define FENCE_LIST_HIT_PREFIXLEN(hit) (((hit) >> 8) & 0xff)
/* list_key.prefixlen of an IPv4 prefix (| its length) and of an IPv6 gate. */
#define FENCE_LIST_KEY_V4 0x100
#define FENCE_LIST_KEY_GATE 0x200
#define FENCE_LIST_GATE_LENGTHS 11
#define FENCE_LIST_GATE_OVERFLOW 0xff /* gate.count: try every length of FENCE_LIST_V6_LONG */

#define FENCE_REASON_LEN 120
#define FENCE_USER_LEN 32
#define FENCE_ORIGIN_LEN 64
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
#define FENCE_MAP_SOURCES "sources"
#define FENCE_MAP_SOURCE_SKETCH "source_sketch"
#define FENCE_MAP_SOURCE_GUARD "source_guard"
#define FENCE_MAP_SYN_FLOWS "syn_flows"
#define FENCE_MAP_SYN_FLOWS_CPU "syn_flows_cpu"
#define FENCE_MAP_EVENT_MARKS "event_marks"
#define FENCE_MAP_EVENTS "events"
#define FENCE_MAP_EVENT_CLOCK "event_clock"
#define FENCE_MAP_RULE_PACE "rule_pace"
#define FENCE_MAP_PACE_FLOWS "pace_flows"
#define FENCE_MAP_PACE_KEYS "pace_keys"
#define FENCE_MAP_LIST_RULES "list_rules"
#define FENCE_MAP_LIST_INFO "list_info"
#define FENCE_MAP_LIST_V4_SETS "list_v4_sets"
#define FENCE_MAP_LIST_PREFIX_SETS "list_prefix_sets"
#define FENCE_PIN_SOCKOPS_LINK "sockops_link"
#define FENCE_PIN_PROG "prog"
#define FENCE_PIN_LINKS_DIR "links"

enum fence_action {
	FENCE_ACTION_ALLOW = 1, /* passes; wins over any broader rule */
	FENCE_ACTION_BLOCK = 2, /* drops new connections (SYN without ACK) */
	FENCE_ACTION_LIMIT = 3, /* admits new connections at a rate and/or up to a concurrency */
};

/* rule_value.flags */
#define FENCE_RULE_DRY_RUN \
	0x1 /* counts what it would drop, drops nothing; the
				* next broader live rule decides the packet */
#define FENCE_RULE_PACED 0x2 /* LIMIT --messages: rule_pace[slot] holds its pace */
#define FENCE_RULE_LIST 0x4 /* an imported list's rule (list_rules): its prefix is the
			     * listed prefix that matched, not rule_value.prefixlen */

/* What happened to a connection attempt (source accounting, events). */
enum fence_verdict {
	FENCE_VERDICT_PASSED = 0, /* no rule, an allow, or admitted by a limit */
	FENCE_VERDICT_BLOCKED = 1, /* dropped by a block */
	FENCE_VERDICT_RATE = 2, /* dropped by a limit's rate */
	FENCE_VERDICT_CONNS = 3, /* dropped by a limit's --max-conns */
	FENCE_VERDICT_WOULD_DROP = 4, /* a dry-run rule would have dropped it */
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
	__u8 action; /* enum fence_action */
	__u8 prefixlen; /* the rule's own prefix length: tells which prefix matched */
	__u8 key_prefixlen; /* LIMIT: sources sharing this many leading bits share a key */
	__u8 flags; /* FENCE_RULE_* */
	__u32 rule_id; /* unique for the life of the maps: keys the limiter state, so
			     * that a reused slot or a changed rule starts with fresh state */
	__u32 max_conns; /* LIMIT: concurrent connections per key; 0 = no cap */
	__u64 interval_ns; /* LIMIT: one new connection per interval; 0 = no rate */
	__u64 tolerance_ns; /* LIMIT: (burst - 1) * interval_ns: how far ahead a key may run */
	__u64 expires_ns; /* CLOCK_BOOTTIME (bpf_ktime_get_boot_ns) at which the rule stops
			     * applying, even with no smtpfence process running; 0 = never */
};

/* Per-CPU, per-rule; summed in userspace. The first five count packets:
 * SMTP SYN packets (SYN without ACK to an SMTP port, retransmissions
 * included) and port-less TCP fragments. The last three count connection
 * attempts: the first SYN of a flow (see FENCE_SYN_FLOW_WAYS), judged by the
 * verdict of that first SYN. */
struct rule_counters {
	__u64 matched; /* SYN packets (and fragments) this rule decided */
	__u64 dropped; /* of those, dropped (any reason) */
	__u64 rate_dropped; /* LIMIT: dropped because the key ran ahead of its rate */
	__u64 conns_dropped; /* LIMIT: dropped because the key had max_conns open */
	__u64 would_drop; /* dry run: packets it would have dropped (none were) */
	__u64 attempts; /* connection attempts this rule decided */
	__u64 dropped_attempts; /* of those, attempts whose first SYN it dropped; its
				    * retransmissions are judged afresh, so under a limit
				    * one may get through later (delayed, not refused) */
	__u64 would_drop_attempts; /* dry run: attempts whose first SYN it would have dropped */
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

/* Read and written by userspace only: which list a list_rules entry is. */
struct list_info {
	char name[FENCE_LIST_NAME_LEN];
	__u64 v4_prefixes; /* in the list set in force */
	__u64 v6_prefixes;
};

/* Key of a list set's hash: the prefix, host bits zero (see FENCE_LIST_KEY_*). */
struct list_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Its value: a prefix's hit, or an IPv6 gate (FENCE_LIST_KEY_GATE). */
struct list_value {
	__u32 hit; /* FENCE_LIST_HIT; of a gate: the longest prefix up to /32 */
	__u8 count; /* a gate's lengths, or FENCE_LIST_GATE_OVERFLOW */
	__u8 lengths[FENCE_LIST_GATE_LENGTHS]; /* longer than /32, longest first */
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
	__u64 expires_unix; /* seconds since the epoch; 0 = never (the kernel's
			     * deadline is rule_value.expires_ns) */
	char created_by[FENCE_USER_LEN];
	char origin[FENCE_ORIGIN_LEN]; /* where the command ran: host, and the ssh client */
	char reason[FENCE_REASON_LEN];
};

/* Key of the per-source accounting: one entry per source and SMTP port. */
struct source_key {
	__u8 family; /* 4 or 6 */
	__u8 pad;
	__u16 port; /* destination port, host byte order */
	__u8 addr[16];
};

/* What one source did to one port, since it was first seen (or forgotten by
 * the LRU). Counters are updated atomically; times are CLOCK_MONOTONIC ns
 * (bpf_ktime_get_coarse_ns: a tick's precision). The counts of the SYNs
 * before the entry was made come from the sketch (FENCE_SKETCH_ROWS). */
struct source_stats {
	__u64 syn_packets; /* SYN packets (retransmissions included) */
	__u64 attempts; /* connection attempts: first SYNs of a flow */
	__u64 dropped_attempts; /* attempts whose first SYN was dropped */
	/* The verdicts, per SYN packet: */
	__u64 passed;
	__u64 blocked; /* dropped by a block */
	__u64 limited; /* dropped by a limit (rate or max-conns) */
	__u64 would_drop; /* a dry-run rule would have dropped it */
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u32 last_rule_id; /* rule that decided the last attempt; 0 = none */
	__u8 last_verdict; /* enum fence_verdict of the last attempt */
	__u8 last_action; /* enum fence_action of that rule (0 = none) */
	__u8 last_prefixlen; /* that rule's prefix length: the rule is the source
			       * masked to it, even after the rule is gone */
	__u8 pad;
};

/* One cell of the per-CPU sketch (FENCE_SKETCH_ROWS): what the SYNs hashed to
 * it did in window `window` (coarse ns >> FENCE_SKETCH_WINDOW_SHIFT). */
struct sketch_cell {
	__u32 window;
	__u32 syn_packets;
	__u32 attempts;
	__u32 dropped_attempts;
	__u32 unpassed; /* SYN packets with a verdict other than PASSED */
	__u32 pad;
};

/* Per-CPU: the `sources` entries this CPU made in second `second`
 * (FENCE_SOURCE_INSERTS_PER_S). */
struct source_guard {
	__u64 second; /* coarse CLOCK_MONOTONIC seconds */
	__u32 inserts;
	__u32 pad;
};

/* A set of the recent SYN flows (FENCE_SYN_FLOW_WAYS): each slot holds a
 * flow's 64-bit hash (0 = empty) and when its attempt was first seen, in
 * coarse CLOCK_MONOTONIC ns. One cache line. */
struct syn_flow_set {
	struct {
		__u64 tag;
		__u64 first_seen_ns;
	} slot[FENCE_SYN_FLOW_WAYS];
};

/* A source's last drop event (FENCE_EVENT_MARKS). */
struct event_mark {
	__u64 time_ns; /* coarse CLOCK_MONOTONIC; 0 = none */
	__u32 tag; /* the source's hash, low 32 bits */
	__u32 rule_id;
};

/* One record of the events ring buffer: a source's first drop by a rule. */
struct fence_event {
	__u64 time_ns; /* CLOCK_MONOTONIC (coarse) */
	__u32 rule_id;
	__u8 family;
	__u8 verdict; /* enum fence_verdict */
	__u8 action; /* enum fence_action of the rule */
	__u8 prefixlen; /* the rule's prefix length (the rule is addr/prefixlen) */
	__u16 port; /* destination port, host byte order */
	__u8 pad[6];
	__u8 addr[16]; /* the source */
};

/* Single-entry array: the knobs the data path reads on every packet. */
struct fence_config {
	__u32 magic; /* FENCE_CONFIG_MAGIC once initialised */
	__u32 layout_version; /* FENCE_LAYOUT_VERSION of the maps' creator */
	__u64 netns_cookie; /* the mail host's network namespace: the sock_ops
			       * program sees every namespace's sockets */
	__u32 next_rule_id; /* handed out by userspace under the pin-dir lock */
	__u32 paced_rules; /* rules with FENCE_RULE_PACED: 0 lets the egress
			       * program return at once */
	__u32 list_set; /* the list set the data path reads: 1 or 2 (slot 0 or 1
			    * of the list_*_sets maps), 0 = no list */
	__u32 pad;
	__u64 smtp_ports[FENCE_PORT_WORDS]; /* bitmap: bit p set = port p is SMTP */
};

/* A paced rule's pace (array indexed by rule slot; valid while the rule has
 * FENCE_RULE_PACED and the same rule_id). */
struct rule_pace {
	__u64 interval_ns; /* one message per interval, per key */
	__u32 rule_id; /* the rule this pace belongs to */
	__u32 classid; /* the rule's first HTB class, major:minor */
	__u32 classes; /* its classes: classid, classid + 1, ... (1 when the
			    * rule is its only key, else FENCE_PACE_KEY_CLASSES) */
	__u32 next_class; /* round robin: the class the next new key gets */
	__u64 messages; /* messages paced: SYN-ACKs and body replies steered */
	__u64 packets; /* packets steered into the classes */
	__u64 refused; /* SYNs dropped because the clock ran ahead */
	__u64 overflow; /* body replies let through unpaced: FENCE_PACE_MAX_DELAY_NS */
};

/* A key's pace (pace_keys, keyed by limit_key). */
struct pace_key_state {
	__u64 tat_ns; /* the key's clock (bpf_ktime_get_ns): when the next packet
		       * steered into its class leaves, at the earliest; moved
		       * on one interval by every steered packet */
	__u32 class_offset; /* its class: rule_pace.classid + class_offset */
	__u32 flags; /* FENCE_PACE_KEY_* */
};

/* pace_key_state.flags: a session of this key carried a second message. From
 * then on a session's first body reply is held too (see smtpfence_pace). */
#define FENCE_PACE_KEY_REUSES 0x1

/* A paced SMTP session, seen from the mail host's side. */
struct pace_flow_key {
	__u8 family; /* 4 or 6 */
	__u8 pad;
	__u16 local_port; /* host byte order */
	__u16 remote_port; /* host byte order */
	__u16 pad2;
	__u8 addr[16]; /* the remote (paced) address */
};

struct pace_flow {
	__u32 turn_ack; /* the client's bytes acknowledged by the last reply */
	__u32 sent_end; /* sequence number after the last byte sent */
	__u32 rule_id; /* the paced rule it was seen under: a flow of another
			  * rule (or an older one on a reused port) is stale */
	__u16 held; /* FENCE_PACE_HELD_* while a steered packet may still wait */
	__u16 bodies; /* message bodies seen (saturating) */
	__u64 hold_until_ns; /* when it leaves at the latest (pace clock) */
};

/* Single-entry per-CPU array of global packet counters. */
struct fence_stats {
	__u64 seen; /* every packet the program ran on */
	__u64 passed; /* XDP_PASS */
	__u64 dropped; /* XDP_DROP */
	__u64 smtp; /* TCP segments to an SMTP port */
	__u64 smtp_syn; /* of those, SYN packets (SYN without ACK), retransmissions included */
	__u64 smtp_attempts; /* connection attempts: first SYNs of a flow */
	__u64 dropped_attempts; /* attempts whose first SYN was dropped */
	__u64 fragments; /* TCP fragments judged by source alone (no port) */
	__u64 malformed; /* truncated or invalid headers (always passed) */
	__u64 would_drop; /* SYN packets and port-less fragments a dry-run rule would
			   * have dropped */
	__u64 events; /* drop events written to the ring buffer */
	__u64 events_suppressed; /* drop events held back by the stream's rate limit
				  * or lost to a full ring buffer */
	__u64 untracked_syns; /* SYNs of sources due a `sources` entry that
			       * FENCE_SOURCE_INSERTS_PER_S refused: missing from `top` */
};

#ifdef __cplusplus
#define FENCE_STATIC_ASSERT static_assert
#else
#define FENCE_STATIC_ASSERT _Static_assert
#endif
FENCE_STATIC_ASSERT(sizeof(struct rule_key_v4) == 8, "rule_key_v4 layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_key_v6) == 20, "rule_key_v6 layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_value) == 40, "rule_value layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_counters) == 64, "rule_counters layout");
FENCE_STATIC_ASSERT(sizeof(struct limit_key) == 24, "limit_key layout");
FENCE_STATIC_ASSERT(sizeof(struct limit_state) == 8, "limit_state layout");
FENCE_STATIC_ASSERT(sizeof(struct conn_owner) == 28, "conn_owner layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_info) == 232, "rule_info layout");
FENCE_STATIC_ASSERT(sizeof(struct source_key) == 20, "source_key layout");
FENCE_STATIC_ASSERT(sizeof(struct source_stats) == 80, "source_stats layout");
FENCE_STATIC_ASSERT(sizeof(struct sketch_cell) == 24, "sketch_cell layout");
FENCE_STATIC_ASSERT(sizeof(struct source_guard) == 16, "source_guard layout");
FENCE_STATIC_ASSERT(sizeof(struct syn_flow_set) == 64, "syn_flow_set layout");
FENCE_STATIC_ASSERT(sizeof(struct event_mark) == 16, "event_mark layout");
FENCE_STATIC_ASSERT(sizeof(struct fence_event) == 40, "fence_event layout");
FENCE_STATIC_ASSERT(sizeof(struct rule_pace) == 56, "rule_pace layout");
FENCE_STATIC_ASSERT(sizeof(struct pace_key_state) == 16, "pace_key_state layout");
FENCE_STATIC_ASSERT(sizeof(struct pace_flow_key) == 24, "pace_flow_key layout");
FENCE_STATIC_ASSERT(sizeof(struct pace_flow) == 24, "pace_flow layout");
FENCE_STATIC_ASSERT(sizeof(struct list_key) == 20, "list_key layout");
FENCE_STATIC_ASSERT(sizeof(struct list_value) == 16, "list_value layout");
FENCE_STATIC_ASSERT(sizeof(struct list_info) == 88, "list_info layout");
FENCE_STATIC_ASSERT(sizeof(struct fence_config) == 32 + 8 * FENCE_PORT_WORDS,
		    "fence_config layout");
FENCE_STATIC_ASSERT(sizeof(struct fence_stats) == 104, "fence_stats layout");

#endif
