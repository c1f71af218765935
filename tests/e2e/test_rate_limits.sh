#!/usr/bin/env bash
# End-to-end: `limit --rate` (GCRA on new SMTP connections) on a real veth.
#
#   `limit 203.0.113.0/24 --rate 5/s --burst 5`: a source paced at 100
#   attempts in 2 s gets what a token bucket allows in the time it took, no
#   more and (within one) no less, and list --json counts exactly the probe's
#   own attempts; --per source gives every address its own bucket, --per rule
#   one bucket for the whole prefix, and an IPv6 source's key is its /64; an
#   allow inside the limited range is never limited, nor is ssh from a limited
#   source, nor any other source.
#
# Needs root. Run: sudo bash tests/e2e/test_rate_limits.sh
# (SMTPFENCE / TCPPROBE point at the binaries; defaults build/...)
set -u
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_require_root
e2e_require_tools
e2e_setup_topology

H4_A=198.51.100.1 # the mail host, "legit" subnet
H4_B=203.0.113.1  # the mail host, limited subnet
H6=2001:db8:1::1
LEGIT=198.51.100.10
LEGIT2=198.51.100.20
SRC1=203.0.113.10
SRC2=203.0.113.20
V6_1=2001:db8:1::10
V6_2=2001:db8:1::20
LIMIT=203.0.113.0/24

# Attempts give up after 100 ms: a veth answers in well under a millisecond,
# and the kernel retransmits a SYN only after 1 s, so every failed attempt is
# exactly one dropped SYN, and every attempt exactly one SYN the rule decides.
ATTEMPT_MS=100
E2E_PROBE_TIMEOUT_MS=300

start_listener 22 25

# count NS SRC DST PORT ATTEMPTS [INTERVAL_MS]: runs tcpprobe count and sets
# OK, FAIL and SPAN_US (-1 when not paced). A malformed line fails the test.
OK=0 FAIL=0 SPAN_US=-1
count() {
    local line
    local pace=()
    [[ -n ${6:-} ]] && pace=(--interval-ms "$6")
    line=$(ip netns exec "$1" "$TCPPROBE" count --src "$2" --timeout-ms "$ATTEMPT_MS" --attempts "$5" \
        "${pace[@]}" "$3" "$4" 2>&1)
    if [[ $line =~ ^ok=([0-9]+)\ fail=([0-9]+)(\ span_us=([0-9]+))?$ ]]; then
        OK=${BASH_REMATCH[1]} FAIL=${BASH_REMATCH[2]} SPAN_US=${BASH_REMATCH[4]:--1}
        return 0
    fi
    OK=0 FAIL=0 SPAN_US=-1
    e2e_fail "tcpprobe count from $2 to $3:$4 printed '$line'"
    return 1
}

# expect_count DESC WANT_OK NS SRC DST PORT ATTEMPTS: exactly WANT_OK connect.
expect_count() {
    local desc=$1 want=$2
    shift 2
    count "$@" || return 1
    check_eq "$desc: $want of $5 connect (ok=$OK fail=$FAIL)" "$want" "$OK"
}

limit_field() { # limit_field CIDR FIELD: of the rule's "limit" object
    fence list --json | jq -r --arg c "$1" --arg f "$2" '.rules[] | select(.cidr == $c) | .limit[$f]'
}

e2e_log "attach"
expect_exit 0 "attach $HOST_IF" fence attach "$HOST_IF"

# ------------------------------------------------------------ the bucket's bound

e2e_log "limit $LIMIT --rate 5/s --burst 5 --per source; $SRC1 tries 100 times in 2 s"
RATE=5      # per second
BURST=5
PACING_MS=20 # 100 attempts, one every 20 ms: 1.98 s from the first SYN to the last
ATTEMPTS=100
expect_exit 0 "limit $LIMIT --rate 5/s --burst 5 --per source" \
    fence limit "$LIMIT" --rate 5/s --burst 5 --per source --reason "upstream backlog"
check_eq "list: rate" "5/s" "$(limit_field "$LIMIT" rate)"
check_eq "list: interval_ns (1 s / 5)" 200000000 "$(limit_field "$LIMIT" interval_ns)"
check_eq "list: burst" 5 "$(limit_field "$LIMIT" burst)"
check_eq "list: per" source "$(limit_field "$LIMIT" per)"
check_eq "list: key_prefixlen" 32 "$(limit_field "$LIMIT" key_prefixlen)"
check_eq "list: max_conns" 0 "$(limit_field "$LIMIT" max_conns)"
check_eq "list: no key tracked yet" 0 "$(limit_field "$LIMIT" tracked_keys)"
check_match "list (text) shows the limit's terms" '5/s burst 5 per source' "$(fence list 2>&1)"

