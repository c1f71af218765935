#!/usr/bin/env bash
# What a rule says about itself and how careful adding one is: dry runs count
# what they would drop and drop nothing (the next broader live rule decides),
# and go live in place with their counters; every rule records who, from
# where, when and why, and every change is in the audit log; very broad rules
# need --force; a rule covering this host or an allow rule warns.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools bpftool
e2e_setup_topology
start_listener 25

check "attach" fence attach "$HOST_IF"

e2e_log "dry run"
check "block 203.0.113.0/24 --dry-run" fence block 203.0.113.0/24 --dry-run --reason "would it help?"
expect_connect 203.0.113.10 198.51.100.1 25
expect_connect 203.0.113.20 198.51.100.1 25
check_eq "the dry run counted 2 would-drops and dropped nothing" "2 0" \
    "$(fence list --json | jq -r '.rules[0] | "\(.would_drop) \(.dropped)"')"
check_match "list marks it and shows the would-drop count" \
    'block \(dry run\) +203\.0\.113\.0/24.*'$'\n'' +↳ dry run: would have dropped 2' "$(fence list)"
check_match "status shows it among the warnings" '1 rule is a dry run' "$(fence status)"
check "a live block around it" fence block 203.0.0.0/16 --reason "the live one"
expect_blocked 203.0.113.10 198.51.100.1 25
check_eq "inside a live block, the dry run steps aside: the /16 dropped it, the /24 counted a would-drop" "3 1" \
    "$(fence list --json | jq -r '[(.rules[] | select(.cidr == "203.0.113.0/24") | .would_drop),
        (.rules[] | select(.cidr == "203.0.0.0/16") | .dropped)] | join(" ")')"
check "remove the /16" fence remove 203.0.0.0/16
rule_id=$(rule_field 203.0.113.0/24 rule_id)
check_match "enforce turns it live" 'live now \(it would have dropped 3 so far\)' "$(fence enforce 203.0.113.0/24)"
expect_blocked 203.0.113.10 198.51.100.1 25
check_eq "in place: same rule, counters kept, provenance kept" "$rule_id false 3 1 would it help?" \
    "$(fence list --json | jq -r '.rules[0] | "\(.rule_id) \(.dry_run) \(.would_drop) \(.dropped) \(.reason)"')"
check "limit --dry-run" fence limit 198.51.100.0/24 --rate 1/min --burst 1 --dry-run
expect_connect 198.51.100.10 198.51.100.1 25
expect_connect 198.51.100.10 198.51.100.1 25
check "the same command without --dry-run makes it live" fence limit 198.51.100.0/24 --rate 1/min --burst 1
check_eq "live, with the dry run's counters" "false 1" \
    "$(fence list --json | jq -r '.rules[] | select(.cidr == "198.51.100.0/24") | "\(.dry_run) \(.would_drop)"')"
expect_exit 2 "allow --dry-run is refused" fence allow 198.51.100.20 --dry-run
check_match "because an allow drops nothing" "drops nothing" "$E2E_OUT"
expect_exit 2 "--dry-run with --max-conns is refused" fence limit 198.51.100.0/25 --max-conns 3 --dry-run
check_match "and says why" "live rules only" "$E2E_OUT"

e2e_log "provenance and audit"
check "block under sudo, over ssh" env SUDO_USER=alice SSH_CONNECTION="198.51.100.5 51000 198.51.100.1 22" \
    nsenter --net="$NETNS_DIR/$HOST_NS" -- "$SMTPFENCE" block 2001:db8:bad::/48 --reason "v6 storm"
check_eq "the rule records who, from where and why" "alice|$(hostname) (ssh from 198.51.100.5)|v6 storm" \
    "$(fence list --json | jq -r '.rules[] | select(.cidr == "2001:db8:bad::/48") | [.created_by, .origin, .reason] | join("|")')"
created=$(rule_field 2001:db8:bad::/48 created_unix)
if (($(date +%s) - created <= 5)); then e2e_pass "and when"; else e2e_fail "created_unix $created is not now"; fi
check_match "list shows who and from where" "alice +$(hostname) \(ssh from 198\.51\.100\.5\) +v6 storm" "$(fence list)"
check "remove it" fence remove 2001:db8:bad::/48
log=$(cat "$(audit_log)")
for event in add enforce update remove; do
    check_match "the audit log has a '$event' line" "(^|"$'\n'")[0-9T:-]+Z $event by [^ ]+ on " "$log"
done
check_match "the audit line says who changed what" \
    "add by alice on $(hostname) \(ssh from 198\.51\.100\.5\): block 2001:db8:bad::/48 --reason \"v6 storm\"" "$log"

e2e_log "safety rails"
expect_exit 2 "block 0.0.0.0/0 needs --force" fence block 0.0.0.0/0
check_match "and says so" "covers every IPv4 sender.*--force" "$E2E_OUT"
expect_exit 2 "block 10.0.0.0/7 needs --force" fence block 10.0.0.0/7
expect_exit 2 "limit 2001:db8::/31 needs --force" fence limit 2001:db8::/31 --rate 5/s
check "block 10.0.0.0/8 does not" fence block 10.0.0.0/8
check "allow 0.0.0.0/0 does not" fence allow 0.0.0.0/0
check "block 0.0.0.0/1 --force" fence block 0.0.0.0/1 --force
check "limit ::/0 --force" fence limit ::/0 --rate 100/s --force
check "an allow inside" fence allow 198.51.100.0/30 --reason "our relay"
expect_exit 0 "a block covering this host's address and an allow rule proceeds" fence block 198.51.100.0/25
check_match "warning about this host's address" "warning: .*covers 198\.51\.100\.1, an address of this host \($HOST_IF\)" \
    "$E2E_OUT"
check_match "warning about the allow rule" "warning: .*covers the allow rule 198\.51\.100\.0/30 \(our relay\)" "$E2E_OUT"
check_eq "and the rule is in force" block "$(rule_field 198.51.100.0/25 action)"

e2e_log "fleet rules (made by the agent) are marked, and a local remove needs --force"
fleet_set=$E2E_TMP/fleet.rules
printf '%s\n' 'block 203.0.113.64/26 --reason "storm" --by alice --origin "fleet role=mx, admin1" --created 2026-12-04T10:00:00Z' \
    >"$fleet_set"
check "restore a rule set holding a fleet rule" fence restore "$fleet_set"
check_eq "list --json marks it fleet" fleet "$(rule_field 203.0.113.64/26 set)"
expect_exit 2 "remove of a fleet rule without --force" fence remove 203.0.113.64/26
check_match "says how to remove it for the fleet" "fleet rule .*smtpfence fleet remove 203.0.113.64/26" "$E2E_OUT"
check_eq "still in force" block "$(rule_field 203.0.113.64/26 action)"
check "remove --force" fence remove 203.0.113.64/26 --force

e2e_finish
