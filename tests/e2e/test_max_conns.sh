#!/usr/bin/env bash
# End-to-end: `limit --max-conns`, counted by the sock_ops program on the
# mail host's own server sockets.
#
#   The mail host holds connections open like an MTA (tcpprobe listen --hold,
#   closing a silent client after --idle-close-ms). Under
#   `limit 198.51.100.0/24 --max-conns 3` a source gets 3 open connections and
#   its 4th SYN is dropped (conns_dropped grows); a slot frees when the client
#   closes normally (FIN), when it resets (RST), and, for a client that
#   vanishes without a packet, only when the server's idle timeout closes the
#   socket; another source has its own 3 (--per source); IPv6 sources of one
#   /64 share a key. At the end no count is leaked: every key is back at 0,
#   and removing the rule forgets the keys.
#
#   The listener on 25 has separate IPv4 and IPv6-only sockets (--v6only),
#   as Postfix listens. A second listener, on 587, is one dual-stack socket
#   (as MTAs that bind [::] with IPV6_V6ONLY=0 listen): an IPv4 client's
#   connection there must be counted too.
#
# Needs root and cgroup v2. Run: sudo bash tests/e2e/test_max_conns.sh
# (SMTPFENCE / TCPPROBE point at the binaries; defaults build/...)
# shellcheck disable=SC2317 # the predicates are called through wait_until and check
set -u
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_require_root
e2e_require_tools bpftool ss
e2e_setup_topology

H4=198.51.100.1
H4_B=203.0.113.1
H6=2001:db8:1::1
SRC_A=198.51.100.10
SRC_B=198.51.100.20
DS_SRC=203.0.113.10 # the dual-stack check's source
V6_1=2001:db8:1::10
V6_2=2001:db8:1::20

# The server closes a connection after IDLE_MS without a byte from the
# client; held clients send NOOP every NOOP_MS, so only a vanished client
# goes silent.
IDLE_MS=2000
NOOP_MS=250
# A probe that must be blocked waits this long: a veth answers in well under
# a millisecond, and below 1000 ms every attempt is exactly one SYN.
E2E_PROBE_TIMEOUT_MS=400
HOLD_TIMEOUT_MS=400

# ------------------------------------------------------------ held clients

# One `tcpprobe hold` per name, its stdin a FIFO held open by this shell.
declare -A HOLD_FD=() HOLD_PID=() HOLD_SPORT=()
HOLD_SEQ=0
HOLD_BASE=

hold_settled() { grep -q '^sport ' "$HOLD_BASE.out" || ! kill -0 "$1" 2>/dev/null; }

# hold_try NAME SRC DST PORT: one attempt (HOLD_TIMEOUT_MS) to open a held
# connection from SRC. Returns 0 if it connected (the client keeps it until
# hold_cmd), 1 if not. Must not run in a subshell: it records the client.
hold_try() {
    local name=$1 src=$2 dst=$3 port=$4 pid fd
    HOLD_SEQ=$((HOLD_SEQ + 1))
    HOLD_BASE=$E2E_TMP/hold.$HOLD_SEQ
    mkfifo "$HOLD_BASE.in" || e2e_die "mkfifo $HOLD_BASE.in"
    ip netns exec "$SENDER_NS" "$TCPPROBE" hold --src "$src" --timeout-ms "$HOLD_TIMEOUT_MS" \
        --noop-ms "$NOOP_MS" "$dst" "$port" <"$HOLD_BASE.in" >"$HOLD_BASE.out" 2>"$HOLD_BASE.err" &
    pid=$!
    E2E_PIDS+=("$pid")
    # Opening the write end waits for the client to open the read end (its
    # redirection, done before it runs).
    exec {fd}>"$HOLD_BASE.in"
    if ! wait_until 5 hold_settled "$pid" || ! grep -q '^sport ' "$HOLD_BASE.out"; then
        exec {fd}>&-
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    HOLD_FD[$name]=$fd
    HOLD_PID[$name]=$pid
    HOLD_SPORT[$name]=$(awk '/^sport /{print $2}' "$HOLD_BASE.out")
    return 0
}

