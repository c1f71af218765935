#!/usr/bin/env bash
# The fleet end to end: a 3-member etcd cluster with TLS and auth
# (tests/fleet/etcd.sh), three mail hosts that each run `smtpfence agent`
# with their own pin dir (mx1: role mx; sub1: submission; central1:
# central), a sender making real TCP connections to their SMTP ports, and
# the admin's `smtpfence fleet` in a namespace of its own.
#
#   a role-scoped block reaches exactly the hosts of the role, and the
#   command waits until they applied it; a host-scoped allow inside an
#   all-hosts block wins on that host only; local rules are left alone and
#   marked; a bad key written by hand is reported and skipped; fleet status
#   shows every host; with the whole cluster stopped the blocks hold and a
#   fleet rule's deadline still ends it on every host; an agent that was
#   stopped while rules changed and the store compacted catches up; the
#   leader killed: the fleet converges. Every wait is a poll with a deadline.
#
# Needs root, etcd (scripts/install-deps.sh). Run: sudo bash tests/fleet/test_fleet.sh
# shellcheck disable=SC2317 # helpers called through check and harness_wait_until
set -u
# shellcheck source=SCRIPTDIR/etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/etcd.sh"

ROOT=$(cd "$FLEET_DIR/../.." && pwd)
SMTPFENCE=${SMTPFENCE:-$ROOT/build/userspace/smtpfence}
TCPPROBE=${TCPPROBE:-$ROOT/build/tests/tcpprobe}

harness_require_root "the fleet tests"
fleet_require_tools
[[ -x $SMTPFENCE && -x $TCPPROBE ]] || harness_die "build first: $SMTPFENCE and $TCPPROBE"

HOSTS=(mx1 sub1 central1)
declare -A ROLE=([mx1]=mx [sub1]=submission [central1]=central)
declare -A IP=([mx1]=$FLEET_NET.11 [sub1]=$FLEET_NET.12 [central1]=$FLEET_NET.13)
declare -A AGENT_PID=()
SENDER_NS=sffleet-sender-$FLEET_ID
SENDER=$FLEET_NET.60   # the storm's source
OTHER=$FLEET_NET.61    # another source in the same /24
PROBED=$FLEET_NET.64   # the prober's, blocked on every host from the outages on
PROBE_MS=700

check() {
    local desc=$1 rc
    shift
    "$@" >"$HARNESS_TMP/check.out" 2>&1
    rc=$?
    if ((rc == 0)); then
        harness_pass "$desc"
        return 0
    fi
    harness_fail "$desc: '$*' exited $rc: $(tr '\n' ' ' <"$HARNESS_TMP/check.out")"
    return 1
}

check_eq() {
    if [[ $2 == "$3" ]]; then harness_pass "$1"; else harness_fail "$1: expected '$2', got '$3'"; fi
}

check_match() {
    if [[ $3 =~ $2 ]]; then harness_pass "$1"; else harness_fail "$1: /$2/ not in: ${3//$'\n'/ | }"; fi
}

host_ns() { echo "sffleet-$1-$FLEET_ID"; }
pin_dir() { echo "/sys/fs/bpf/smtpfence-fleet-$FLEET_ID-$1"; }

# fleet ARGS...: the admin's CLI, from the admin namespace.
fleet() { nsenter --net="/var/run/netns/$FLEET_ADMIN_NS" -- "$SMTPFENCE" fleet --config "$HARNESS_TMP/admin.conf" "$@"; }
# local_cli HOST ARGS...: smtpfence on a mail host (its own pin dir).
local_cli() {
    local h=$1
    shift
    nsenter --net="/var/run/netns/$(host_ns "$h")" -- "$SMTPFENCE" --pin-dir "$(pin_dir "$h")" \
        --state-dir "$HARNESS_TMP/state-$h" "$@"
}

# connects HOST [SRC]: one SMTP connection from SRC (default the storm's) succeeds.
connects() { ip netns exec "$SENDER_NS" "$TCPPROBE" connect --src "${2:-$SENDER}" --timeout-ms "$PROBE_MS" "${IP[$1]}" 25; }
blocked() { ! connects "$@"; }

fleet_rule_action() { # HOST CIDR: the action of HOST's fleet rule for CIDR, or ""
    local_cli "$1" list --json | jq -r --arg c "$2" '.rules[] | select(.cidr == $c and .set == "fleet") | .action'
}

write_config() { # HOST
    fleet_agent_config "$HARNESS_TMP/$1.conf" "$1" "${ROLE[$1]}" "$(pin_dir "$1")" "$HARNESS_TMP/state-$1"
}

