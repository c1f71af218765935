# shellcheck shell=bash
# Helpers sourced by every end-to-end test, on top of tests/harness.sh (the
# run's namespaces, processes, pins and cleanup, shared with the mail lab).
#
# The topology: two network namespaces joined by a veth pair, named with this
# shell's PID so that runs never collide:
#
#   sfsend-PID  [sfs-PID] <--veth--> [sfh-PID]  sfhost-PID
#   198.51.100.10, .20                           198.51.100.1/24
#   203.0.113.10, .20                            203.0.113.1/24
#   2001:db8:1::10, ::20                         2001:db8:1::1/64
#
# Only documentation ranges are used, and traffic only flows between these
# namespaces. Everything created here is removed by harness_cleanup, on EXIT,
# INT, TERM and HUP.
#
# Environment: SMTPFENCE (the binary; default build/userspace/smtpfence) and
# TCPPROBE (default build/tests/tcpprobe), set by ctest. SMTPFENCE_PIN_DIR is
# exported to a per-run directory, /sys/fs/bpf/smtpfence-e2e-PID, so tests
# never touch the real /sys/fs/bpf/smtpfence.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../harness.sh
source "$E2E_DIR/../harness.sh"
# shellcheck disable=SC2034 # read by the tests
E2E_ROOT=$HARNESS_ROOT

E2E_ID=$HARNESS_ID
HOST_NS=sfhost-$E2E_ID
SENDER_NS=sfsend-$E2E_ID
HOST_IF=sfh-$E2E_ID
SENDER_IF=sfs-$E2E_ID

# The connect timeout of probes. A dropped SYN shows as a timeout; the first
# SYN retransmission comes after 1 s (the initial RTO), so a probe that gives
# up well before that sends exactly one SYN: tests count SYNs exactly. (At
# 1000 ms the retransmission sometimes won the race.)
E2E_PROBE_TIMEOUT_MS=${E2E_PROBE_TIMEOUT_MS:-700}
E2E_BANNER=${E2E_BANNER:-220 lab.example ESMTP tcpprobe}

# The tests' names for the harness's state and helpers.
declare -n E2E_PIDS=HARNESS_PIDS E2E_TMP=HARNESS_TMP
e2e_log() { harness_log "$@"; }
e2e_die() { harness_die "$@"; }
e2e_pass() { harness_pass "$@"; }
e2e_fail() { harness_fail "$@"; }
e2e_finish() { harness_finish; }
wait_until() { harness_wait_until "$@"; }

# ------------------------------------------------------------ preconditions

e2e_require_root() { harness_require_root "end-to-end tests"; }

# e2e_require_tools [TOOL...]: the tools every test needs, and TOOLs.
# shellcheck disable=SC2120 # the extra tools are optional
e2e_require_tools() { harness_require_tools ip nsenter setpriv jq mountpoint "$@"; }

# ------------------------------------------------------------ topology

# e2e_link NS_A IF_A NS_B IF_B: a veth pair with one end in each namespace, up.
e2e_link() {
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" ||
        e2e_die "cannot create veth pair $2/$4"
    ip -n "$1" link set "$2" up
    ip -n "$3" link set "$4" up
}

# e2e_addr NS IF ADDR/LEN...: IPv6 addresses skip duplicate address detection
# so that they are usable at once.
e2e_addr() {
    local ns=$1 dev=$2 a
    shift 2
    for a in "$@"; do
        if [[ $a == *:* ]]; then
            ip -n "$ns" addr add "$a" dev "$dev" nodad || e2e_die "cannot add $a to $ns/$dev"
        else
            ip -n "$ns" addr add "$a" dev "$dev" || e2e_die "cannot add $a to $ns/$dev"
        fi
    done
}

e2e_setup_topology() {
    harness_begin e2e
    harness_ns_create "$HOST_NS"
    harness_ns_create "$SENDER_NS"
    e2e_link "$HOST_NS" "$HOST_IF" "$SENDER_NS" "$SENDER_IF"
    e2e_addr "$HOST_NS" "$HOST_IF" 198.51.100.1/24 203.0.113.1/24 2001:db8:1::1/64
    e2e_addr "$SENDER_NS" "$SENDER_IF" \
        198.51.100.10/24 198.51.100.20/24 203.0.113.10/24 203.0.113.20/24 \
        2001:db8:1::10/64 2001:db8:1::20/64
    e2e_log "topology: $SENDER_NS/$SENDER_IF <-> $HOST_NS/$HOST_IF, pin dir $SMTPFENCE_PIN_DIR"
}

