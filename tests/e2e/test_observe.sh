#!/usr/bin/env bash
# End-to-end: seeing the flood. Known traffic from known sources, then every
# view of it must show exactly that traffic.
#
#   A (203.0.113.10) makes 40 SMTP connection attempts and is blocked; B
#   (198.51.100.10) makes 10 and connects. Each attempt is exactly one SYN
#   (attempts give up after 300 ms; the kernel retransmits a SYN after 1 s),
#   so SYN packets and connection attempts agree. `stats --json` counts 50
#   attempts, 40 drops, and one event; `top --json`
#   lists A then B with their counts and A's rule; `events --json` yields one
#   event for A's first drop, not 40, and a second reader finds the buffer
#   drained; `serve`'s /metrics passes `promtool check metrics` and has the
#   same numbers as `stats --json` and `smtpfence metrics`; /rules is `list
#   --json`; /top ranks like `top`; a source active during the sample
#   outranks bigger but idle ones; a removed rule shows as "(removed)";
#   `events --follow` reports a new source's first drop and stops on SIGTERM;
#   text modes print one line per interval when stdout is not a terminal; an
#   IPv6 source's event reads as text; a blocked connect that waits 3.5 s
#   sends its SYN 3 or 4 times (the sender's retransmission schedule) and is
#   counted as that many SYN packets but one connection attempt, by the rule,
#   by `top` and globally; `serve` exits 0 on SIGTERM.
#
# Needs root. Run: sudo bash tests/e2e/test_observe.sh
# (SMTPFENCE / TCPPROBE point at the binaries; defaults build/...)
set -u
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMTOOL=${PROMTOOL:-/var/cache/smtpfence-deps/prometheus/usr/bin/promtool}

e2e_require_root
e2e_require_tools curl
[[ -x $PROMTOOL ]] || e2e_die "promtool not found at $PROMTOOL (scripts/install-deps.sh unpacks it; or set PROMTOOL)"
e2e_setup_topology

H4_A=198.51.100.1
H4_B=203.0.113.1
A=203.0.113.10
A2=203.0.113.20
B=198.51.100.10
B2=198.51.100.20
H6=2001:db8:1::1
V6_SRC=2001:db8:1::20
BLOCK=203.0.113.0/24
ATTEMPT_MS=300
LISTEN=127.0.0.1:9464

start_listener 25

# attempts SRC DST COUNT [INTERVAL_MS]: COUNT attempts to port 25; prints tcpprobe's "ok=X fail=Y" line.
attempts() {
    local pace=()
    [[ -n ${4:-} ]] && pace=(--interval-ms "$4")
    sender_exec "$TCPPROBE" count --src "$1" --timeout-ms "$ATTEMPT_MS" --attempts "$3" "${pace[@]}" "$2" 25 2>&1
}

# http_get PATH FILE: GET from `serve` (inside the host namespace) into FILE;
# prints the HTTP status.
http_get() { host_exec curl -sS --max-time 10 -o "$2" -w '%{http_code}' "http://$LISTEN$1"; }

e2e_log "attach, block $BLOCK"
expect_exit 0 "attach $HOST_IF" fence attach "$HOST_IF"
expect_exit 0 "block $BLOCK" fence block "$BLOCK" --reason "notifier storm"

e2e_log "traffic: 40 attempts from A (blocked), 10 from B"
check_match "A: 40 attempts, all dropped" '^ok=0 fail=40( |$)' "$(attempts "$A" "$H4_B" 40 10)"
check_match "B: 10 attempts, all connect" '^ok=10 fail=0$' "$(attempts "$B" "$H4_A" 10)"

# ------------------------------------------------------------ stats