start_agent() { # HOST
    local h=$1
    nsenter --net="/var/run/netns/$(host_ns "$h")" -- setpriv --pdeathsig TERM -- \
        "$SMTPFENCE" agent --config "$HARNESS_TMP/$h.conf" >>"$HARNESS_TMP/agent-$h.log" 2>&1 &
    AGENT_PID[$h]=$!
    harness_track "${AGENT_PID[$h]}"
}

stop_agent() { # HOST
    harness_end_pids "${AGENT_PID[$1]}"
}

alive_hosts() { fleet status --json | jq -r '[.hosts[] | select(.alive) | .host] | sort | join(" ")'; }

remove_pins() {
    local h
    for h in "${HOSTS[@]}"; do rm -rf -- "$(pin_dir "$h")"; done
}

# ------------------------------------------------------------ setup

fleet_lan_create
harness_on_cleanup remove_pins
T0=$SECONDS
etcd_cluster_start 3
etcd_enable_auth || harness_die "etcd auth"
fleet_admin_config "$HARNESS_TMP/admin.conf"

fleet_ns_join "$SENDER_NS" "$SENDER" || harness_die "sender namespace"
ip -n "$SENDER_NS" addr add "$OTHER/24" dev "$FLEET_IF"
ip -n "$SENDER_NS" addr add "$PROBED/24" dev "$FLEET_IF"
for h in "${HOSTS[@]}"; do
    fleet_ns_join "$(host_ns "$h")" "${IP[$h]}" || harness_die "namespace of $h"
    etcd_add_agent "$h" || harness_die "etcd user of $h"
    write_config "$h"
    ip netns exec "$(host_ns "$h")" "$TCPPROBE" listen --die-with-parent --banner "220 $h ESMTP" 22 25 \
        >"$HARNESS_TMP/listen-$h.out" 2>&1 &
    harness_track $!
    start_agent "$h"
done
harness_log "cluster and hosts up in $((SECONDS - T0)) s"
all_alive() { [[ $(alive_hosts) == "central1 mx1 sub1" ]]; }
check "every agent is alive in fleet status" harness_wait_until 15 all_alive
for h in "${HOSTS[@]}"; do check "$h accepts SMTP before any rule" connects "$h"; done

# ------------------------------------------------------------ scopes

harness_log "fleet block --role mx: the MX only, and the command waits for it"
check "fleet block $SENDER/32 --role mx" fleet block "$SENDER/32" --role mx --reason "notifier storm"
out=$(<"$HARNESS_TMP/check.out")
check_match "it reports mx1 applied, with its latency" "mx1: applied in [0-9]+ ms" "$out"
check_eq "and names no other host" "" "$(grep -E 'sub1|central1' <<<"$out")"
check "mx1 drops the storm's SYN" blocked mx1
check "sub1 still accepts it" connects sub1
check "central1 still accepts it" connects central1
check_eq "mx1 holds it as a fleet rule" block "$(fleet_rule_action mx1 "$SENDER/32")"
check_match "with the admin's provenance" "fleet role=mx, " "$(local_cli mx1 list --json | jq -r '.rules[0].origin')"
check_match "mx1's list marks it fleet" "block +${SENDER//./\\.}/32 .* fleet +[^ ]+ +fleet role=mx, " "$(local_cli mx1 list)"

harness_log "an all-hosts block, and a host-scoped allow inside it"
check "fleet block $FLEET_NET.0/24 (every host)" fleet block "$FLEET_NET.0/24" --reason "spewing /24"
check "fleet allow $SENDER/32 --host sub1" fleet allow "$SENDER/32" --host sub1 --reason "our relay"
check "sub1: the allow wins" connects sub1
check "sub1: another source of the /24 is blocked" blocked sub1 "$OTHER"
check "central1: blocked" blocked central1
check "mx1: blocked" blocked mx1

harness_log "a dry run for the fleet, then enforce"
check "fleet block $FLEET_NET.70/32 --dry-run" fleet block "$FLEET_NET.70/32" --dry-run
check_eq "central1 holds it as a dry run" true \
    "$(local_cli central1 list --json | jq -r --arg c "$FLEET_NET.70/32" '.rules[] | select(.cidr == $c) | .dry_run')"
check "fleet enforce $FLEET_NET.70/32" fleet enforce "$FLEET_NET.70/32"
check_eq "central1 enforces it" false \
    "$(local_cli central1 list --json | jq -r --arg c "$FLEET_NET.70/32" '.rules[] | select(.cidr == $c) | .dry_run')"
check "fleet remove it" fleet remove "$FLEET_NET.70/32"