# ------------------------------------------------------------ running things

# fence ARGS...: smtpfence inside the host namespace. nsenter (not `ip netns
# exec`, which remounts /sys and so hides /sys/fs/bpf) keeps the bpffs.
fence() {
    nsenter --net="$NETNS_DIR/$HOST_NS" -- "$SMTPFENCE" "$@"
}

host_exec() { ip netns exec "$HOST_NS" "$@"; }
sender_exec() { ip netns exec "$SENDER_NS" "$@"; }

# start_listener PORT...: tcpprobe listening in the host namespace with the
# SMTP banner; returns once it printed "ready" (5 s deadline). The listener
# dies with this shell even when the shell is killed with SIGKILL.
start_listener() {
    local out="$E2E_TMP/listener.${#E2E_PIDS[@]}"
    ip netns exec "$HOST_NS" "$TCPPROBE" listen --die-with-parent --banner "$E2E_BANNER" "$@" \
        >"$out.out" 2>"$out.err" &
    local pid=$!
    E2E_PIDS+=("$pid")
    if ! wait_until 5 grep -qx ready "$out.out"; then
        kill -0 "$pid" 2>/dev/null || e2e_die "listener on ports $* died: $(cat "$out.err")"
        e2e_die "listener on ports $* not ready within 5 s"
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        e2e_die "listener on ports $* exited: $(cat "$out.err")"
    fi
}

# start_serve ADDR:PORT: `smtpfence serve` in the host namespace (so it reads
# this run's pins), dying with this shell; sets SERVE_PID and SERVE_OUT and
# returns once it says it is serving (5 s deadline).
start_serve() {
    SERVE_OUT=$E2E_TMP/serve.out
    nsenter --net="$NETNS_DIR/$HOST_NS" -- setpriv --pdeathsig TERM -- "$SMTPFENCE" serve --listen "$1" \
        >"$SERVE_OUT" 2>&1 &
    SERVE_PID=$!
    E2E_PIDS+=("$SERVE_PID")
    wait_until 5 grep -q '^serving http://' "$SERVE_OUT" || e2e_die "serve did not start: $(cat "$SERVE_OUT")"
}

# stop_serve: SIGTERM to the server of start_serve; checks that it exits 0
# within 3 s and printed nothing but its "serving" line.
stop_serve() {
    kill -TERM "$SERVE_PID"
    if wait_until 3 bash -c "! kill -0 $SERVE_PID 2>/dev/null"; then
        wait "$SERVE_PID"
        check_eq "serve exits 0 on SIGTERM" 0 "$?"
    else
        e2e_fail "serve still runs 3 s after SIGTERM"
    fi
    check_eq "serve printed no errors" "" "$(grep -v '^serving http://' "$SERVE_OUT")"
}

# probe SRC DST PORT: one connection attempt from the sender namespace, bound
# to SRC. Its stdout/stderr pass through; returns tcpprobe's exit code.
probe() { probe_from "$SENDER_NS" "$@"; }

# probe_from NS SRC DST PORT: the same from any namespace.
probe_from() {
    ip netns exec "$1" "$TCPPROBE" connect --src "$2" --timeout-ms "$E2E_PROBE_TIMEOUT_MS" "$3" "$4"
}

# count_from NS SRC DST PORT ATTEMPTS: prints "ok=X fail=Y".
count_from() {
    ip netns exec "$1" "$TCPPROBE" count --src "$2" --timeout-ms "$E2E_PROBE_TIMEOUT_MS" \
        --attempts "$5" "$3" "$4"
}

# ------------------------------------------------------------ assertions

e2e_addr_port() {
    if [[ $1 == *:* ]]; then printf '[%s]:%s' "$1" "$2"; else printf '%s:%s' "$1" "$2"; fi
}

