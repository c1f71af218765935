#!/usr/bin/env bash
# The boot path: scripts/install.sh stages the binary, the units and the
# example config under a DESTDIR; `systemd-analyze verify` accepts the units;
# the unit's own ExecStart line (with a temporary config) attaches to the
# configured interface, sets the configured ports and restores the saved
# rules (skipping expired ones), also after a simulated reboot (pin dir gone),
# and running it again changes nothing. The reaper unit's ExecStart works too.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools bpftool systemd-analyze
e2e_setup_topology
start_listener 25 2525

root=$E2E_TMP/root
e2e_log "install into a DESTDIR"
check "scripts/install.sh with DESTDIR" env DESTDIR="$root" BUILD_DIR="$(dirname "$SMTPFENCE")" \
    "$E2E_ROOT/scripts/install.sh"
for f in usr/local/sbin/smtpfence etc/systemd/system/smtpfence.service etc/systemd/system/smtpfence-agent.service \
    etc/systemd/system/smtpfence-reap.service \
    etc/systemd/system/smtpfence-reap.timer etc/smtpfence/smtpfence.conf; do
    check "installed /$f" test -s "$root/$f"
done
echo "# edited" >>"$root/etc/smtpfence/smtpfence.conf"
check "a second install keeps an existing config" env DESTDIR="$root" BUILD_DIR="$(dirname "$SMTPFENCE")" \
    "$E2E_ROOT/scripts/install.sh"
check_eq "the edit is still there" "# edited" "$(tail -1 "$root/etc/smtpfence/smtpfence.conf")"

e2e_log "systemd-analyze verify"
# verify resolves the units' dependencies (multi-user.target, ...) under
# --root, so systemd's own units go into the staged root too.
mkdir -p "$root/usr/lib/systemd"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
units=("$root"/etc/systemd/system/smtpfence{.service,-agent.service,-reap.service,-reap.timer})
out=$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1)
rc=$?
check_eq "systemd-analyze verify exits 0" 0 "$rc"
check_eq "and has nothing to say about the units" "" "$out"
check_match "the unit is a oneshot that stays active" $'Type=oneshot\nRemainAfterExit=yes' \
    "$(cat "$root/etc/systemd/system/smtpfence.service")"

# exec_start UNIT: the unit's ExecStart, with the installed paths made the
# staged ones and the config the test's.
config=$E2E_TMP/smtpfence.conf
exec_start() {
    sed -n 's/^ExecStart=//p' "$root/etc/systemd/system/$1" |
        sed -e "s#/usr/local/sbin/smtpfence#$root/usr/local/sbin/smtpfence#" \
            -e "s#/etc/smtpfence/smtpfence.conf#$config#"
}
boot_line=$(exec_start smtpfence.service)
check_match "the ExecStart line is the boot command" "smtpfence boot --config $config\$" "$boot_line"
check_match "the agent's ExecStart line is the agent command" "smtpfence agent --config $config\$" \
    "$(exec_start smtpfence-agent.service)"
read -r -a boot_cmd <<<"$boot_line"
read -r -a reap_cmd <<<"$(exec_start smtpfence-reap.service)"
run_unit() { nsenter --net="$NETNS_DIR/$HOST_NS" -- "$@"; }

cat >"$config" <<CONF
# test config
interfaces = $HOST_IF
mode = generic
ports = 25, 2525
pin_dir = $SMTPFENCE_PIN_DIR
state_dir = $SMTPFENCE_STATE_DIR
CONF
mkdir -p "$SMTPFENCE_STATE_DIR"
until_utc=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
cat >"$(state_file)" <<RULES
ports 25
block 203.0.113.0/24 --until $until_utc --reason "saved storm" --by alice --origin "mx1 (ssh from 198.51.100.5)" --created 2026-11-01T10:00:00Z
allow 203.0.113.20/32 --reason "their MX" --by bob --origin mx1 --created 2026-11-01T10:05:00Z
block 198.51.100.99/32 --until 2020-01-01T00:00:00Z --reason "long gone" --by alice --origin mx1 --created 2019-12-01T00:00:00Z
RULES

e2e_log "the unit's ExecStart at boot"
check "ExecStart runs" run_unit "${boot_cmd[@]}"
check_eq "the interface is attached in the configured mode" xdpgeneric "$(xdp_kernel_mode)"
check_eq "the configured ports win over the saved ones" "25,2525" "$(fence ports)"
check_eq "the two live saved rules are restored, the expired one is not" "203.0.113.0/24 203.0.113.20/32" \
    "$(fence list --json | jq -r '[.rules[].cidr] | join(" ")')"
check_eq "with their provenance" "alice|mx1 (ssh from 198.51.100.5)|saved storm|2026-11-01T10:00:00Z|$until_utc" \
    "$(fence list --json | jq -r '.rules[0] | [.created_by, .origin, .reason, .created, .expires] | join("|")')"
expect_blocked 203.0.113.10 198.51.100.1 2525
expect_connect 203.0.113.20 198.51.100.1 25
check_match "the expired rule is audited" 'expire by .*198\.51\.100\.99/32' "$(cat "$(audit_log)")"
check_eq "the state file matches the kernel" true "$(status_field .state_file.matches_kernel)"

e2e_log "again: nothing changes"
check_match "a second run restores nothing" 'restored: 0 added, 0 updated, 0 removed, 2 unchanged' \
    "$(run_unit "${boot_cmd[@]}" 2>&1)"

e2e_log "after a reboot (the pin dir is gone)"
check "detach" fence detach "$HOST_IF"
rm -rf "$SMTPFENCE_PIN_DIR"
check_match "ExecStart restores both rules" 'restored: 2 added' "$(run_unit "${boot_cmd[@]}" 2>&1)"
expect_blocked 203.0.113.10 198.51.100.1 25
left=$(rule_field 203.0.113.0/24 expires_in_s)
if ((left > 3500 && left <= 3600)); then
    e2e_pass "the restored block keeps its deadline ($left s left)"
else
    e2e_fail "the restored block has $left s left, expected about 3600"
fi

e2e_log "the reaper unit"
# 5 s, not 1: every command reaps what has expired, so the `list` that reads
# the deadline must run before it (on a loaded machine it once ran 1 s late,
# reaped the rule itself and left the reaper nothing to do).
check "a rule for 5 s" fence block 198.51.100.0/24 --for 5s
expires=$(rule_field 198.51.100.0/24 expires_unix)
check_match "its deadline is read before it passes" '^[0-9]+$' "$expires"
past_deadline() { (($(date +%s) > expires)); }
check "its deadline passes" wait_until 8 past_deadline
check_match "the reaper's ExecStart removes it" 'reaped 1 expired rule' "$(run_unit "${reap_cmd[@]}" 2>&1)"

e2e_log "a broken config changes nothing"
echo "interfaces =" >"$E2E_TMP/bad.conf"
expect_exit 2 "a config without interfaces exits 2" fence boot --config "$E2E_TMP/bad.conf"
check_match "and says what is missing" "no interfaces" "$E2E_OUT"
echo "colour = blue" >"$E2E_TMP/bad.conf"
expect_exit 2 "an unknown setting exits 2" fence boot --config "$E2E_TMP/bad.conf"
check_match "and names the line" "bad.conf:1: unknown setting 'colour'" "$E2E_OUT"

e2e_finish
