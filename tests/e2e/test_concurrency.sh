#!/usr/bin/env bash
# Parallel CLI runs serialise on the pin directory's lock: 20 bulk adds and 10
# removes racing each other end with exactly the expected rule set, each rule
# with its own slot (its own reason and counters), and the kernel agreeing.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools bpftool
e2e_setup_topology

check "attach" fence attach "$HOST_IF"

# Ten rules that the parallel removes will take away again.
for i in $(seq 1 10); do
    fence block "198.51.100.$((i * 8))/29" --reason "old-$i" >/dev/null || e2e_fail "seed rule $i"
done

# Each run adds 17 rules (one IPv4, sixteen IPv6), so that the runs overlap in
# time: without the lock, two of them would pick the same free slot.
rules_of_run() {
    local i=$1 j
    echo "203.0.113.$((i * 4))/30"
    for j in $(seq 1 16); do echo "2001:db8:$i:$j::/64"; done
}
pids=()
for i in $(seq 1 20); do
    # shellcheck disable=SC2046
    fence block $(rules_of_run "$i") --reason "run-$i" >"$E2E_TMP/add.$i" 2>&1 &
    pids+=($!)
    if ((i <= 10)); then
        fence remove "198.51.100.$((i * 8))/29" >"$E2E_TMP/rm.$i" 2>&1 &
        pids+=($!)
    fi
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
check_eq "all 30 parallel CLI runs exit 0" 0 "$failed"

# A rule's reason lives in its slot: a shared slot shows another run's reason.
expected=$(for i in $(seq 1 20); do rules_of_run "$i" | sed "s/\$/ run-$i/"; done | sort)
actual=$(fence list --json | jq -r '.rules[] | .cidr + " " + .reason' | sort)
check_eq "exactly the 340 added rules remain, each with its own run's reason" "$expected" "$actual"

kernel=$(bpftool -j map dump pinned "$SMTPFENCE_PIN_DIR/rules_v4" | jq 'length')
check_eq "the kernel's IPv4 trie holds 20 entries" 20 "$kernel"
kernel=$(bpftool -j map dump pinned "$SMTPFENCE_PIN_DIR/rules_v6" | jq 'length')
check_eq "the kernel's IPv6 trie holds 320 entries" 320 "$kernel"


# And the rules work: 203.0.113.8/30 (run 2) covers 203.0.113.10; 198.51.100.8/29 is gone.
start_listener 25
expect_blocked 203.0.113.10 198.51.100.1 25
expect_connect 198.51.100.10 198.51.100.1 25

e2e_finish