e2e_log "stats --json"
STATS=$E2E_TMP/stats.json
fence stats --json >"$STATS" || e2e_fail "stats --json failed"
sj() { jq -r "$1" "$STATS"; }
check_eq "stats: smtp_syn = 50 SYN packets" 50 "$(sj .counters.smtp_syn)"
check_eq "stats: smtp_attempts = 50 (no retransmissions)" 50 "$(sj .counters.smtp_attempts)"
check_eq "stats: dropped_attempts = A's 40" 40 "$(sj .counters.dropped_attempts)"
check_eq "stats: dropped = A's 40" 40 "$(sj .counters.dropped)"
check_eq "stats: would_drop" 0 "$(sj .counters.would_drop)"
check_eq "stats: fragments" 0 "$(sj .counters.fragments)"
check_eq "stats: one event (A's first drop)" 1 "$(sj .counters.events)"
check_eq "stats: no event suppressed" 0 "$(sj .counters.events_suppressed)"
check_eq "stats: seen = passed + dropped" "$(sj .counters.seen)" "$(sj '.counters.passed + .counters.dropped')"
check_eq "stats: one snapshot has no rates" "null null" "$(sj '"\(.interval_s) \(.rates)"')"
check_eq "stats: the rule" "203.0.113.0/24 block false" "$(sj '.rules[0] | "\(.cidr) \(.action) \(.dry_run)"')"
check_eq "stats: the rule's counters" \
    '{"matched":40,"attempts":40,"dropped":40,"dropped_attempts":40,"rate_dropped":0,"conns_dropped":0,"would_drop":0,"would_drop_attempts":0}' \
    "$(sj '.rules[0].counters | tojson')"
RULE_ID=$(sj '.rules[0].rule_id')
check_match "stats: the rule has an id" '^[1-9][0-9]*$' "$RULE_ID"

# ------------------------------------------------------------ top

e2e_log "top --json"
TOP=$E2E_TMP/top.json
fence top --json --interval 0.3 >"$TOP" || e2e_fail "top --json failed"
check_eq "top: two sources" 2 "$(jq '.sources | length' "$TOP")"
check_eq "top: A first (idle: ranked by total attempts)" \
    "$A [25] 40 40 40 0 40 0 0 blocked" \
    "$(jq -r '.sources[0] | "\(.source) \(.ports | tojson) \(.attempts) \(.dropped_attempts) \(.syn_packets) \(.passed) \(.blocked) \(.limited) \(.would_drop) \(.last_verdict)"' "$TOP")"
check_eq "top: A's rule" "$RULE_ID $BLOCK block false" \
    "$(jq -r '.sources[0].rule | "\(.id) \(.cidr) \(.action) \(.removed)"' "$TOP")"
check_eq "top: B second" "$B [25] 10 0 10 10 0 0 0 passed null" \
    "$(jq -r '.sources[1] | "\(.source) \(.ports | tojson) \(.attempts) \(.dropped_attempts) \(.syn_packets) \(.passed) \(.blocked) \(.limited) \(.would_drop) \(.last_verdict) \(.rule)"' "$TOP")"
check_eq "top: no attempts during the sample" "0 0" "$(jq -r '[.sources[].attempts_per_s] | join(" ")' "$TOP")"
check_eq "top: no SYN packets during the sample" "0 0" "$(jq -r '[.sources[].syn_packets_per_s] | join(" ")' "$TOP")"
check_eq "top: tracked and capacity" "2 65536" "$(jq -r '"\(.sources_tracked) \(.sources_capacity)"' "$TOP")"
check_eq "top -n 1: one source" "$A" "$(fence top --json -n 1 --interval 0.1 | jq -r '[.sources[].source] | join(" ")')"
check_eq "top --port 587: nobody" 0 "$(fence top --json --port 587 --interval 0.1 | jq '.sources | length')"
check_eq "top --port 25: both" 2 "$(fence top --json --port 25 --interval 0.1 | jq '.sources | length')"

# ------------------------------------------------------------ events

e2e_log "events --json"
EVENTS=$E2E_TMP/events.ndjson
fence events --json >"$EVENTS" || e2e_fail "events --json failed"
check_eq "events: exactly one, not 40" 1 "$(wc -l <"$EVENTS")"
check_eq "events: A's first drop by the block" "drop $A 25 blocked $BLOCK block $RULE_ID" \
    "$(jq -r '"\(.type) \(.source) \(.port) \(.verdict) \(.rule) \(.action) \(.rule_id)"' "$EVENTS")"
check_eq "events: a second reader finds the buffer drained" "" "$(fence events --json)"

# ------------------------------------------------------------ serve

e2e_log "serve --listen $LISTEN (in $HOST_NS)"
start_serve "$LISTEN"

BODY=$E2E_TMP/metrics.txt
check_eq "GET /metrics: 200" 200 "$(http_get /metrics "$BODY")"
check_match "GET /metrics: Prometheus content type" 'text/plain; version=0.0.4' \
    "$(host_exec curl -sS -o /dev/null -w '%{content_type}' "http://$LISTEN/metrics")"