harness_log "local rules are the host's own"
check "a local block on central1" local_cli central1 block 198.51.100.0/24 --reason "local emergency"
check "fleet remove $FLEET_NET.0/24" fleet remove "$FLEET_NET.0/24"
check "central1 accepts the storm again" connects central1
check_match "central1's list marks its own rule local" "block +198\.51\.100\.0/24 .* local +" "$(local_cli central1 list)"
check_eq "central1's local rule is untouched, marked local" "block local" \
    "$(local_cli central1 list --json | jq -r '.rules[] | select(.cidr == "198.51.100.0/24") | "\(.action) \(.set)"')"
local_remove_refused() { ! local_cli mx1 remove "$SENDER/32"; }
check "a local remove of a fleet rule needs --force" local_remove_refused

harness_log "bad data in the store: reported, skipped, nothing else disturbed"
check "a hand-written key with an invalid prefix" etcdctl_admin put \
    "/smtpfence/v1/policy/rules/all~203.0.113.99_32" '{"action":"block","cidr":"203.0.113.300/32","scope":"all"}'
check "a hand-written limit with an invalid rate" etcdctl_admin put \
    "/smtpfence/v1/policy/rules/all~203.0.113.98_32" '{"action":"limit","cidr":"203.0.113.98/32","scope":"all","rate":"lots"}'
bad_reported() { fleet status --json | jq -e '[.hosts[] | select((.skipped | length) == 2)] | length == 3' >/dev/null; }
check "every host reports both keys skipped (within 15 s)" harness_wait_until 15 bad_reported
check_match "fleet status names the bad key" "skipped a bad rule: .*all~203\.0\.113\.99_32.*203\.0\.113\.300" \
    "$(fleet status)"
check_match "fleet list shows it invalid" "invalid, skipped by every agent: .*rate" "$(fleet list)"
check "mx1 still blocks the storm" blocked mx1
check "sub1 still accepts it" connects sub1
check "the bad keys go" etcdctl_admin del --prefix "/smtpfence/v1/policy/rules/all~203.0.113.9"

# ------------------------------------------------------------ outages

harness_log "from here on a prober from a source blocked everywhere tries every host, all the time"
check "fleet block $PROBED/32 (every host)" fleet block "$PROBED/32" --reason "the prober's source"
for h in "${HOSTS[@]}"; do check "$h blocks $PROBED" blocked "$h" "$PROBED"; done
prober() {
    local h
    while [[ ! -e $HARNESS_TMP/prober.stop ]]; do
        for h in "${HOSTS[@]}"; do
            ip netns exec "$SENDER_NS" "$TCPPROBE" count --src "$PROBED" --timeout-ms 200 --attempts 1 "${IP[$h]}" 25 \
                >>"$HARNESS_TMP/prober.out" 2>&1
        done
    done
}
prober &
harness_track $!

harness_log "the whole cluster stopped: the blocks hold, deadlines still end rules"
check "fleet block $OTHER/32 --for 8s (every host)" fleet block "$OTHER/32" --for 8s
for h in "${HOSTS[@]}"; do check "$h blocks $OTHER" blocked "$h" "$OTHER"; done
expires_unix=$(local_cli mx1 list --json | jq -r --arg c "$OTHER/32" '.rules[] | select(.cidr == $c) | .expires_unix')
for k in 1 2 3; do etcd_member_kill "$k"; done
store_down() { local_cli mx1 status --json >/dev/null; jq -e '.connected == false' "$HARNESS_TMP/state-mx1/fleet-agent.json" >/dev/null; }
check "mx1's agent notices the outage" harness_wait_until 15 store_down
check "mx1 still blocks the storm" blocked mx1
check "sub1 still allows it (host allow)" connects sub1
check_match "mx1's status shows the outage" "fleet: +host mx1 \\(roles mx\\), revision [0-9]+ in force; store UNREACHABLE" \
    "$(local_cli mx1 status)"
check_match "and warns about it" "the fleet's store is unreachable since" "$(local_cli mx1 status --json | jq -r '.warnings[]')"
check_match "mx1's metrics say so" $'smtpfence_fleet_store_connected 0' "$(local_cli mx1 metrics)"
all_expired() { local h; for h in "${HOSTS[@]}"; do connects "$h" "$OTHER" || return 1; done; }
check "the --for 8s rule ended on every host with etcd down" harness_wait_until 20 all_expired
ended_unix=$(date +%s)
# The deadline is whole seconds; the kernel's is exact, so allow the second it falls in.
if ((ended_unix + 1 >= expires_unix)); then
    harness_pass "and not before its deadline"
else
    harness_fail "it ended at $ended_unix, before its deadline $expires_unix"
fi

