#!/usr/bin/env bash
# The smtpfence lab: a self-contained demonstration on one machine.
#
# Builds a mail host and two senders in network namespaces joined by veth
# pairs, then walks through an incident:
#
#   storm  (203.0.113.10-.13) --veth-- mx-storm   [ mail host  ]
#   client (198.51.100.10)    --veth-- mx-clients [ 25 587 22  ]
#
#   1. the mail host listens on 25, 587 and 22 with an SMTP banner;
#   2. smtpfence is attached to both of its interfaces;
#   3. the storm connects freely;
#   4. `smtpfence block 203.0.113.0/24 --reason "notifier storm"`;
#   5. the storm's SMTP connections now fail, while its ssh (22) and the
#      legitimate client's SMTP still work; `list` and `status` are shown;
#   6. `smtpfence remove 203.0.113.0/24`: the storm connects again;
#   7. `smtpfence limit 203.0.113.0/24 --rate 5/s --per rule`: the storm is
#      slowed to the bucket's bound instead of refused.
#
# It touches no real interface and no real smtpfence installation: rules are
# pinned in a private directory, /sys/fs/bpf/smtpfence-lab-PID, and all of it
# (namespaces, veths, pin dir, listener) is removed at exit, also on failure.
# Run as root from anywhere: sudo scripts/lab.sh   (under a minute once built)
# If build/smtpfence is missing it installs the dependencies and builds first.
set -u

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$LAB_ROOT" || exit 1

if [[ $(id -u) -ne 0 ]]; then
    echo "lab.sh needs root (network namespaces, XDP, bpffs): sudo $0" >&2
    exit 1
fi

# ------------------------------------------------------------ build

SMTPFENCE=${SMTPFENCE:-$LAB_ROOT/build/smtpfence}
TCPPROBE=${TCPPROBE:-$LAB_ROOT/build/tests/tcpprobe}
export SMTPFENCE TCPPROBE

need_deps=0
for tool in ip nsenter jq; do command -v "$tool" >/dev/null 2>&1 || need_deps=1; done
if [[ ! -x $SMTPFENCE ]] || ((need_deps)); then
    echo "== installing dependencies (scripts/install-deps.sh)"
    scripts/install-deps.sh || { echo "lab: installing dependencies failed" >&2; exit 1; }
fi
if [[ ! -x $SMTPFENCE ]]; then
    echo "== building smtpfence into build/"
    { cmake -S . -B build && cmake --build build -j2; } || { echo "lab: the build failed" >&2; exit 1; }
fi
if [[ ! -x $TCPPROBE ]]; then
    echo "== building tcpprobe (the lab's TCP client and listener)"
    if ! { [[ -f build/CMakeCache.txt ]] || cmake -S . -B build; } ||
        ! cmake --build build --target tcpprobe -j2; then
        echo "lab: building tcpprobe failed" >&2
        exit 1
    fi
fi

# ------------------------------------------------------------ lab plumbing

# shellcheck source=SCRIPTDIR/../tests/e2e/lib.sh
source "$LAB_ROOT/tests/e2e/lib.sh"
e2e_require_tools

export SMTPFENCE_PIN_DIR=/sys/fs/bpf/smtpfence-lab-$E2E_ID
MX_NS=sflab-mx-$E2E_ID
STORM_NS=sflab-storm-$E2E_ID
CLIENT_NS=sflab-client-$E2E_ID
# shellcheck disable=SC2034 # read by lib.sh's fence, start_listener
HOST_NS=$MX_NS # what lib.sh's fence/start_listener act on
MX_STORM_IF=mx-storm    # interface names live inside the namespaces
MX_CLIENT_IF=mx-clients
MX_STORM=203.0.113.1
MX_CLIENT=198.51.100.1
STORM_ADDRS=(203.0.113.10 203.0.113.11 203.0.113.12 203.0.113.13)
CLIENT=198.51.100.10
STORM_ATTEMPTS=5          # per storm address and round: 20 connections a round
E2E_PROBE_TIMEOUT_MS=500  # a local veth answers in well under a millisecond

if [[ -t 1 ]]; then
    B=$'\e[1m' CMD=$'\e[36m' OFF=$'\e[0m'
else
    B='' CMD='' OFF=''
fi
STEP=0
step() {
    STEP=$((STEP + 1))
    printf '\n%s%d. %s%s\n' "$B" "$STEP" "$*" "$OFF"
}
note() { printf '   %s\n' "$*"; }