check "promtool check metrics accepts /metrics" "$PROMTOOL" check metrics <"$BODY"
promtool_out=$("$PROMTOOL" check metrics <"$BODY" 2>&1)
check_eq "promtool has no lint complaints" "" "$promtool_out"

# metric NAME_AND_LABELS: its value in the scraped body.
metric() { awk -v m="$1" '$1 == m { print $2 }' "$BODY"; }
check_eq "/metrics: SYN packets = stats smtp_syn" "$(sj .counters.smtp_syn)" "$(metric smtpfence_syn_packets_total)"
check_eq "/metrics: connection attempts = stats smtp_attempts" "$(sj .counters.smtp_attempts)" \
    "$(metric smtpfence_connection_attempts_total)"
check_eq "/metrics: dropped attempts = stats dropped_attempts" "$(sj .counters.dropped_attempts)" \
    "$(metric smtpfence_dropped_attempts_total)"
check_eq "/metrics: dropped packets = stats dropped" "$(sj .counters.dropped)" \
    "$(metric 'smtpfence_packets_total{result="dropped"}')"
check_eq "/metrics: events = 1" 1 "$(metric smtpfence_events_total)"
check_eq "/metrics: suppressed = 0" 0 "$(metric smtpfence_events_suppressed_total)"
check_eq "/metrics: would_drop = 0" 0 "$(metric smtpfence_would_drop_total)"
check_eq "/metrics: fragments = 0" 0 "$(metric smtpfence_fragments_total)"
check_eq "/metrics: rule matched = 40" 40 "$(metric 'smtpfence_rule_matched_total{rule="203.0.113.0/24",action="block"}')"
check_eq "/metrics: rule dropped = 40" 40 "$(metric 'smtpfence_rule_dropped_total{rule="203.0.113.0/24",action="block"}')"
check_eq "/metrics: rule attempts = 40" 40 \
    "$(metric 'smtpfence_rule_connection_attempts_total{rule="203.0.113.0/24",action="block"}')"
check_eq "/metrics: rule dropped attempts = 40" 40 \
    "$(metric 'smtpfence_rule_dropped_attempts_total{rule="203.0.113.0/24",action="block"}')"
check_eq "/metrics: rule rate_dropped = 0" 0 \
    "$(metric 'smtpfence_rule_rate_dropped_total{rule="203.0.113.0/24",action="block"}')"
check_eq "/metrics: one block rule" 1 "$(metric 'smtpfence_rules{action="block"}')"
check_eq "/metrics: sources tracked = 2" 2 "$(metric smtpfence_sources_tracked)"
check_eq "/metrics: one interface attached" 1 "$(metric smtpfence_attached_interfaces)"
check_eq "/metrics: no source address is a label" "" "$(grep -E "$A|$B" "$BODY")"
# `smtpfence metrics` on stdout: the same exposition (the packet counters
# other than SMTP's may move with neighbour discovery between the two reads).
CLI_BODY=$E2E_TMP/metrics-cli.txt
fence metrics >"$CLI_BODY" || e2e_fail "smtpfence metrics failed"
stable() { grep -v -e '^smtpfence_packets_total{result="passed"}' "$1"; }
check_eq "smtpfence metrics = GET /metrics" "$(stable "$BODY")" "$(stable "$CLI_BODY")"

RULES=$E2E_TMP/rules.json
check_eq "GET /rules: 200" 200 "$(http_get /rules "$RULES")"
check_eq "GET /rules = list --json" "$(fence list --json | jq -cS .)" "$(jq -cS . "$RULES")"
TOPH=$E2E_TMP/top-http.json
check_eq "GET /top: 200" 200 "$(http_get '/top?interval=0.2' "$TOPH")"
check_eq "GET /top: A then B with their counts" "$A:40:40 $B:10:0" \
    "$(jq -r '[.sources[] | "\(.source):\(.attempts):\(.blocked)"] | join(" ")' "$TOPH")"
check_eq "GET /top?n=1&port=25" "$A" \
    "$(host_exec curl -sS "http://$LISTEN/top?interval=0.1&n=1&port=25" | jq -r '[.sources[].source] | join(" ")')"
check_eq "GET /top?interval=abc: 400" 400 "$(http_get '/top?interval=abc' /dev/null)"
check_eq "GET /nope: 404" 404 "$(http_get /nope /dev/null)"

# ------------------------------------------------------------ events --follow

