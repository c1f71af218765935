#!/usr/bin/env bash
# End-to-end: what `limit --messages` sets up around the XDP program.
#
#   attach puts the egress filter on the interface; the first paced rule
#   installs smtpfence's HTB root (5346:) with one class per paced rule at
#   its packet rate (64 for a rule paced per source) (status warns when someone removes it, attach puts it
#   back); list, save and the state file carry --messages; a paced
#   source and every other source still connect (25 and ssh); changing the
#   pace changes the class, removing the last paced rule removes the root
#   (the kernel's default qdisc comes back); restore re-creates it; a
#   foreign root qdisc makes `--messages` exit 2 and change nothing; maps
#   made before pacing existed refuse --messages until `attach` upgrades them;
#   verbs run from the root namespace act on the host namespace's interfaces;
#   detach removes the egress filter and the HTB root. Bad options exit 2.
#
# Needs root. Run: sudo bash tests/e2e/test_pace.sh
set -u
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_require_root
e2e_require_tools tc
e2e_setup_topology

HOST=198.51.100.1
PACED=198.51.100.10
OTHER=203.0.113.10

start_listener 22 25

root_qdisc() { host_exec tc -j qdisc show dev "$HOST_IF" root | jq -r '.[0] | "\(.kind) \(.handle)"'; }
# "5346:1 400Kbit,...": smtpfence's classes and their rates (tc prints HTB
# classes as text, even with -j).
classes() { host_exec tc class show dev "$HOST_IF" | awk '$3 ~ /^5346:/ {printf "%s%s %s", n++ ? "," : "", $3, $8}'; }
egress_filter() { host_exec tc filter show dev "$HOST_IF" egress | grep -c 'smtpfence_pace'; }

e2e_log "attach: the egress filter, no HTB yet"
expect_exit 0 "attach $HOST_IF" fence attach "$HOST_IF"
check_eq "egress filter attached" 1 "$(egress_filter)"
check_eq "root qdisc untouched (no paced rule)" "noqueue 0:" "$(root_qdisc)"

e2e_log "limit --messages 5/s"
expect_exit 0 "limit $PACED/32 --messages 5/s" fence limit "$PACED/32" --messages 5/s --reason "upstream backlog"
check_eq "smtpfence's HTB root" "htb 5346:" "$(root_qdisc)"
# 5/s x 10000 bytes per packet = 400 kbit/s
check_eq "one class at 5 packets/s" "5346:1 400Kbit" "$(classes)"
check_eq "list --json: messages" "5/s" "$(fence list --json | jq -r '.rules[0].limit.messages')"
check_match "list: the pace line" "messages 5/s per source; messages paced 0" "$(fence list)"
check_match "state file: --messages" "limit $PACED/32 --messages 5/s --per source --reason" "$(cat "$(state_file)")"
expect_connect "$PACED" "$HOST" 25
expect_connect "$PACED" "$HOST" 22
expect_connect "$OTHER" "$HOST" 25
check_eq "the paced source's SYN-ACK went through the class" 1 "$(fence list --json | jq -r '.rules[0].limit.messages_paced')"

e2e_log "someone removes the HTB root: status says so, attach puts it back"
host_exec tc qdisc del dev "$HOST_IF" root
check_match "status warns" "does not pace on $HOST_IF \\(root qdisc noqueue 0:\\)" "$(status_field '.warnings | join(" ")')"
expect_exit 0 "attach again" fence attach "$HOST_IF"
check_eq "the class is back" "5346:1 400Kbit" "$(classes)"

e2e_log "change the pace in place, add a rule paced per source"
expect_exit 0 "limit $PACED/32 --messages 2/s" fence limit "$PACED/32" --messages 2/s
expect_exit 0 "limit 203.0.113.0/24 --messages 30/min --rate 10/s" fence limit 203.0.113.0/24 --messages 30/min --rate 10/s
check_eq "paced per source: 64 classes more" 65 "$(classes | tr ',' '\n' | grep -c .)"
check_match "the first at 30/min" "5346:1 160Kbit,5346:2 40Kbit," "$(classes)"
check_eq "--per source (the default)" "source" "$(rule_field 203.0.113.0/24 limit | jq -r .per)"