start_ns=$(date +%s%N)
count "$SENDER_NS" "$SRC1" "$H4_B" 25 "$ATTEMPTS" "$PACING_MS"
end_ns=$(date +%s%N)
T_NS=$((end_ns - start_ns))
e2e_log "ok=$OK fail=$FAIL; SYNs sent over ${SPAN_US} us; ${T_NS} ns around the whole run"
check_eq "every attempt ended in a connection or a timeout" "$ATTEMPTS" $((OK + FAIL))
# The pacing itself: 99 gaps of 20 ms. If the probe could not keep up (a
# much longer span) the bounds below still hold, but the run would no longer
# be "100 attempts in 2 s".
if ((SPAN_US >= (ATTEMPTS - 1) * PACING_MS * 1000 && SPAN_US < 3000000)); then
    e2e_pass "the attempts were paced over ~2 s (${SPAN_US} us)"
else
    e2e_fail "the attempts were not paced over ~2 s: span ${SPAN_US} us"
fi
# Upper bound. A GCRA bucket admits at most BURST at once and then one per
# interval: over any time T at most BURST + floor(T * RATE) connections.
# T is measured around the whole run, so it is longer than the span in which
# the SYNs arrived; the + 1 absorbs the rounding of the kernel's clock against
# ours at the window's edges.
max_ok=$((BURST + T_NS * RATE / 1000000000 + 1))
# Lower bound. Attempt i is sent at t0 + i * 20 ms. The bucket admits the
# first BURST at once (they arrive within 80 ms, well inside the tolerance of
# (BURST - 1) intervals = 800 ms), which puts the key's clock (TAT) at
# t0 + BURST * 200 ms; the k-th admission after them is the first attempt
# at or after t0 + k * 200 ms, and since the TAT is still ahead of that
# attempt's time it moves to exactly t0 + (BURST + k) * 200 ms: a late
# attempt does not push later ones back, and after a stall several attempts
# in a row catch up. Attempts are only ever 20 ms apart (< 200 ms), so every
# threshold up to the last attempt's time is crossed: a perfect bucket admits
# exactly BURST + floor(S * RATE), S the span from the first SYN to the last
# (SPAN_US, measured by the probe around its connect() calls, not including
# the last attempt's 100 ms wait). The tolerance of 1: the kernel stamps each
# SYN a little after our connect() call, by a delay that varies from one SYN
# to the next, so the window it sees can be shorter than S by that jitter and
# a threshold that S just crossed may not be crossed in its clock. Anything
# lower means a lost admission.
min_ok=$((BURST + SPAN_US * RATE / 1000000))
((min_ok > ATTEMPTS)) && min_ok=$ATTEMPTS
min_ok=$((min_ok - 1))
if ((OK >= min_ok && OK <= max_ok)); then
    e2e_pass "$OK of $ATTEMPTS connected: within the bucket's bounds [$min_ok, $max_ok]"
else
    e2e_fail "$OK of $ATTEMPTS connected: outside the bucket's bounds [$min_ok, $max_ok] (span ${SPAN_US} us, T ${T_NS} ns)"
fi
# The rule decided every SYN, and each attempt was one SYN.
check_eq "list: matched = the probe's attempts (ok + fail)" $((OK + FAIL)) "$(rule_field "$LIMIT" matched)"
check_eq "list: allowed = the probe's connections" "$OK" "$(limit_field "$LIMIT" allowed)"
check_eq "list: rate_dropped = the probe's failures" "$FAIL" "$(limit_field "$LIMIT" rate_dropped)"
check_eq "list: dropped = rate_dropped" "$FAIL" "$(rule_field "$LIMIT" dropped)"
check_eq "list: conns_dropped 0 (no --max-conns)" 0 "$(limit_field "$LIMIT" conns_dropped)"
check_eq "list: one key tracked ($SRC1)" 1 "$(limit_field "$LIMIT" tracked_keys)"

# ------------------------------------------------------------ keys

# From here on the rate is 5/min: one token takes 12 s, so a run of attempts
# that ends well within 12 s of the first admission gets exactly the burst,
# whatever the machine's scheduling. (At 5/s, "quick" would mean within
# 200 ms, including process start-up, which a loaded machine may not give.)
# Remove and add, rather than change in place: a change with the same key
# length keeps the keys' clocks.
e2e_log "--per source at 5/min burst 5: $SRC1 and $SRC2 each have their own 5"
expect_exit 0 "remove $LIMIT" fence remove "$LIMIT"
expect_exit 0 "limit $LIMIT --rate 5/min --burst 5 --per source" \
    fence limit "$LIMIT" --rate 5/min --burst 5 --per source
