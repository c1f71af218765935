#!/usr/bin/env bash
# Rules with a deadline end in the kernel: with no smtpfence process running,
# a block for 2 s lets the sender in after its deadline, and an expiring allow
# inside a permanent block falls back to the block. Any later change (or
# `reap`) reaps the expired rules (audited), and `list` shows the time left.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools bpftool
e2e_setup_topology
start_listener 25

check "attach" fence attach "$HOST_IF"

# no_smtpfence_runs: not one smtpfence process of this instance is alive:
# the CLI exits after each command, so from here on only the kernel acts.
# (Processes are told apart by their pin dir, so that parallel test runs of
# the same binary do not count.)
no_smtpfence_runs() {
    local pid
    for pid in $(pgrep -f "^$SMTPFENCE( |$)"); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SMTPFENCE_PIN_DIR=$SMTPFENCE_PIN_DIR" && return 1
    done
    return 0
}
connects() { probe 203.0.113.10 198.51.100.1 25 >/dev/null 2>&1; }
times_out() {
    local out
    out=$(probe 203.0.113.10 198.51.100.1 25 2>&1)
    (($? == 1)) && [[ $out == "timed out"* ]]
}

e2e_log "a block for 2 s, then nothing but the kernel"
check "block 203.0.113.0/24 --for 2s" fence block 203.0.113.0/24 --for 2s --reason "short storm"
expect_blocked 203.0.113.10 198.51.100.1 25
left=$(fence list --json | jq -r '.rules[] | select(.cidr == "203.0.113.0/24") | .expires_in_s')
check_match "list --json shows the time left (0 to 2 s)" '^[0-2]$' "$left"
check_match "list shows the time left in words" 'in [0-2]s' "$(fence list)"
check "no smtpfence process runs" no_smtpfence_runs
deadline_start=$SECONDS
if wait_until 6 connects; then
    e2e_pass "after the deadline 203.0.113.10 connects again ($((SECONDS - deadline_start)) s), with no smtpfence running"
else
    e2e_fail "203.0.113.10 still cannot connect 6 s after a 2 s block"
fi
check_eq "the expired rule is still in the kernel's trie (the kernel let it lapse, nobody removed it)" 1 \
    "$(trie_entries v4)"
expect_connect 198.51.100.10 198.51.100.1 25

e2e_log "any CLI run reaps it, and audits the expiry"
check_match "reap removes the expired rule" 'reaped 1 expired rule' "$(fence reap 2>&1)"
check_eq "the kernel's trie is empty" 0 "$(trie_entries v4)"
check_match "the audit log records add and expire" \
    'add by .*block 203\.0\.113\.0/24 --until .* --reason "short storm".*'$'\n''.*expire by .*block 203\.0\.113\.0/24' \
    "$(cat "$(audit_log)")"
check_eq "the state file no longer holds it" 0 "$(grep -c '^block' "$(state_file)")"

e2e_log "an expiring allow inside a permanent block falls back to the block"
check "permanent block" fence block 203.0.113.0/24 --reason "storm"
check "allow 203.0.113.10 for 2 s" fence allow 203.0.113.10 --for 2s --reason "let their MX retry"
expect_connect 203.0.113.10 198.51.100.1 25
expect_blocked 203.0.113.20 198.51.100.1 25
check "no smtpfence process runs" no_smtpfence_runs
if wait_until 6 times_out; then
    e2e_pass "after the allow's deadline 203.0.113.10 is blocked by the broader block"
else
    e2e_fail "203.0.113.10 still connects 6 s after a 2 s allow inside a block"
fi
check_eq "both rules are still in the kernel (the allow stepped aside by itself)" 2 "$(trie_entries v4)"
expect_blocked 203.0.113.10 198.51.100.1 25
rules=$(fence list --json | jq -r '[.rules[] | .action + " " + .cidr + " " + (.expires_in_s | tostring)] | join(",")')
check_eq "list (a read, which reaps nothing) shows the allow expired" "block 203.0.113.0/24 null,allow 203.0.113.10/32 0" \
    "$rules"
check "reap" fence reap
rules=$(fence list --json | jq -r '[.rules[] | .action + " " + .cidr] | join(",")')
check_eq "reap removed the allow; the block stays" "block 203.0.113.0/24" "$rules"
check_eq "the blocked attempts are counted on the block" 1 \
    "$(fence list --json | jq '.rules[0].dropped >= 2 | if . then 1 else 0 end')"

e2e_log "--until and bad deadlines"
until_utc=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:00Z)
check "block --until an absolute time" fence block 198.51.100.0/24 --until "$until_utc"
check_eq "the deadline is kept as given" "$until_utc" "$(rule_field 198.51.100.0/24 expires)"
expect_exit 2 "--until in the past is refused" fence block 198.51.100.0/25 --until 2020-01-01T00:00
expect_exit 2 "--for and --until together are refused" fence block 198.51.100.0/25 --for 1h --until "$until_utc"
expect_exit 2 "--for 0s is refused" fence block 198.51.100.0/25 --for 0s
check_eq "the refused rules were not added" "" "$(rule_field 198.51.100.0/25 cidr)"

e2e_finish
