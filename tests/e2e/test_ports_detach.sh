#!/usr/bin/env bash
# End-to-end: the SMTP port set, detach/re-attach, generic XDP, privileges.
#
#   `ports 25,2525` makes 587 free and 2525 guarded; `ports` prints the list;
#   detach lets blocked sources in again while the rules stay stored;
#   re-attach enforces them again; `attach --mode generic` works and status
#   says so; bad port lists exit 2 and change nothing; a non-root user gets
#   exit 1 with a message about root/CAP_BPF and changes nothing.
#
# Needs root. Run: sudo bash tests/e2e/test_ports_detach.sh
set -u
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_require_root
e2e_require_tools
e2e_setup_topology

HOST=203.0.113.1
H6=2001:db8:1::1
LEGIT=198.51.100.10
STORM=203.0.113.10
V6_STORM=2001:db8:1::10

start_listener 22 25 465 587 2525

e2e_log "attach, block 203.0.113.0/24 and 2001:db8:1::/64"
expect_exit 0 "attach $HOST_IF" fence attach "$HOST_IF"
expect_exit 0 "block 203.0.113.0/24" fence block 203.0.113.0/24 --reason "storm"
expect_exit 0 "block 2001:db8:1::/64" fence block 2001:db8:1::/64
expect_blocked "$STORM" "$HOST" 25
expect_blocked "$STORM" "$HOST" 587
expect_connect "$STORM" "$HOST" 2525   # not an SMTP port by default
expect_connect "$STORM" "$HOST" 22

e2e_log "ports 25,2525"
expect_exit 0 "ports 25,2525" fence ports 25,2525
check_eq "ports prints the new list" "25,2525" "$(fence ports 2>/dev/null)"
check_eq "status shows the new ports" "[25,2525]" "$(status_field '.ports | tostring')"
expect_connect "$STORM" "$HOST" 587
expect_connect "$STORM" "$HOST" 465
expect_blocked "$STORM" "$HOST" 2525
expect_blocked "$STORM" "$HOST" 25
expect_blocked "$V6_STORM" "$H6" 2525
expect_connect "$V6_STORM" "$H6" 587
expect_connect "$LEGIT" "$HOST" 2525
expect_connect "$STORM" "$HOST" 22

e2e_log "bad port lists exit 2 and change nothing"
expect_exit 2 "ports 0" fence ports 0
expect_exit 2 "ports 70000" fence ports 70000
expect_exit 2 "ports smtp" fence ports smtp
expect_exit 2 "ports 25,,587" fence ports 25,,587
expect_exit 2 "ports 25,-1" fence ports 25,-1
check_eq "ports unchanged after bad lists" "25,2525" "$(fence ports 2>/dev/null)"
expect_blocked "$STORM" "$HOST" 2525

e2e_log "back to the default ports"
expect_exit 0 "ports 25,465,587" fence ports 25,465,587
check_eq "ports prints the default list again" "25,465,587" "$(fence ports 2>/dev/null)"
expect_blocked "$STORM" "$HOST" 587
expect_connect "$STORM" "$HOST" 2525

e2e_log "detach restores traffic; the rules stay"
rules_before=$(fence list --json | jq -c '[.rules[] | {cidr, action, reason}] | sort_by(.cidr)')
expect_exit 0 "detach $HOST_IF" fence detach "$HOST_IF"
check_eq "status: no interface after detach" "0" "$(status_field '.interfaces | length')"
check_eq "the kernel shows no XDP program after detach" "none" "$(xdp_kernel_mode)"
expect_connect "$STORM" "$HOST" 25
expect_connect "$STORM" "$HOST" 587
expect_connect "$V6_STORM" "$H6" 25
check_eq "rules stay stored after detach" "$rules_before" \
    "$(fence list --json | jq -c '[.rules[] | {cidr, action, reason}] | sort_by(.cidr)')"

e2e_log "re-attach enforces the stored rules again"
expect_exit 0 "attach $HOST_IF again" fence attach "$HOST_IF"
expect_blocked "$STORM" "$HOST" 25
expect_blocked "$V6_STORM" "$H6" 25
expect_connect "$LEGIT" "$HOST" 25

e2e_log "attach --mode generic"
expect_exit 0 "attach $HOST_IF --mode generic" fence attach "$HOST_IF" --mode generic
check_eq "status: mode generic" "generic" "$(status_field '.interfaces[0].mode')"
check_eq "status: still one interface" "1" "$(status_field '.interfaces | length')"
check_eq "the kernel shows generic XDP only" "xdpgeneric" "$(xdp_kernel_mode)"
expect_blocked "$STORM" "$HOST" 25
expect_blocked "$V6_STORM" "$H6" 465
expect_connect "$STORM" "$HOST" 22
expect_connect "$LEGIT" "$HOST" 25
expect_exit 0 "detach the generic attachment" fence detach "$HOST_IF"
check_eq "status: no interface after detaching generic" "0" "$(status_field '.interfaces | length')"
check_eq "the kernel shows no XDP program after detaching generic" "none" "$(xdp_kernel_mode)"
expect_connect "$STORM" "$HOST" 25
expect_exit 0 "attach $HOST_IF --mode generic from scratch" fence attach "$HOST_IF" --mode generic
check_eq "status: mode generic from scratch" "generic" "$(status_field '.interfaces[0].mode')"
expect_blocked "$STORM" "$HOST" 25

e2e_log "non-root gets exit 1 and a message about root/CAP_BPF"
# The binary must be executable by nobody: copy it where it is when the
# checkout is not world-readable.
unpriv_bin=$SMTPFENCE
if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$SMTPFENCE"; then
    chmod 755 "$E2E_TMP"
    cp "$SMTPFENCE" "$E2E_TMP/smtpfence"
    chmod 755 "$E2E_TMP/smtpfence"
    unpriv_bin=$E2E_TMP/smtpfence
fi
# shellcheck disable=SC2317 # called through expect_exit
unpriv() {
    nsenter --net="$NETNS_DIR/$HOST_NS" -- \
        setpriv --reuid=65534 --regid=65534 --clear-groups -- "$unpriv_bin" "$@"
}
snapshot=$(rules_json)
for cmd in "list" "status" "block 198.51.100.0/24" "remove 203.0.113.0/24" "ports 25" \
    "detach $HOST_IF" "attach $HOST_IF"; do
    # shellcheck disable=SC2086 # the words of $cmd are the arguments
    if expect_exit 1 "non-root: $cmd" unpriv $cmd; then
        check_match "non-root: '$cmd' says it needs root or CAP_BPF" '([Rr]oot|CAP_BPF)' "$E2E_OUT"
    fi
done
check_eq "non-root changed no rule" "$snapshot" "$(rules_json)"
check_eq "non-root changed no port" "25,465,587" "$(fence ports 2>/dev/null)"
check_eq "non-root did not detach" "$HOST_IF" "$(status_field '.interfaces[].name')"
expect_blocked "$STORM" "$HOST" 25

e2e_finish