gone() { ! kill -0 "$1" 2>/dev/null; }

# hold_cmd NAME close|rst|abandon: tells the client, waits for it to exit.
hold_cmd() {
    local name=$1 cmd=$2 fd=${HOLD_FD[$1]} pid=${HOLD_PID[$1]}
    printf '%s\n' "$cmd" >&"$fd"
    exec {fd}>&-
    wait_until 5 gone "$pid" || e2e_fail "hold client $name did not exit after '$cmd'"
    wait "$pid" 2>/dev/null
    unset "HOLD_FD[$name]" "HOLD_PID[$name]"
}

# expect_hold NAME SRC DST PORT: the connection must open (one attempt).
expect_hold() {
    if hold_try "$@"; then
        e2e_pass "$2 -> $(e2e_addr_port "$3" "$4") connects and stays open ($1)"
        return 0
    fi
    e2e_fail "$2 -> $(e2e_addr_port "$3" "$4") ($1) did not connect: $(cat "$HOLD_BASE.err")"
    return 1
}

# ------------------------------------------------------------ observations

LIMIT=198.51.100.0/24

limit_field() { # limit_field CIDR FIELD
    fence list --json | jq -r --arg c "$1" --arg f "$2" '.rules[] | select(.cidr == $c) | .limit[$f]'
}