# expect_connect SRC DST PORT: the connection must succeed.
expect_connect() {
    local what
    what="$1 -> $(e2e_addr_port "$2" "$3") connects"
    local out rc
    out=$(probe "$1" "$2" "$3" 2>&1)
    rc=$?
    if ((rc == 0)); then
        e2e_pass "$what"
        return 0
    fi
    e2e_fail "$what: tcpprobe exit $rc: ${out//$'\n'/ | }"
    return 1
}

# expect_blocked SRC DST PORT: the SYN must be dropped, which the client sees
# as a timeout. A refusal (RST) means the SYN reached the host's stack, so it
# is a failure; so is a local error (exit 3, e.g. SRC not configured).
expect_blocked() {
    local what
    what="$1 -> $(e2e_addr_port "$2" "$3") is blocked"
    local out rc
    out=$(probe "$1" "$2" "$3" 2>&1)
    rc=$?
    if ((rc == 1)) && [[ $out == "timed out"* ]]; then
        e2e_pass "$what"
        return 0
    fi
    if ((rc == 0)); then
        e2e_fail "$what: it connected: ${out//$'\n'/ | }"
    else
        e2e_fail "$what: expected a timeout, tcpprobe exit $rc: ${out//$'\n'/ | }"
    fi
    return 1
}

# check DESC CMD...: CMD must exit 0.
check() {
    local desc=$1
    shift
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if ((rc == 0)); then
        e2e_pass "$desc"
        return 0
    fi
    e2e_fail "$desc: '$*' exited $rc: ${out//$'\n'/ | }"
    return 1
}

# expect_exit CODE DESC CMD...: CMD must exit with CODE. Its combined output
# is left in E2E_OUT for further checks.
E2E_OUT=
expect_exit() {
    local want=$1 desc=$2
    shift 2
    local rc
    E2E_OUT=$("$@" 2>&1)
    rc=$?
    if ((rc == want)); then
        e2e_pass "$desc (exit $rc)"
        return 0
    fi
    e2e_fail "$desc: '$*' exited $rc, expected $want: ${E2E_OUT//$'\n'/ | }"
    return 1
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
    if [[ $2 == "$3" ]]; then
        e2e_pass "$1"
        return 0
    fi
    e2e_fail "$1: expected '$2', got '$3'"
    return 1
}

# check_match DESC REGEX TEXT
check_match() {
    if [[ $3 =~ $2 ]]; then
        e2e_pass "$1"
        return 0
    fi
    e2e_fail "$1: '${3//$'\n'/ | }' does not match /$2/"
    return 1
}

# ------------------------------------------------------------ smtpfence JSON

# rules_json: `list --json`, compact and sorted, for comparisons.
rules_json() { fence list --json | jq -cS '.rules | sort_by(.cidr)'; }

# rule_field CIDR FIELD: one field of one rule from `list --json` ("" if the
# rule does not exist).
rule_field() {
    fence list --json | jq -r --arg c "$1" --arg f "$2" '.rules[] | select(.cidr == $c) | .[$f]'
}

# status_field JQ_FILTER: from `status --json`.
status_field() { fence status --json | jq -r "$1"; }

# xdp_kernel_mode [IF]: what the kernel says is attached to the host's
# interface: "xdp" (native), "xdpgeneric", "xdpoffload", "xdpmulti" or "none".
# An independent check of what `status` claims.
# shellcheck disable=SC2120 # IF is optional
xdp_kernel_mode() {
    local first
    first=$(ip -n "$HOST_NS" -o link show dev "${1:-$HOST_IF}" 2>/dev/null | head -1)
    if [[ $first =~ \ (xdp|xdpgeneric|xdpdrv|xdpoffload|xdpmulti)\  ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        echo none
    fi
}

# ------------------------------------------------------------ state file

# state_file: where this run's instance saves its rules.
state_file() { echo "$SMTPFENCE_STATE_DIR/$(basename "$SMTPFENCE_PIN_DIR").rules"; }

# audit_log: this run's audit log (under the state directory).
audit_log() { echo "$SMTPFENCE_STATE_DIR/audit.log"; }

# trie_entries v4|v6: entries in the kernel's rule trie, read with bpftool
# (not with smtpfence, whose every run reaps expired rules).
trie_entries() {
    bpftool -j map dump pinned "$SMTPFENCE_PIN_DIR/rules_$1" | jq 'length'
}