check_eq "list: rate" "5/min" "$(limit_field "$LIMIT" rate)"
expect_count "$SRC1, 10 quick attempts" 5 "$SENDER_NS" "$SRC1" "$H4_B" 25 10
expect_count "$SRC2, 10 quick attempts, its own bucket" 5 "$SENDER_NS" "$SRC2" "$H4_B" 25 10
check_eq "list: two keys tracked" 2 "$(limit_field "$LIMIT" tracked_keys)"
check_eq "list: allowed 10" 10 "$(limit_field "$LIMIT" allowed)"
check_eq "list: rate_dropped 10" 10 "$(limit_field "$LIMIT" rate_dropped)"

e2e_log "--per rule: $SRC1 and $SRC2 share one bucket"
# A new key length: the rule starts with fresh state.
expect_exit 0 "limit $LIMIT --rate 5/min --burst 5 --per rule (re-added)" \
    fence limit "$LIMIT" --rate 5/min --burst 5 --per rule
check_eq "list: per" rule "$(limit_field "$LIMIT" per)"
check_eq "list: key_prefixlen 24" 24 "$(limit_field "$LIMIT" key_prefixlen)"
check_eq "list: fresh state, no key tracked" 0 "$(limit_field "$LIMIT" tracked_keys)"
count "$SENDER_NS" "$SRC1" "$H4_B" 25 10
ok1=$OK
count "$SENDER_NS" "$SRC2" "$H4_B" 25 10
ok2=$OK
check_eq "5 connect in total over both sources ($SRC1 $ok1, $SRC2 $ok2)" 5 $((ok1 + ok2))
check_eq "list: one key tracked" 1 "$(limit_field "$LIMIT" tracked_keys)"

e2e_log "IPv6 --per source: a key is a /64, so $V6_1 and $V6_2 share one"
expect_exit 0 "limit 2001:db8::/32 --rate 5/min --burst 5" fence limit 2001:db8::/32 --rate 5/min --burst 5
check_eq "list: per source" source "$(limit_field 2001:db8::/32 per)"
check_eq "list: key_prefixlen 64" 64 "$(limit_field 2001:db8::/32 key_prefixlen)"
count "$SENDER_NS" "$V6_1" "$H6" 25 10
ok1=$OK
count "$SENDER_NS" "$V6_2" "$H6" 25 10
ok2=$OK
check_eq "5 connect in total over the /64 ($V6_1 $ok1, $V6_2 $ok2)" 5 $((ok1 + ok2))
check_eq "list: one key tracked" 1 "$(limit_field 2001:db8::/32 tracked_keys)"

# ------------------------------------------------------------ what is never limited

e2e_log "never limited: an allow inside the range, ssh, other sources"
# Both buckets are empty now (for the next 12 s): prove it first, so that the
# connections below cannot be explained by tokens left over.
expect_blocked "$SRC1" "$H4_B" 25
expect_blocked "$SRC2" "$H4_B" 25
expect_blocked "$V6_1" "$H6" 25
matched_before=$(rule_field "$LIMIT" matched)
matched6_before=$(rule_field 2001:db8::/32 matched)

expect_exit 0 "allow $SRC2/32 inside the limit" fence allow "$SRC2/32" --reason "their real MX"
expect_count "$SRC2 (allowed), 20 attempts" 20 "$SENDER_NS" "$SRC2" "$H4_B" 25 20
check_eq "list: the allow decided them (matched 20)" 20 "$(rule_field "$SRC2/32" matched)"
check_eq "list: the allow dropped none" 0 "$(rule_field "$SRC2/32" dropped)"

expect_count "$SRC1 (limited, bucket empty) to ssh (22), 20 attempts" 20 "$SENDER_NS" "$SRC1" "$H4_B" 22 20
expect_count "$V6_1 (limited, bucket empty) to ssh (22), 10 attempts" 10 "$SENDER_NS" "$V6_1" "$H6" 22 10

expect_count "$LEGIT (no rule), 20 attempts" 20 "$SENDER_NS" "$LEGIT" "$H4_A" 25 20
expect_count "$LEGIT2 (no rule) to the limited subnet's host address, 20 attempts" 20 \
    "$SENDER_NS" "$LEGIT2" "$H4_B" 25 20

check_eq "list: the limit saw none of them" "$matched_before" "$(rule_field "$LIMIT" matched)"
check_eq "list: the IPv6 limit saw none of them" "$matched6_before" "$(rule_field 2001:db8::/32 matched)"
expect_blocked "$SRC1" "$H4_B" 25 # and the limit still holds

e2e_log "remove: everyone connects"
expect_exit 0 "remove the rules" fence remove "$LIMIT" "$SRC2/32" 2001:db8::/32
expect_count "$SRC1 after remove, 10 attempts" 10 "$SENDER_NS" "$SRC1" "$H4_B" 25 10
expect_count "$V6_1 after remove, 10 attempts" 10 "$SENDER_NS" "$V6_1" "$H6" 25 10

e2e_finish