harness_log "an agent away while rules change and the store compacts catches up"
stop_agent sub1
check "the cluster is back" etcd_cluster_restart
check "fleet block 198.51.100.0/24 --role submission (sub1 is down)" fleet block 198.51.100.0/24 --role submission --no-wait
check "fleet remove the sub1 allow" fleet remove "$SENDER/32" --host sub1 --no-wait
check "fleet block $SENDER/32 (every host)" fleet block "$SENDER/32" --no-wait
rev=$(etcdctl_admin endpoint status -w json | jq -r '.[0].Status.header.revision')
check "compact the store at $rev" etcdctl_admin compaction --physical "$rev"
start_agent sub1
sub1_caught_up() { [[ $(fleet_rule_action sub1 "$SENDER/32") == block && $(fleet_rule_action sub1 198.51.100.0/24) == block ]]; }
check "sub1 caught up" harness_wait_until 20 sub1_caught_up
check "sub1 now blocks the storm" blocked sub1

harness_log "quorum lost: changes fail and say so, the blocks hold"
k1=$(etcd_leader)
k2=$((k1 % 3 + 1))
etcd_member_kill "$k1"
etcd_member_kill "$k2"
check_fails_quorum() { ! fleet block "$FLEET_NET.63/32" --wait 2s; }
check "fleet block without a quorum fails" check_fails_quorum
check_match "naming the store's failure" "smtpfence: .*(timed out|timeout|no leader|unavailable|Connection|connect)" \
    "$(fleet block "$FLEET_NET.63/32" 2>&1)"
check "mx1 still blocks the storm" blocked mx1
check "quorum back" etcd_cluster_restart

harness_log "the leader killed: the fleet converges"
leader=$(etcd_leader)
etcd_member_kill "$leader"
check "fleet block $FLEET_NET.62/32 after the leader died (retried while a new one is elected)" \
    harness_wait_until 15 fleet block "$FLEET_NET.62/32" --wait 5s
converged() { local h; for h in "${HOSTS[@]}"; do [[ $(fleet_rule_action "$h" "$FLEET_NET.62/32") == block ]] || return 1; done; }
check "every host has it" harness_wait_until 15 converged
etcd_member_start "$leader"

touch "$HARNESS_TMP/prober.stop"
probes=$(grep -c '^ok=' "$HARNESS_TMP/prober.out")
let_in=$(awk -F'[= ]' '/^ok=/ {n += $2} END {print n + 0}' "$HARNESS_TMP/prober.out")
check_eq "the prober got no connection through on any host, through the whole cluster stopped, an agent's catch-up, quorum loss and a leader failover ($probes probes)" \
    0 "$let_in"
((probes >= 30)) && harness_pass "the prober ran ($probes probes)" || harness_fail "the prober ran only $probes probes"

harness_log "fleet list: every rule, and what each host enforcing it counted"
mx_counted() {
    fleet list --json | jq -e --arg k "/smtpfence/v1/policy/rules/role=mx~$SENDER_32" \
        '.rules[] | select(.key == $k) | .hosts.mx1.dropped_attempts > 0' >/dev/null
}
SENDER_32=${SENDER}_32
check "mx1's drops of the storm reach fleet list (reports every 10 s)" harness_wait_until 15 mx_counted
fleet list >"$HARNESS_TMP/list.out"
cat "$HARNESS_TMP/list.out"
check_match "the text shows them under the rule" "role=mx +block +$SENDER/32.*"$'\n'" +↳ attempts dropped/made: mx1 [1-9]" \
    "$(<"$HARNESS_TMP/list.out")"

harness_log "every host converged to the rule set its scopes give it"
fleet_set() { local_cli "$1" list --json | jq -r '[.rules[] | select(.set == "fleet") | "\(.action) \(.cidr)"] | sort | join(", ")'; }
common="block $FLEET_NET.60/32, block $FLEET_NET.62/32, block $FLEET_NET.64/32"
check_eq "mx1" "$common" "$(fleet_set mx1)"
check_eq "central1" "$common" "$(fleet_set central1)"
check_eq "sub1 (and its role's 198.51.100.0/24)" "block 198.51.100.0/24, $common" "$(fleet_set sub1)"
check_match "mx1 enforces the role=mx rule for $SENDER/32 (role beats all)" "^fleet role=mx, " \
    "$(local_cli mx1 list --json | jq -r --arg c "$SENDER/32" '.rules[] | select(.cidr == $c) | .origin')"

harness_log "fleet status: one row per host"
caught_up() {
    fleet status --json | jq -e '[.hosts[] | select(.alive and .store_connected and .in_sync)] | length == 3' >/dev/null
}
check "every host alive and connected" harness_wait_until 15 caught_up
fleet status >"$HARNESS_TMP/status.out"
cat "$HARNESS_TMP/status.out"
check_match "the table has the three hosts" "central1 +central +yes.*"$'\n'".*mx1 +mx +yes.*"$'\n'".*sub1 +submission +yes" \
    "$(<"$HARNESS_TMP/status.out")"

harness_log "done in $((SECONDS - T0)) s"
harness_finish
