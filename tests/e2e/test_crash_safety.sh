#!/usr/bin/env bash
# Crash safety: a CLI killed with SIGKILL at a random point of a bulk change
# (3,000 rules added or removed in one run) never leaves a broken state file:
# it always parses, holds either all or none of that run's change (the file
# is replaced atomically once the run's changes are made), and `restore`
# brings the kernel to exactly it.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools bpftool
e2e_setup_topology

check "attach" fence attach "$HOST_IF"
check "a rule from before" fence block 203.0.113.0/24 --reason "before the crashes"
state=$(state_file)

batch() { for i in $(seq 0 2999); do printf '2001:db8:%x:%x::/64\n' "$1" "$i"; done; }
# in_file FILE K: rules of batch K in FILE.
in_file() { grep -c "^block 2001:db8:$(printf %x "$1"):" "$2"; }

rounds=8 partial=0
for round in $(seq 1 $rounds); do
    if ((round % 2)); then
        op=block
        mapfile -t prefixes < <(batch "$round")
        args=("${prefixes[@]}" --reason "batch $round")
        window_ms=150
    else
        # Remove the batch the previous round added (whatever of it is there).
        op=remove
        k=$((round - 1))
        mapfile -t prefixes < <(fence list --json | jq -r --arg p "2001:db8:$(printf %x $k):" \
            '.rules[] | select(.cidr | startswith($p)) | .cidr')
        ((${#prefixes[@]})) || continue
        args=("${prefixes[@]}")
        window_ms=250
    fi
    delay_ms=$((RANDOM % window_ms))
    # nsenter execs smtpfence: $! is the CLI itself (a shell function in the
    # background would be a subshell, and killing it would spare the CLI).
    nsenter --net="$NETNS_DIR/$HOST_NS" -- "$SMTPFENCE" "$op" "${args[@]}" >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' "$delay_ms")"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    k=$(((round % 2) ? round : round - 1))
    in_kernel=$(fence list --json | jq --arg p "2001:db8:$(printf %x $k):" '[.rules[] | select(.cidr | startswith($p))] | length')
    ((in_kernel > 0 && in_kernel < 3000)) && partial=$((partial + 1))
    cp "$state" "$E2E_TMP/snapshot"
    n=$(in_file "$k" "$E2E_TMP/snapshot")
    what="round $round: $op killed after $delay_ms ms (exit $rc), $in_kernel of batch $k in the kernel, $n in the file"
    if [[ $n == 0 || $n == 3000 ]]; then
        e2e_pass "$what: the file holds all or none of it"
    else
        e2e_fail "$what: the file holds a partial change"
    fi
    if out=$(fence restore "$E2E_TMP/snapshot" 2>&1); then
        e2e_pass "round $round: the state file parses and restores (${out##*$'\n'})"
    else
        e2e_fail "round $round: restore of the state file failed: ${out//$'\n'/ | }"
    fi
    check "round $round: the kernel now equals the state file" cmp "$E2E_TMP/snapshot" <(fence save)
    check_eq "round $round: the rule from before is intact" "before the crashes" "$(rule_field 203.0.113.0/24 reason)"
done
e2e_log "$partial of $rounds kills left a partial change in the kernel (restore undid it)"
check_eq "no temporary file is left but the one a killed writer may leave" "" \
    "$(find "$SMTPFENCE_STATE_DIR" -name '*.tmp' ! -name ".$(basename "$state").tmp")"

e2e_finish