e2e_log "events --follow: A2's first drop arrives, SIGTERM stops it"
FOLLOW=$E2E_TMP/follow.ndjson
nsenter --net="$NETNS_DIR/$HOST_NS" -- setpriv --pdeathsig TERM -- "$SMTPFENCE" events --follow --json \
    >"$FOLLOW" 2>&1 &
FOLLOW_PID=$!
E2E_PIDS+=("$FOLLOW_PID")
check_match "A2: 3 attempts, all dropped" '^ok=0 fail=3$' "$(attempts "$A2" "$H4_B" 3)"
if wait_until 5 test -s "$FOLLOW"; then
    check_eq "events --follow: one event, A2's" "1 $A2 blocked" \
        "$(wc -l <"$FOLLOW") $(jq -r '"\(.source) \(.verdict)"' "$FOLLOW" | head -1)"
else
    e2e_fail "events --follow printed nothing within 5 s"
fi
kill -TERM "$FOLLOW_PID"
if wait_until 3 bash -c "! kill -0 $FOLLOW_PID 2>/dev/null"; then
    wait "$FOLLOW_PID"
    check_eq "events --follow exits 0 on SIGTERM" 0 "$?"
else
    e2e_fail "events --follow still runs 3 s after SIGTERM"
fi

# ------------------------------------------------------------ ranking by rate

e2e_log "B2 connects during the sample: it outranks the idle A and B"
B2_OUT=$E2E_TMP/b2.out
sender_exec "$TCPPROBE" count --src "$B2" --timeout-ms "$ATTEMPT_MS" --attempts 60 --interval-ms 50 "$H4_A" 25 \
    >"$B2_OUT" 2>&1 &
B2_PID=$!
E2E_PIDS+=("$B2_PID")
b2_seen() { fence top --json --interval 0.1 | jq -e --arg s "$B2" 'any(.sources[]; .source == $s)' >/dev/null; }
wait_until 5 b2_seen || e2e_fail "B2 never showed up in top"
fence top --json --interval 1 >"$TOP"
check_eq "top: B2 first (active), then A, A2, B (idle, by total)" "$B2 $A $B $A2" \
    "$(jq -r '[.sources[].source] | join(" ")' "$TOP")"
b2_rate=$(jq -r '.sources[0].attempts_per_s' "$TOP")
if awk -v r="$b2_rate" 'BEGIN { exit !(r >= 10 && r <= 30) }'; then
    e2e_pass "top: B2's rate is about 20/s ($b2_rate)"
else
    e2e_fail "top: B2's rate $b2_rate is not about 20/s"
fi
check_eq "top: idle sources have rate 0" "0 0 0" "$(jq -r '[.sources[1:][].attempts_per_s] | join(" ")' "$TOP")"
wait "$B2_PID"

# ------------------------------------------------------------ plain output

e2e_log "text modes on a pipe: one line per interval"
lines=$(fence top --interval 0.2 --count 2)
check_eq "top (not a terminal): 2 intervals, 2 lines" 2 "$(wc -l <<<"$lines")"
check_match "top line: time, then sources with rule" \
    "^[0-9-]+T[0-9:]+Z 4/65536 tracked: $B2 ports=25 .* $A ports=25 0\.0/s attempts=40 dropped_attempts=40 syn_packets=40 \(0\.0/s\) .* rule=block:203\.0\.113\.0/24" \
    "$(head -1 <<<"$lines")"
lines=$(fence stats --watch 0.2 --count 2)
check_eq "stats --watch (not a terminal): 2 lines" 2 "$(wc -l <<<"$lines")"
check_match "stats line: totals with rates" \
    '^[0-9-]+T[0-9:]+Z seen=[0-9]+ \([0-9.]+/s\) .* smtp_syn=113 \(0\.0/s\) smtp_attempts=113 \(0\.0/s\) dropped_attempts=43 \(0\.0/s\) .*; block 203\.0\.113\.0/24 matched=43 \(0\.0/s\) attempts=43 \(0\.0/s\)' \
    "$(tail -1 <<<"$lines")"
lines=$(fence stats --watch 0.2 --count 2 --json)
check_eq "stats --watch --json: one object per interval, with rates" "2 true true" \
    "$(jq -s '"\(length) \(all(.[]; .interval_s > 0)) \(all(.[]; .rates.smtp_syn == 0))"' -r <<<"$lines")"
STATS_TEXT=$(fence stats)
check_match "stats (text): SYN packets" 'smtp_syn +113' "$STATS_TEXT"
check_match "stats (text): attempts" 'smtp_attempts +113' "$STATS_TEXT"