# shown CMD...: prints "# smtpfence ARGS" and runs smtpfence on the mail host,
# its output indented. Returns smtpfence's exit code.
shown() {
    local arg words=()
    for arg in "$@"; do
        if [[ $arg =~ [^A-Za-z0-9_./:,=@+-] ]]; then words+=("\"$arg\""); else words+=("$arg"); fi
    done
    printf '   %s# smtpfence %s%s\n' "$CMD" "${words[*]}" "$OFF"
    local out rc
    out=$(fence "$@" 2>&1)
    rc=$?
    [[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/     /'
    return "$rc"
}

# The summary: one row per check.
ROWS=()
LAB_OK=0
LAB_BAD=0
record() { # record WHAT EXPECTED GOT PASSED(0|1)
    if (($4)); then
        LAB_OK=$((LAB_OK + 1))
        ROWS+=("$1|$2|$3|ok")
    else
        LAB_BAD=$((LAB_BAD + 1))
        ROWS+=("$1|$2|$3|UNEXPECTED")
        printf '   %s!! unexpected: %s: expected %s, got %s%s\n' "$B" "$1" "$2" "$3" "$OFF"
    fi
}

# storm PORT: every storm address tries PORT STORM_ATTEMPTS times, all at once;
# prints a line per address and sets STORM_OK to the connections that worked.
STORM_OK=0
storm() {
    local port=$1 a i=0 pids=() line ok
    for a in "${STORM_ADDRS[@]}"; do
        count_from "$STORM_NS" "$a" "$MX_STORM" "$port" "$STORM_ATTEMPTS" >"$E2E_TMP/storm.$i" 2>&1 &
        pids+=($!)
        i=$((i + 1))
    done
    wait "${pids[@]}"
    STORM_OK=0
    i=0
    for a in "${STORM_ADDRS[@]}"; do
        line=$(cat "$E2E_TMP/storm.$i")
        note "$a -> $MX_STORM:$port  $line"
        ok=${line#ok=}
        ok=${ok%% *}
        [[ $ok =~ ^[0-9]+$ ]] && STORM_OK=$((STORM_OK + ok))
        i=$((i + 1))
    done
}

# single NS SRC DST PORT: one connection, narrated; returns 0 if it connected.
single() {
    local out rc
    out=$(probe_from "$@" 2>&1)
    rc=$?
    note "$2 -> $3:$4  ${out//$'\n'/  }"
    return "$rc"
}

TOTAL=$((${#STORM_ADDRS[@]} * STORM_ATTEMPTS))
started=$SECONDS

# ------------------------------------------------------------ the lab

step "Building the lab: a mail host, a storm and a legitimate client in network namespaces"
e2e_begin
e2e_ns_create "$MX_NS"
e2e_ns_create "$STORM_NS"
e2e_ns_create "$CLIENT_NS"
e2e_link "$MX_NS" "$MX_STORM_IF" "$STORM_NS" eth0
e2e_link "$MX_NS" "$MX_CLIENT_IF" "$CLIENT_NS" eth0
e2e_addr "$MX_NS" "$MX_STORM_IF" "$MX_STORM/24"
e2e_addr "$MX_NS" "$MX_CLIENT_IF" "$MX_CLIENT/24"
e2e_addr "$STORM_NS" eth0 "${STORM_ADDRS[@]/%//24}"
e2e_addr "$CLIENT_NS" eth0 "$CLIENT/24"
E2E_BANNER="220 mx.lab.example ESMTP ready"
start_listener 25 587 22
note "storm  ($STORM_NS)  ${STORM_ADDRS[*]} (/24)"
note "       --veth-- mail host $MX_STORM_IF $MX_STORM/24"
note "client ($CLIENT_NS) $CLIENT/24"
note "       --veth-- mail host $MX_CLIENT_IF $MX_CLIENT/24"
note "the mail host ($MX_NS) listens on 25, 587 and 22: \"$E2E_BANNER\""
note "smtpfence runs in the mail host's namespace; its pin dir is $SMTPFENCE_PIN_DIR"

step "Attaching smtpfence to both of the mail host's interfaces"
shown attach "$MX_STORM_IF" "$MX_CLIENT_IF"
rc=$?
record "attach $MX_STORM_IF $MX_CLIENT_IF" "exit 0" "exit $rc" $((rc == 0))

step "The storm hits port 25: ${#STORM_ADDRS[@]} sources, $STORM_ATTEMPTS connections each, nothing blocked yet"
storm 25
record "storm -> :25, before the block" "$TOTAL/$TOTAL connect" "$STORM_OK/$TOTAL" $((STORM_OK == TOTAL))

step "Blocking the storm's network"
shown block 203.0.113.0/24 --reason "notifier storm"
rc=$?
record "block 203.0.113.0/24" "exit 0" "exit $rc" $((rc == 0))

step "The storm again: its SMTP connections are dropped (each waits ${E2E_PROBE_TIMEOUT_MS} ms, then gives up)"
storm 25
record "storm -> :25, blocked" "0/$TOTAL connect" "$STORM_OK/$TOTAL" $((STORM_OK == 0))
single "$STORM_NS" "${STORM_ADDRS[0]}" "$MX_STORM" 587
rc=$?
record "storm -> :587 (submission), blocked" "no connection" "$( ((rc == 0)) && echo connected || echo 'no connection')" $((rc != 0))

step "What still works: the storm's ssh, and the legitimate client's SMTP"
single "$STORM_NS" "${STORM_ADDRS[0]}" "$MX_STORM" 22
rc=$?
record "storm -> :22 (ssh), never filtered" "connects" "$( ((rc == 0)) && echo connects || echo fails)" $((rc == 0))
single "$CLIENT_NS" "$CLIENT" "$MX_CLIENT" 25
rc=$?
record "client $CLIENT -> :25" "connects" "$( ((rc == 0)) && echo connects || echo fails)" $((rc == 0))
single "$CLIENT_NS" "$CLIENT" "$MX_CLIENT" 587
rc=$?
record "client $CLIENT -> :587" "connects" "$( ((rc == 0)) && echo connects || echo fails)" $((rc == 0))

step "What is in force: smtpfence list and smtpfence status"
shown list
shown status
dropped=$(fence list --json 2>/dev/null | jq -r '.rules[] | select(.cidr == "203.0.113.0/24") | .dropped')
[[ $dropped =~ ^[0-9]+$ ]] || dropped=0
record "rule 203.0.113.0/24 dropped counter" ">= $((TOTAL + 1))" "$dropped" $((dropped >= TOTAL + 1))

step "The storm is over: removing the block"
shown remove 203.0.113.0/24
rc=$?
record "remove 203.0.113.0/24" "exit 0" "exit $rc" $((rc == 0))
storm 25
record "storm -> :25, after remove" "$TOTAL/$TOTAL connect" "$STORM_OK/$TOTAL" $((STORM_OK == TOTAL))

step "Slowing instead of refusing: the storm's network as an upstream unloading a backlog"
note "a rate cap on new connections, one bucket for the whole /24: 5/s, 5 at once"
shown limit 203.0.113.0/24 --rate 5/s --burst 5 --per rule --reason "upstream backlog"
rc=$?
record "limit 203.0.113.0/24 --rate 5/s" "exit 0" "exit $rc" $((rc == 0))
limit_started=$(date +%s%N)
storm 25
elapsed_ms=$((($(date +%s%N) - limit_started) / 1000000))
# GCRA bound: the burst, plus one connection per 200 ms that passed.
max_ok=$((5 + elapsed_ms / 200 + 1))
note "$STORM_OK of $TOTAL connected in ${elapsed_ms} ms: the bucket allows at most 5 + 5/s x elapsed = $max_ok"
record "storm -> :25, limited to 5/s" "5..$max_ok connect" "$STORM_OK/$TOTAL" $((STORM_OK >= 5 && STORM_OK <= max_ok))
shown list
shown remove 203.0.113.0/24

step "Detaching (the lab's namespaces go next)"
shown detach "$MX_STORM_IF" "$MX_CLIENT_IF"
rc=$?
record "detach $MX_STORM_IF $MX_CLIENT_IF" "exit 0" "exit $rc" $((rc == 0))

# ------------------------------------------------------------ summary

step "Summary ($((SECONDS - started)) s)"
printf '   %-38s %-16s %-16s %s\n' check expected got result
printf '   %-38s %-16s %-16s %s\n' ----- -------- --- ------
for row in "${ROWS[@]}"; do
    IFS='|' read -r what expected got result <<<"$row"
    printf '   %-38s %-16s %-16s %s\n' "$what" "$expected" "$got" "$result"
done
echo
echo "lab: $LAB_OK passed, $LAB_BAD failed"
((LAB_BAD == 0))
