#!/usr/bin/env bash
# The rule set on disk: every change rewrites the state file (it always equals
# `save`); save -> flush -> restore gives a byte-identical save; restore is
# exact (provenance, dry run, deadlines, limits, ports) and idempotent; a bad
# file changes nothing (exit 2); a saved rule past its deadline is not
# restored (audited as expired); 20 parallel CLI runs end with exactly the
# expected set in the kernel and in the state file.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools bpftool
e2e_setup_topology
start_listener 25

check "attach" fence attach "$HOST_IF"
state=$(state_file)

# state_matches_save: the state file holds exactly what `save` prints now.
state_matches_save() { cmp -s "$state" <(fence save); }

e2e_log "every change is saved"
check "block" fence block 203.0.113.0/24 --reason 'notifier "storm" \ 2' --for 2h
check "allow" fence allow 203.0.113.25 --reason "their MX"
check "limit, dry run" fence limit 198.51.100.0/22 --rate 30/min --burst 3 --per /24 --dry-run --reason backlog
check "limit" fence limit 2001:db8:bad::/48 --rate 10/min --max-conns 2 --per /56
check "ports" fence ports 25,587,2525
check "the state file equals save" state_matches_save
check_match "save reads like the commands" \
    '^ports 25,587,2525$' "$(grep '^ports' "$state")"
check_match "a rule line carries its deadline, reason, who, where and when" \
    '^block 203\.0\.113\.0/24 --until [0-9T:-]+Z --reason "notifier \\"storm\\" \\\\ 2" --by [^ ]+ --origin [^ ]+ --created [0-9T:-]+Z$' \
    "$(grep '^block' "$state")"
check "remove" fence remove 203.0.113.25
check "the state file follows a remove" state_matches_save

e2e_log "save -> flush -> restore -> save is byte-identical"
fence save >"$E2E_TMP/saved.rules"
before_json=$(fence list --json | jq -cS '[.rules[] | del(.matched, .dropped, .would_drop, .rule_id, .expires_in_s, .limit.tracked_keys, .limit.allowed, .limit.rate_dropped, .limit.conns_dropped)]')
expect_exit 2 "flush without --yes refuses" fence flush
check_eq "and removes nothing" 3 "$(fence list --json | jq '.rules | length')"
check "flush --yes" fence flush --yes
check "ports back to the default" fence ports 25,465,587
check_eq "the state file follows the flush: no rules" 0 "$(grep -c '^\(block\|allow\|limit\)' "$state")"
check "restore the saved file" fence restore "$E2E_TMP/saved.rules"
check "save after restore is byte-identical" cmp "$E2E_TMP/saved.rules" <(fence save)
after_json=$(fence list --json | jq -cS '[.rules[] | del(.matched, .dropped, .would_drop, .rule_id, .expires_in_s, .limit.tracked_keys, .limit.allowed, .limit.rate_dropped, .limit.conns_dropped)]')
check_eq "every field of every rule is back (provenance, dry run, deadline, limit)" "$before_json" "$after_json"
check_eq "the ports are back" "25,587,2525" "$(fence ports)"
expect_blocked 203.0.113.10 198.51.100.1 2525

e2e_log "restore is idempotent and makes the kernel equal to the file"
check_match "restoring again changes nothing" \
    'restored: 0 added, 0 updated, 0 removed, 3 unchanged, 0 expired; ports unchanged' \
    "$(fence restore "$E2E_TMP/saved.rules")"
check "an extra rule" fence block 198.51.100.77 --reason extra
check "a changed rule" fence limit 2001:db8:bad::/48 --rate 20/min --per /56
check_match "restore removes the extra rule and updates the changed one" \
    'restored: 0 added, 1 updated, 1 removed, 2 unchanged' "$(fence restore "$E2E_TMP/saved.rules")"
check "save is identical again" cmp "$E2E_TMP/saved.rules" <(fence save)

e2e_log "a bad file changes nothing"
cp "$E2E_TMP/saved.rules" "$E2E_TMP/bad.rules"
echo 'block 198.51.100.0/24 --reason ok' >>"$E2E_TMP/bad.rules"
echo 'block 203.0.113.7/24' >>"$E2E_TMP/bad.rules"
expect_exit 2 "restore of a file with a bad line exits 2" fence restore "$E2E_TMP/bad.rules"
check_match "the error names the file and line" "bad.rules:[0-9]+: .*203\.0\.113\.0/24" "$E2E_OUT"
check "nothing changed" cmp "$E2E_TMP/saved.rules" <(fence save)

e2e_log "a saved rule past its deadline is not restored"
{
    cat "$E2E_TMP/saved.rules"
    echo 'block 198.51.100.99/32 --until 2020-01-01T00:00:00Z --reason gone --by alice --origin mx1 --created 2019-12-31T00:00:00Z'
} >"$E2E_TMP/expired.rules"
check_match "restore skips it and says so" 'expired, not restored: block 198\.51\.100\.99/32' \
    "$(fence restore "$E2E_TMP/expired.rules")"
check_eq "it is not in the kernel" "" "$(rule_field 198.51.100.99/32 cidr)"
check_match "the audit log records it as expired" 'expire by .*block 198\.51\.100\.99/32' "$(cat "$(audit_log)")"

e2e_log "20 parallel CLI runs: the kernel and the state file end with exactly the expected set"
for i in $(seq 1 10); do
    fence block "198.51.100.$((i * 8))/29" --reason "old-$i" >/dev/null || e2e_fail "seed rule $i"
done
pids=()
for i in $(seq 1 20); do
    if ((i <= 10)); then
        fence remove "198.51.100.$((i * 8))/29" >"$E2E_TMP/rm.$i" 2>&1 &
    else
        fence block "2001:db8:$i::/48" "2001:db8:$i:1::/64" --reason "run-$i" >"$E2E_TMP/add.$i" 2>&1 &
    fi
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
check_eq "all 20 parallel runs exit 0" 0 "$failed"
expected=$({
    echo 2001:db8:bad::/48
    echo 198.51.100.0/22
    echo 203.0.113.0/24
    for i in $(seq 11 20); do printf '2001:db8:%s::/48\n2001:db8:%s:1::/64\n' "$i" "$i"; done
} | sort)
check_eq "the kernel holds exactly the expected rules" "$expected" \
    "$(fence list --json | jq -r '.rules[].cidr' | sort)"
check_eq "the state file holds exactly the same rules" "$expected" \
    "$(grep -E '^(block|allow|limit) ' "$state" | awk '{print $2}' | sort)"
check "the state file equals save" state_matches_save
check_eq "no temporary file is left behind" "" "$(find "$SMTPFENCE_STATE_DIR" -name '*.tmp')"

e2e_finish
