#!/usr/bin/env bash
# End-to-end: blocks and allows on a real veth, IPv4 and IPv6.
#
#   before attach everything connects; after `attach`, `block 203.0.113.0/24`
#   drops new SMTP connections (25, 465, 587) from it but never ssh (22) nor
#   other sources; an allow /32 inside the block wins; the same for IPv6;
#   rules keep working after the CLI exited; per-rule and global counters
#   move; `remove` lets everyone in again; bad input exits 2 and changes
#   nothing.
#
# Needs root. Run: sudo bash tests/e2e/test_block_allow.sh
# (SMTPFENCE / TCPPROBE point at the binaries; defaults build/...)
set -u
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_require_root
e2e_require_tools
e2e_setup_topology

H4_A=198.51.100.1   # the mail host, "legit" subnet
H4_B=203.0.113.1    # the mail host, "storm" subnet
H6=2001:db8:1::1
LEGIT=198.51.100.10
STORM1=203.0.113.10
STORM2=203.0.113.20
V6_1=2001:db8:1::10
V6_2=2001:db8:1::20

start_listener 22 25 465 587

e2e_log "before attach: everything connects"
expect_connect "$LEGIT" "$H4_A" 25
expect_connect "$STORM1" "$H4_B" 25
expect_connect "$STORM2" "$H4_B" 587
expect_connect "$V6_1" "$H6" 25

e2e_log "attach $HOST_IF"
expect_exit 0 "attach $HOST_IF" fence attach "$HOST_IF"
check_eq "status lists $HOST_IF" "$HOST_IF" "$(status_field '.interfaces[].name')"
check_match "status shows a program id" '^[1-9][0-9]*$' "$(status_field '.interfaces[0].program_id')"
check_eq "status shows the interface's ifindex" \
    "$(ip -n "$HOST_NS" -j link show dev "$HOST_IF" | jq '.[0].ifindex')" "$(status_field '.interfaces[0].ifindex')"
mode=$(status_field '.interfaces[0].mode')
check_match "status shows the XDP mode (native or generic)" '^(native|generic)$' "$mode"
kmode=$(xdp_kernel_mode)
if [[ ($mode == native && $kmode == xdp) || ($mode == generic && $kmode == xdpgeneric) ]]; then
    e2e_pass "the kernel agrees: $kmode on $HOST_IF"
else
    e2e_fail "status says mode '$mode' but the kernel shows '$kmode' on $HOST_IF"
fi
check_eq "status shows the default ports" "[25,465,587]" "$(status_field '.ports | tostring')"
check_eq "ports prints the default list" "25,465,587" "$(fence ports 2>/dev/null)"
expect_connect "$STORM1" "$H4_B" 25
expect_connect "$V6_1" "$H6" 25

e2e_log "block 203.0.113.0/24"
expect_exit 0 "block 203.0.113.0/24" fence block 203.0.113.0/24 --reason "notifier storm"
for port in 25 587 465; do
    expect_blocked "$STORM1" "$H4_B" "$port"
    expect_blocked "$STORM2" "$H4_B" "$port"
done
# The block is about the source: the host's other address is no way around it.
expect_blocked "$STORM1" "$H4_A" 25
# ssh is never affected, other sources are not affected.
expect_connect "$STORM1" "$H4_B" 22
expect_connect "$STORM2" "$H4_B" 22
expect_connect "$LEGIT" "$H4_A" 25
expect_connect "$LEGIT" "$H4_B" 587
expect_connect "$V6_1" "$H6" 25

check_eq "list: rule action" "block" "$(rule_field 203.0.113.0/24 action)"
check_eq "list: rule reason" "notifier storm" "$(rule_field 203.0.113.0/24 reason)"
check_eq "list: created_by" "root" "$(rule_field 203.0.113.0/24 created_by)"
created=$(rule_field 203.0.113.0/24 created_unix)
now=$(date +%s)
if [[ $created =~ ^[0-9]+$ ]] && ((created <= now && created > now - 300)); then
    e2e_pass "list: created_unix is recent ($created)"
else
    e2e_fail "list: created_unix '$created' is not within the last 5 minutes of $now"
fi
# 8 blocked SMTP attempts from the /24 so far (6 + 1 to the other address;
# the sender may retransmit, so at least).
matched=$(rule_field 203.0.113.0/24 matched)
dropped=$(rule_field 203.0.113.0/24 dropped)
check_match "list: per-rule matched counts the attempts (>= 7, got $matched)" '^([7-9]|[1-9][0-9]+)$' "$matched"
check_match "list: per-rule dropped counts the drops (>= 7, got $dropped)" '^([7-9]|[1-9][0-9]+)$' "$dropped"
before=$dropped
expect_blocked "$STORM1" "$H4_B" 25
after=$(rule_field 203.0.113.0/24 dropped)
if [[ $after =~ ^[0-9]+$ ]] && ((after > before)); then
    e2e_pass "list: dropped grows with another blocked attempt ($before -> $after)"
else
    e2e_fail "list: dropped did not grow after a blocked attempt ($before -> $after)"