e2e_log "remove the paced rules: the root goes"
expect_exit 0 "remove 203.0.113.0/24" fence remove 203.0.113.0/24
check_eq "one class left" "5346:1 160Kbit" "$(classes)"
saved=$E2E_TMP/paced.rules
expect_exit 0 "save" fence save "$saved"
expect_exit 0 "remove $PACED/32" fence remove "$PACED/32"
check_eq "default root qdisc again" "noqueue 0:" "$(root_qdisc)"
expect_exit 0 "restore" fence restore "$saved"
check_eq "restore re-creates the class" "5346:1 160Kbit" "$(classes)"
expect_exit 0 "flush" fence flush --yes
check_eq "flush removes the root" "noqueue 0:" "$(root_qdisc)"

e2e_log "someone else's root qdisc: refused, nothing changed"
host_exec tc qdisc add dev "$HOST_IF" root handle 1: htb default 1
expect_exit 2 "limit --messages over a foreign qdisc" fence limit "$PACED/32" --messages 5/s
check_match "the error names the qdisc" "root qdisc is htb 1:, set up by someone else" "$E2E_OUT"
check_eq "no rule added" 0 "$(fence list --json | jq '.rules | length')"
check_eq "their qdisc untouched" "htb 1:" "$(root_qdisc)"
host_exec tc qdisc del dev "$HOST_IF" root

e2e_log "bad options"
expect_exit 2 "--messages 1/min" fence limit "$PACED/32" --messages 1/min
check_match "slowest pace named" "slowest pace, 6/min" "$E2E_OUT"
expect_exit 2 "--messages with --dry-run" fence limit "$PACED/32" --messages 5/s --dry-run

e2e_log "maps from before pacing: refused until attach upgrades them"
rm "$SMTPFENCE_PIN_DIR/rule_pace" "$SMTPFENCE_PIN_DIR/pace_flows"
expect_exit 2 "limit --messages on old maps" fence limit "$PACED/32" --messages 5/s
check_match "the error says attach" "predates --messages: run .smtpfence attach" "$E2E_OUT"
expect_exit 0 "block still works on old maps" fence block "$OTHER/32"
expect_exit 0 "attach again (upgrade)" fence attach "$HOST_IF"
expect_exit 0 "limit --messages after the upgrade" fence limit "$PACED/32" --messages 5/s
check_eq "the block survived the upgrade" block "$(rule_field "$OTHER/32" action)"

e2e_log "from the root namespace (no nsenter): the verbs act on the fence's namespace"
# An admin's shell is rarely in the namespace the fence was attached in (a
# container's, a lab's). The maps are global; the interfaces, their qdiscs
# and the classes are the attached namespace's, which the CLI enters.
expect_exit 0 "limit --messages from the root namespace" "$SMTPFENCE" limit 203.0.113.0/24 --messages 30/min
check_match "its class is made on $HOST_IF in the host namespace" "5346:2 40Kbit" "$(classes)"
check_eq "status from the root namespace: $HOST_IF paced, no warning" "$HOST_IF 0" \
    "$("$SMTPFENCE" status --json | jq -r '"\(.interfaces[0].name) \(.warnings | length)"')"
expect_exit 0 "remove from the root namespace" "$SMTPFENCE" remove 203.0.113.0/24
check_eq "its classes are gone again" "5346:1 400Kbit" "$(classes)"

e2e_log "detach (from the root namespace) removes the egress filter and the HTB root"
expect_exit 0 "detach from the root namespace" "$SMTPFENCE" detach "$HOST_IF"
check_eq "egress filter gone" 0 "$(egress_filter)"
check_eq "default root qdisc" "noqueue 0:" "$(root_qdisc)"
expect_connect "$OTHER" "$HOST" 25

e2e_finish