e2e_log "an IPv6 source's first drop, as text"
expect_exit 0 "block $V6_SRC" fence block "$V6_SRC"
check_match "$V6_SRC: 2 attempts, both dropped" '^ok=0 fail=2$' "$(attempts "$V6_SRC" "$H6" 2)"
check_match "events (text): one line for the IPv6 source" \
    "^[0-9-]+T[0-9:]+Z first drop: $V6_SRC -> port 25 by block $V6_SRC/128 \(rule [0-9]+\)$" "$(fence events)"

# ------------------------------------------------------------ retransmissions

# The sender's SYN retransmission schedule within a 3.5 s connect: the first
# tcp_syn_linear_timeouts retransmissions come 1 s apart, later ones back off
# exponentially (Linux >= 6.5; older kernels have no linear ones).
CONNECT_MS=3500
linear=$(ip netns exec "$SENDER_NS" sysctl -n net.ipv4.tcp_syn_linear_timeouts 2>/dev/null || echo 0)
EXPECTED_SYNS=$(awk -v linear="$linear" -v limit="$CONNECT_MS" 'BEGIN {
    t = 0; rto = 1000; n = 1
    for (i = 1; t + rto < limit; i++) { t += rto; n++; if (i >= linear) rto *= 2 }
    print n }')
e2e_log "retransmissions: one blocked connect of $CONNECT_MS ms from $V6_SRC = $EXPECTED_SYNS SYN packets, 1 attempt"
rule6() { fence list --json | jq -r --arg c "$V6_SRC/128" ".rules[] | select(.cidr == \$c) | $1"; }
stat6() { fence stats --json | jq -r "$1"; }
before_rule=$(rule6 '"\(.matched) \(.attempts) \(.dropped_attempts)"')
before_global=$(stat6 '"\(.counters.smtp_syn) \(.counters.smtp_attempts) \(.counters.dropped_attempts)"')
if sender_exec "$TCPPROBE" connect --src "$V6_SRC" --timeout-ms "$CONNECT_MS" "$H6" 25 >/dev/null 2>&1; then
    e2e_fail "the blocked $CONNECT_MS ms connect got through"
else
    e2e_pass "the blocked $CONNECT_MS ms connect timed out"
fi
read -r m0 a0 d0 <<<"$before_rule"
read -r m1 a1 d1 <<<"$(rule6 '"\(.matched) \(.attempts) \(.dropped_attempts)"')"
check_eq "rule $V6_SRC/128: $EXPECTED_SYNS more SYN packets, 1 more attempt, dropped" "$EXPECTED_SYNS 1 1" \
    "$((m1 - m0)) $((a1 - a0)) $((d1 - d0))"
read -r s0 t0 g0 <<<"$before_global"
read -r s1 t1 g1 <<<"$(stat6 '"\(.counters.smtp_syn) \(.counters.smtp_attempts) \(.counters.dropped_attempts)"')"
check_eq "stats: $EXPECTED_SYNS more smtp_syn, 1 more smtp_attempts and dropped_attempts" "$EXPECTED_SYNS 1 1" \
    "$((s1 - s0)) $((t1 - t0)) $((g1 - g0))"
check_eq "top: $V6_SRC made 3 attempts (2 earlier, 1 now) in $((2 + EXPECTED_SYNS)) SYN packets" \
    "3 3 $((2 + EXPECTED_SYNS)) $((2 + EXPECTED_SYNS))" \
    "$(fence top --json --interval 0.1 | jq -r --arg s "$V6_SRC" '.sources[] | select(.source == $s) | "\(.attempts) \(.dropped_attempts) \(.syn_packets) \(.blocked)"')"

# ------------------------------------------------------------ removed rule

e2e_log "remove $BLOCK: top names the rule A met as removed"
expect_exit 0 "remove $BLOCK" fence remove "$BLOCK"
check_eq "top: A's rule (removed)" "$BLOCK block true" \
    "$(fence top --json --interval 0.1 | jq -r --arg a "$A" '.sources[] | select(.source == $a) | .rule | "\(.cidr) \(.action) \(.removed)"')"
check_match "top (text) says removed" "$A ports=25 .* rule=block:203\.0\.113\.0/24\(removed\)" \
    "$(fence top --interval 0.1 --count 1)"

e2e_log "serve stops on SIGTERM"
stop_serve

e2e_finish
