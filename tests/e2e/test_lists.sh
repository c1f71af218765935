#!/usr/bin/env bash
# End-to-end: imported lists on a real veth. A DROP-format file (comments,
# IPv4 and IPv6 mixed) imported with `import FILE --as NAME` blocks its
# prefixes' SMTP but never ssh; an allow rule inside a listed prefix wins; a
# bad line exits 2 naming file:line and changes nothing, --skip-invalid loads
# the rest; an empty file is refused; a re-import replaces the list whole and
# says what changed; `lists` shows source, hash and counters; the list
# survives a reboot (pin dir gone, `boot` restores it); `unimport` lets
# everyone in again.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools jq
e2e_setup_topology
start_listener 22 25

H4=198.51.100.1
H6=2001:db8:1::1
check "attach" fence attach "$HOST_IF"

list=$E2E_TMP/drop.txt
cat >"$list" <<'LIST'
; Spamhaus-style DROP list, trimmed
203.0.113.0/25 ; SBL1
# a comment line

2001:db8:1::10/128 ; SBL2
203.0.113.128/25
LIST

e2e_log "a bad line changes nothing"
printf '203.0.113.0/24\n203.0.113.300/32\n' >"$E2E_TMP/bad.txt"
expect_exit 2 "a list with a bad line is refused" fence import "$E2E_TMP/bad.txt" --as drop
check_match "the error names file:line" "bad.txt:2" "$E2E_OUT"
check_eq "no list was made" "[]" "$(fence lists --json | jq -c .)"
expect_connect 203.0.113.10 "$H4" 25
: >"$E2E_TMP/empty.txt"
expect_exit 2 "an empty list is refused (a failed download must not unblock)" \
    fence import "$E2E_TMP/empty.txt" --as drop

e2e_log "import"
expect_exit 0 "import drop.txt" fence import "$list" --as drop --reason "provider DROP"
check_match "the summary counts what was added" "imported drop \(block\): 3 prefixes \(2 IPv4, 1 IPv6\); added 3, removed 0, unchanged 0, skipped 0" "$E2E_OUT"
expect_blocked 203.0.113.10 "$H4" 25
expect_blocked 203.0.113.20 "$H4" 25
expect_blocked 2001:db8:1::10 "$H6" 25
expect_connect 203.0.113.10 "$H4" 22
expect_connect 198.51.100.10 "$H4" 25
expect_connect 2001:db8:1::20 "$H6" 25

e2e_log "events name the list and the entry that dropped"
expect_exit 0 "events" fence events
check_match "an IPv4 event names the /25 of list drop" \
    "first drop: 203\.0\.113\.10 -> port 25 by block 203\.0\.113\.0/25 \(list drop\)" "$E2E_OUT"
check_match "an IPv6 event names the /128 of list drop" \
    "first drop: 2001:db8:1::10 -> port 25 by block 2001:db8:1::10/128 \(list drop\)" "$E2E_OUT"

e2e_log "a rule inside a listed prefix wins (longest prefix)"
check "allow 203.0.113.20" fence allow 203.0.113.20 --reason "their MX"
expect_connect 203.0.113.20 "$H4" 25
expect_blocked 203.0.113.10 "$H4" 25

e2e_log "lists"
json=$(fence lists --json)
check_eq "lists: name, action, prefixes" "drop block 2 1" \
    "$(jq -r '.[0] | "\(.name) \(.action) \(.prefixes_v4) \(.prefixes_v6)"' <<<"$json")"
check_eq "lists: the source file and its sha256" "$list $(sha256sum "$list" | cut -d' ' -f1)" \
    "$(jq -r '.[0] | "\(.source) \(.source_sha256)"' <<<"$json")"
dropped=$(jq -r '.[0].dropped' <<<"$json")
check_match "lists: the list's counters moved (dropped $dropped >= 4)" '^([4-9]|[1-9][0-9]+)$' "$dropped"
check_match "lists prints a table" "^drop +block +3 " "$(fence lists | sed -n 2p)"
check_match "status counts the lists" "lists: +1 \(3 prefixes\)" "$(fence status)"
metrics=$(fence metrics)
check_match "metrics count per list" 'smtpfence_list_dropped_total\{list="drop",action="block"\} [1-9]' "$metrics"
check_eq "metrics: one series per list, never per prefix" 1 "$(grep -c '^smtpfence_list_prefixes{' <<<"$metrics")"
check_match "list --list pages through a list" "^203.0.113.128/25$" "$(fence list --list drop --offset 1 --count 1)"
check_match "the import is audited" "import .*list drop block from $list" "$(cat "$(audit_log)")"

e2e_log "a re-import replaces the list whole"
printf '2001:db8:1::/64\n' >"$list"
expect_exit 0 "import the new version" fence import "$list" --as drop
check_match "the summary says what changed" "updated drop .*added 1, removed 3, unchanged 0" "$E2E_OUT"
expect_connect 203.0.113.10 "$H4" 25
expect_blocked 2001:db8:1::20 "$H6" 25

e2e_log "--skip-invalid loads the rest"
printf '203.0.113.0/25\nnot-a-prefix\n' >"$E2E_TMP/some-bad.txt"
expect_exit 0 "import --skip-invalid" fence import "$E2E_TMP/some-bad.txt" --as partial --skip-invalid
check_match "the skipped line is named" "some-bad.txt:2" "$E2E_OUT"
expect_blocked 203.0.113.10 "$H4" 25

e2e_log "after a reboot (the pin dir is gone)"
config=$E2E_TMP/smtpfence.conf
cat >"$config" <<CONF
interfaces = $HOST_IF
pin_dir = $SMTPFENCE_PIN_DIR
state_dir = $SMTPFENCE_STATE_DIR
CONF
check "detach" fence detach "$HOST_IF"
rm -rf "$SMTPFENCE_PIN_DIR"
check_match "boot restores the lists" "restored 2 lists" "$(fence boot --config "$config" 2>&1)"
expect_blocked 2001:db8:1::20 "$H6" 25
expect_blocked 203.0.113.10 "$H4" 25
expect_connect 203.0.113.20 "$H4" 25

e2e_log "unimport"
expect_exit 0 "unimport drop" fence unimport drop
expect_exit 0 "unimport partial" fence unimport partial
expect_connect 203.0.113.10 "$H4" 25
expect_connect 2001:db8:1::20 "$H6" 25
expect_exit 1 "unimport an unknown list" fence unimport drop
check_eq "no list left" "[]" "$(fence lists --json | jq -c .)"
e2e_finish