fi
g_dropped=$(status_field '.counters.dropped')
g_syn=$(status_field '.counters.smtp_syn')
if [[ $g_dropped =~ ^[0-9]+$ && $g_syn =~ ^[0-9]+$ ]] && ((g_dropped >= 8 && g_syn >= g_dropped)); then
    e2e_pass "status: global counters (dropped=$g_dropped, smtp_syn=$g_syn)"
else
    e2e_fail "status: global counters dropped='$g_dropped' smtp_syn='$g_syn', expected dropped >= 8 and smtp_syn >= dropped"
fi
check_match "list (text) shows the rule" '203\.0\.113\.0/24' "$(fence list 2>&1)"
# --pin-dir names the instance as well as SMTPFENCE_PIN_DIR does, and wins.
pin_dir=$SMTPFENCE_PIN_DIR
check_eq "--pin-dir DIR wins over SMTPFENCE_PIN_DIR" "$(rules_json)" \
    "$(SMTPFENCE_PIN_DIR=/sys/fs/bpf/smtpfence-e2e-none-$E2E_ID fence --pin-dir "$pin_dir" list --json |
        jq -cS '.rules | sort_by(.cidr)')"
expect_exit 1 "an instance that does not exist is a runtime failure" \
    fence --pin-dir "/sys/fs/bpf/smtpfence-e2e-none-$E2E_ID" list

e2e_log "allow 203.0.113.20/32 inside the block"
expect_exit 0 "allow 203.0.113.20/32" fence allow 203.0.113.20/32 --reason "our relay"
expect_connect "$STORM2" "$H4_B" 25
expect_connect "$STORM2" "$H4_B" 587
expect_blocked "$STORM1" "$H4_B" 25
check_eq "list: allow rule action" "allow" "$(rule_field 203.0.113.20/32 action)"
check_eq "list: allow rule never drops" "0" "$(rule_field 203.0.113.20/32 dropped)"
check_match "list: allow rule matched its connections" '^[1-9][0-9]*$' "$(rule_field 203.0.113.20/32 matched)"

e2e_log "IPv6: block 2001:db8:1::/64, allow 2001:db8:1::20/128"
expect_exit 0 "block 2001:db8:1::/64" fence block 2001:db8:1::/64
expect_exit 0 "allow 2001:db8:1::20/128" fence allow 2001:db8:1::20/128
expect_blocked "$V6_1" "$H6" 25
expect_blocked "$V6_1" "$H6" 587
expect_connect "$V6_2" "$H6" 25
expect_connect "$V6_1" "$H6" 22
expect_connect "$LEGIT" "$H4_A" 25
check_match "list: v6 block counted its drop" '^[1-9][0-9]*$' "$(rule_field 2001:db8:1::/64 dropped)"

e2e_log "rules outlive the CLI: the first block, added many commands ago, still holds"
# Every command above was its own process that exited; nothing of smtpfence
# runs now. The block from the start must still be in force.
expect_blocked "$STORM1" "$H4_B" 25
expect_blocked "$STORM1" "$H4_B" 465

e2e_log "bad input exits 2 and changes nothing"
snapshot=$(rules_json)
ports_before=$(fence ports 2>/dev/null)
expect_exit 2 "block 203.0.113.0/33" fence block 203.0.113.0/33
expect_exit 2 "block 300.1.2.3" fence block 300.1.2.3
expect_exit 2 "block 2001:db8::/129" fence block 2001:db8::/129
expect_exit 2 "block 203.0.113.7/24 (host bits set)" fence block 203.0.113.7/24
expect_exit 2 "block with one bad CIDR among good ones" fence block 198.51.100.0/24 300.1.2.3
expect_exit 2 "allow not-an-address" fence allow not-an-address
expect_exit 2 "block without a CIDR" fence block
expect_exit 2 "remove 203.0.113.0/33" fence remove 203.0.113.0/33
expect_exit 2 "attach nosuchif0" fence attach nosuchif0
expect_exit 2 "attach --mode bogus" fence attach "$HOST_IF" --mode bogus
expect_exit 2 "unknown subcommand" fence frobnicate
check_eq "list --json unchanged after bad input" "$snapshot" "$(rules_json)"
check_eq "ports unchanged after bad input" "$ports_before" "$(fence ports 2>/dev/null)"
check_eq "still attached after bad input" "$HOST_IF" "$(status_field '.interfaces[].name')"
expect_blocked "$STORM1" "$H4_B" 25
expect_connect "$LEGIT" "$H4_A" 25

e2e_log "remove the blocks: everyone connects"
expect_exit 0 "remove 203.0.113.0/24" fence remove 203.0.113.0/24
expect_connect "$STORM1" "$H4_B" 25
expect_connect "$STORM1" "$H4_B" 465
expect_connect "$STORM2" "$H4_B" 25
expect_exit 0 "unblock 2001:db8:1::/64 (alias)" fence unblock 2001:db8:1::/64
expect_connect "$V6_1" "$H6" 25
expect_connect "$V6_2" "$H6" 587
check_eq "list: the removed rules are gone" "" "$(rule_field 203.0.113.0/24 action)$(rule_field 2001:db8:1::/64 action)"
expect_exit 1 "remove a rule that does not exist" fence remove 203.0.113.0/24

e2e_finish