# conn_count ADDR: the conn_counts value of ADDR's key (IPv4 /32 keys, or an
# IPv6 /64 key given as its 8 leading bytes "32,1,13,184,0,1,0,0"), summed
# over rules; 0 without a key. Read from the kernel's map, not the CLI.
conn_count() {
    local want=$1
    if [[ $want != *,* ]]; then want=${want//./,}; fi
    bpftool -j map dump pinned "$SMTPFENCE_PIN_DIR/conn_counts" |
        jq --arg a "$want" '[.[] | .formatted | select((.key.addr | map(tostring) | join(",")) | startswith($a + ",")) | .value] | add // 0'
}
count_is() { [[ $(conn_count "$1") == "$2" ]]; }

# server_established SRC SPORT: the host's socket for that client is ESTABLISHED.
server_established() {
    [[ -n $(ip netns exec "$HOST_NS" ss -Htn state established "dst $1:$2" 2>/dev/null) ]]
}

# all_zero: every key of conn_counts is at 0 (keys stay until their rule goes).
all_zero() {
    bpftool -j map dump pinned "$SMTPFENCE_PIN_DIR/conn_counts" | jq -e 'all(.[]; .formatted.value == 0)' >/dev/null
}

listener_logged() { grep -qx "$1" "$LISTENER_OUT"; }

# ------------------------------------------------------------ the test

E2E_BANNER="220 mx.e2e.example ESMTP"
start_listener --hold --v6only --idle-close-ms "$IDLE_MS" 25 22
LISTENER_OUT=$E2E_TMP/listener.0.out
start_listener --hold 587 # one dual-stack socket

e2e_log "attach; limit $LIMIT --max-conns 3"
expect_exit 0 "attach $HOST_IF" fence attach "$HOST_IF"
if [[ $E2E_OUT == *"cgroup v2 is not mounted"* ]]; then
    e2e_fail "attach says cgroup v2 is not mounted: --max-conns cannot count (${E2E_OUT//$'\n'/ | })"
    e2e_finish
fi
check_eq "the sock_ops counter is pinned" yes "$([[ -e $SMTPFENCE_PIN_DIR/sockops_link ]] && echo yes || echo no)"
expect_exit 0 "limit $LIMIT --max-conns 3" fence limit "$LIMIT" --max-conns 3 --reason "too many sessions"
check_eq "list: max_conns" 3 "$(limit_field "$LIMIT" max_conns)"
check_eq "list: per source by default" source "$(limit_field "$LIMIT" per)"
check_eq "list: no rate" null "$(limit_field "$LIMIT" rate)"

e2e_log "$SRC_A opens 3 held connections: all connect; the 4th is dropped"
expect_hold a1 "$SRC_A" "$H4" 25
expect_hold a2 "$SRC_A" "$H4" 25
expect_hold a3 "$SRC_A" "$H4" 25
if wait_until 2 count_is "$SRC_A" 3; then
    e2e_pass "conn_counts holds 3 for $SRC_A"
else
    e2e_fail "conn_counts for $SRC_A: expected 3, got $(conn_count "$SRC_A")"
fi
check_eq "the host sees 3 established sessions from $SRC_A" 3 \
    "$(ip netns exec "$HOST_NS" ss -Htn state established "dst $SRC_A" | wc -l)"
dropped_before=$(limit_field "$LIMIT" conns_dropped)
expect_blocked "$SRC_A" "$H4" 25
expect_blocked "$SRC_A" "$H4" 587 # the cap is per source, over all SMTP ports
dropped_after=$(limit_field "$LIMIT" conns_dropped)
check_eq "list: conns_dropped grew by the 2 dropped SYNs ($dropped_before -> $dropped_after)" \
    $((dropped_before + 2)) "$dropped_after"
check_eq "list: rate_dropped stays 0 (no --rate)" 0 "$(limit_field "$LIMIT" rate_dropped)"
expect_connect "$SRC_A" "$H4" 22 # ssh is never counted nor capped

e2e_log "--per source: $SRC_B has its own 3"
expect_hold b1 "$SRC_B" "$H4" 25
expect_hold b2 "$SRC_B" "$H4" 25
expect_hold b3 "$SRC_B" "$H4" 25
expect_blocked "$SRC_B" "$H4" 25
check_eq "conn_counts: $SRC_A still 3" 3 "$(conn_count "$SRC_A")"
check_eq "conn_counts: $SRC_B 3" 3 "$(conn_count "$SRC_B")"
check_eq "list: tracked_keys 2" 2 "$(limit_field "$LIMIT" tracked_keys)"

e2e_log "a normal close (FIN) frees one slot"
hold_cmd a1 close
if wait_until 5 hold_try a4 "$SRC_A" "$H4" 25; then
    e2e_pass "$SRC_A connects again after closing one (FIN)"
else
    e2e_fail "$SRC_A still held out 5 s after closing one of its 3 connections (count $(conn_count "$SRC_A"))"
fi
expect_blocked "$SRC_A" "$H4" 25 # exactly one slot was freed
check_eq "conn_counts: $SRC_A back at 3" 3 "$(conn_count "$SRC_A")"

e2e_log "a reset (RST) frees one slot"
hold_cmd a2 rst
check "the server saw the reset" wait_until 2 listener_logged "peer-reset $SRC_A ${HOLD_SPORT[a2]}"
if wait_until 5 hold_try a5 "$SRC_A" "$H4" 25; then
    e2e_pass "$SRC_A connects again after resetting one (RST)"
else
    e2e_fail "$SRC_A still held out 5 s after resetting one of its 3 connections (count $(conn_count "$SRC_A"))"
fi
expect_blocked "$SRC_A" "$H4" 25
check_eq "conn_counts: $SRC_A back at 3" 3 "$(conn_count "$SRC_A")"

e2e_log "a client that vanishes (no FIN, no RST) holds its slot until the server's idle close (${IDLE_MS} ms)"
sport=${HOLD_SPORT[a3]}
hold_cmd a3 abandon
abandoned_at=$(date +%s%N)
check "the server still has the vanished client's session ESTABLISHED (nothing was sent)" \
    server_established "$SRC_A" "$sport"
expect_blocked "$SRC_A" "$H4" 25
if listener_logged "idle-closed $SRC_A $sport"; then
    e2e_fail "the idle close came before the check above: it proves nothing (raise IDLE_MS)"
else
    e2e_pass "that was before the server's idle close"
fi
check_eq "conn_counts: the vanished client still counts ($SRC_A 3)" 3 "$(conn_count "$SRC_A")"
if wait_until $((IDLE_MS / 1000 + 4)) hold_try a6 "$SRC_A" "$H4" 25; then
    admitted_ms=$((($(date +%s%N) - abandoned_at) / 1000000))
    e2e_pass "$SRC_A connects again ${admitted_ms} ms after its client vanished"
    check "the server had closed the silent session (idle-closed $SRC_A $sport)" \
        listener_logged "idle-closed $SRC_A $sport"
    # The server's idle clock started at the last NOOP, at most NOOP_MS before
    # the abandon.
    if ((admitted_ms >= IDLE_MS - NOOP_MS)); then
        e2e_pass "not before the idle close (${admitted_ms} ms >= $((IDLE_MS - NOOP_MS)) ms)"
    else
        e2e_fail "admitted after ${admitted_ms} ms, before the idle close could have happened ($((IDLE_MS - NOOP_MS)) ms)"
    fi
else
    e2e_fail "$SRC_A still held out $((IDLE_MS / 1000 + 4)) s after its client vanished (count $(conn_count "$SRC_A"); idle close logged: $(listener_logged "idle-closed $SRC_A $sport" && echo yes || echo no))"
fi
expect_blocked "$SRC_A" "$H4" 25
check_eq "conn_counts: $SRC_A back at 3" 3 "$(conn_count "$SRC_A")"
check_eq "conn_counts: $SRC_B untouched at 3" 3 "$(conn_count "$SRC_B")"

e2e_log "IPv6: per source means per /64: $V6_1 and $V6_2 share a key"
expect_exit 0 "limit 2001:db8::/32 --max-conns 2" fence limit 2001:db8::/32 --max-conns 2
check_eq "list: IPv6 key length 64" 64 "$(limit_field 2001:db8::/32 key_prefixlen)"
expect_hold v1 "$V6_1" "$H6" 25
expect_hold v2 "$V6_2" "$H6" 25
expect_blocked "$V6_1" "$H6" 25
expect_blocked "$V6_2" "$H6" 25
check_eq "conn_counts: 2001:db8:1::/64 holds 2" 2 "$(conn_count 32,1,13,184,0,1,0,0)"

e2e_log "a dual-stack listening socket (587): an IPv4 client's session is AF_INET6 ::ffff:$DS_SRC"
expect_exit 0 "limit 203.0.113.0/24 --max-conns 1" fence limit 203.0.113.0/24 --max-conns 1
expect_hold d1 "$DS_SRC" "$H4_B" 587
if wait_until 2 count_is "$DS_SRC" 1; then
    e2e_pass "conn_counts: $DS_SRC's session on the dual-stack socket counts 1"
else
    e2e_fail "conn_counts: $DS_SRC's session on the dual-stack socket is not counted (expected 1, got $(conn_count "$DS_SRC"))"
fi
expect_blocked "$DS_SRC" "$H4_B" 587

e2e_log "no leaked counts: every client closes, every key goes back to 0"
for name in "${!HOLD_PID[@]}"; do hold_cmd "$name" close; done
if wait_until 5 all_zero; then
    e2e_pass "conn_counts: every key is 0 once the clients are gone"
else
    e2e_fail "conn_counts after every client closed: $(bpftool -j map dump pinned "$SMTPFENCE_PIN_DIR/conn_counts" |
        jq -c '[.[] | .formatted | {addr: .key.addr, open: .value}]')"
fi
check_eq "the host has no SMTP session left" 0 \
    "$(ip netns exec "$HOST_NS" ss -Htn state established '( sport = :25 or sport = :587 )' | wc -l)"
expect_hold a7 "$SRC_A" "$H4" 25
expect_hold a8 "$SRC_A" "$H4" 25
expect_hold a9 "$SRC_A" "$H4" 25
expect_blocked "$SRC_A" "$H4" 25
hold_cmd a7 close
hold_cmd a8 close
hold_cmd a9 close
check "conn_counts: $SRC_A back to 0" wait_until 5 count_is "$SRC_A" 0

e2e_log "removing the rules forgets their keys"
expect_exit 0 "remove the limits" fence remove "$LIMIT" 2001:db8::/32 203.0.113.0/24
check_eq "conn_counts is empty" 0 "$(bpftool -j map dump pinned "$SMTPFENCE_PIN_DIR/conn_counts" | jq length)"
expect_connect "$SRC_A" "$H4" 25

e2e_finish
