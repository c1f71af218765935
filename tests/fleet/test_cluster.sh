#!/usr/bin/env bash
# The fleet harness itself (tests/fleet/etcd.sh): a 3-member etcd cluster on
# a LAN of namespaces, with TLS and client certificates everywhere and auth;
# what the fleet relies on: replication, the agents' permissions, refusal of
# plain HTTP and of clients without a certificate, a new leader after the
# leader crashes, no writes without a quorum and writes again once it is
# back; and that the cleanup leaves nothing behind. Every wait is a poll with
# a deadline. Takes about 30 s (2 cores).
# shellcheck disable=SC2317 # helpers called through check and harness_wait_until
set -u
# shellcheck source=SCRIPTDIR/etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/etcd.sh"

harness_require_root "the fleet tests"
fleet_require_tools
T0=$SECONDS

# check DESC CMD...: CMD must exit 0. CMD runs in this shell (its output
# goes to a file, not through $(...)): the library's functions record pids,
# namespaces and state that a subshell would lose.
check() {
    local desc=$1 out rc
    shift
    "$@" >"$HARNESS_TMP/check.out" 2>&1
    rc=$?
    out=$(<"$HARNESS_TMP/check.out")
    if ((rc == 0)); then
        harness_pass "$desc"
        return 0
    fi
    harness_fail "$desc: '$*' exited $rc: ${out//$'\n'/ | }"
    return 1
}

# check_fails DESC REGEX CMD...: CMD must fail, saying something matching
# REGEX (so that it fails for the reason the check is about).
check_fails() {
    local desc=$1 re=$2 out
    shift 2
    if "$@" >"$HARNESS_TMP/check.out" 2>&1; then
        harness_fail "$desc: '$*' succeeded: $(tr '\n' ' ' <"$HARNESS_TMP/check.out")"
        return 1
    fi
    out=$(<"$HARNESS_TMP/check.out")
    if [[ $out =~ $re ]]; then
        harness_pass "$desc"
        return 0
    fi
    harness_fail "$desc: '$*' failed, but not with /$re/: ${out//$'\n'/ | }"
    return 1
}

check_eq() {
    if [[ $2 == "$3" ]]; then
        harness_pass "$1"
    else
        harness_fail "$1: expected '$2', got '$3'"
    fi
}

# get_on K KEY: the value of KEY as member K alone has it (a serializable
# read is answered locally, so it shows what was replicated to K).
get_on() {
    etcdctl_admin --endpoints="$(etcd_endpoint "$1")" get --consistency=s --print-value-only "$2" 2>/dev/null
}
value_on_is() { [[ $(get_on "$1" "$2") == "$3" ]]; }

# on_every_member DESC KEY VALUE: each member has KEY=VALUE within 5 s.
on_every_member() {
    local k
    for ((k = 1; k <= ETCD_N; k++)); do
        if harness_wait_until 5 value_on_is "$k" "$2" "$3"; then
            harness_pass "$1: etcd$k has $2=$3"
        else
            harness_fail "$1: etcd$k has $2='$(get_on "$k" "$2")' after 5 s, expected '$3'"
        fi
    done
}

not_leader() { local l; l=$(etcd_leader) && [[ $l != "$1" ]]; }
put_works() { etcdctl_admin put "$1" "$2" >/dev/null 2>&1; }

# ------------------------------------------------------------ the cluster

etcd_cluster_start 3
leader=$(etcd_leader)
check "the cluster has a leader ($leader)" test -n "$leader"
check_eq "three https client endpoints" 3 "$(tr , '\n' <<<"$ETCD_ENDPOINTS" | grep -c '^https://203\.0\.113\.10[1-3]:22379$')"
for k in 1 2 3; do
    check "etcd$k runs in ${ETCD_MEMBER_NS[k]}" test "$(ip netns identify "${ETCD_MEMBER_PID[k]}")" == "${ETCD_MEMBER_NS[k]}"
done

check "the admin puts /smtpfence/v1/test/hello" etcdctl_admin put /smtpfence/v1/test/hello world
on_every_member "replicated" /smtpfence/v1/test/hello world

# ------------------------------------------------------------ TLS

ip1=${ETCD_MEMBER_IP[1]}
version_with_cert() {
    fleet_in "$FLEET_ADMIN_NS" curl -sSf --max-time 3 --cacert "$FLEET_PKI/ca.pem" \
        --cert "$FLEET_PKI/admin.pem" --key "$FLEET_PKI/admin-key.pem" "https://$ip1:22379/version" | grep etcdserver
}
check "https with a client certificate answers /version" version_with_cert
check_fails "plain http is refused (etcdctl)" 'deadline|connection|transport|EOF' \
    fleet_etcdctl "$FLEET_ADMIN_NS" admin -- --endpoints="http://$ip1:22379" --dial-timeout=1s --command-timeout=2s get /smtpfence/v1/test/hello
check_fails "plain http is refused (curl)" 'curl: \((52|56)\)|error: 400' \
    fleet_in "$FLEET_ADMIN_NS" curl -sSf --max-time 3 "http://$ip1:22379/version"
check_fails "a client without a certificate is refused (curl)" 'curl: \((35|55|56)\)' \
    fleet_in "$FLEET_ADMIN_NS" curl -sSf --max-time 3 --cacert "$FLEET_PKI/ca.pem" "https://$ip1:22379/version"
check_fails "a client without a certificate is refused (etcdctl)" 'deadline|certificate|tls|transport' \
    fleet_in "$FLEET_ADMIN_NS" etcdctl --endpoints="$ETCD_ENDPOINTS" --cacert="$FLEET_PKI/ca.pem" \
    --dial-timeout=1s --command-timeout=2s get /smtpfence/v1/test/hello

# ------------------------------------------------------------ auth

check "auth enabled (root, admin/fleet-admin)" etcd_enable_auth
check "password files are 0600" test "$(stat -c %a "$FLEET_PKI/root.password" "$FLEET_PKI/admin.password" | sort -u)" == 600
check "root puts /smtpfence/v1/policy/rules/x" etcdctl_admin put /smtpfence/v1/policy/rules/x 'block 198.51.100.0/24'
check "user admin (fleet-admin) puts /smtpfence/v1/policy/rules/y" \
    fleet_etcdctl "$FLEET_ADMIN_NS" admin admin -- put /smtpfence/v1/policy/rules/y 'allow 198.51.100.7/32'
check_fails "user admin may not write outside /smtpfence/" 'permission denied' \
    fleet_etcdctl "$FLEET_ADMIN_NS" admin admin -- put /other 1

MX=mx1
MX_NS=sffleet-$MX-$FLEET_ID
check "mail host $MX joins the LAN ($MX_NS, 203.0.113.11)" fleet_ns_join "$MX_NS" 203.0.113.11
check "agent user and role for $MX" etcd_add_agent "$MX"
agent() { fleet_etcdctl "$MX_NS" "agent-$MX" "agent-$MX" -- "$@"; }
check_eq "the agent reads the policy" 'block 198.51.100.0/24' \
    "$(agent get --print-value-only /smtpfence/v1/policy/rules/x 2>&1)"
check_fails "the agent may not write the policy" 'permission denied' agent put /smtpfence/v1/policy/rules/x 'allow 0.0.0.0/0'
check "the agent writes /smtpfence/v1/hosts/$MX/applied" agent put "/smtpfence/v1/hosts/$MX/applied" 1
check "the agent writes its echo key" agent put "/smtpfence/v1/policy/echo/$MX" 1
check_fails "the agent may not write another host's keys" 'permission denied' agent put /smtpfence/v1/hosts/mx2/applied 1
check_fails "the agent may not write another host's echo key" 'permission denied' agent put /smtpfence/v1/policy/echo/mx2 1
wrong_password() {
    ETCDCTL_USER=agent-$MX:wrong fleet_in "$MX_NS" etcdctl --endpoints="$ETCD_ENDPOINTS" \
        --cacert="$FLEET_PKI/ca.pem" --cert="$FLEET_PKI/agent-$MX.pem" --key="$FLEET_PKI/agent-$MX-key.pem" \
        --dial-timeout=2s get /smtpfence/v1/policy/rules/x
}
check_fails "a wrong password is refused" 'authentication failed|invalid' wrong_password
# Without a password, etcd takes the certificate's CN as the user.
check_eq "the agent's certificate alone authenticates it (CN=agent-$MX)" 'block 198.51.100.0/24' \
    "$(fleet_etcdctl "$MX_NS" "agent-$MX" -- get --print-value-only /smtpfence/v1/policy/rules/x 2>&1)"
fleet_client_cert stranger
check_fails "a certificate whose CN is no user reads nothing" 'permission denied|user name|not found' \
    fleet_etcdctl "$MX_NS" stranger -- get /smtpfence/v1/policy/rules/x

# ------------------------------------------------------------ failures

leader=$(etcd_leader)
check "leader etcd$leader killed with SIGKILL" etcd_member_kill "$leader"
t=$SECONDS
if harness_wait_until 15 not_leader "$leader"; then
    harness_pass "a new leader, etcd$(etcd_leader), within $((SECONDS - t)) s (deadline 15)"
else
    harness_fail "no new leader 15 s after etcd$leader was killed"
fi
t=$SECONDS
if harness_wait_until 10 put_works /smtpfence/v1/test/after-kill 1; then
    harness_pass "writes work again, $((SECONDS - t)) s after the new leader"
else
    harness_fail "no write works 10 s after the new leader: $(etcdctl_admin put /smtpfence/v1/test/after-kill 1 2>&1)"
fi
check "the killed etcd$leader restarts on its data dir and is healthy" etcd_member_start "$leader"
on_every_member "after the crash" /smtpfence/v1/test/after-kill 1

# Quorum lost: two of three stopped, the leader among them.
leader=$(etcd_leader)
other=$((leader % 3 + 1))
check "etcd$leader (leader) stopped with SIGTERM" etcd_member_stop "$leader"
check "etcd$other stopped with SIGTERM" etcd_member_stop "$other"
t=$SECONDS
check_fails "without a quorum a write fails" 'deadline|timeout|unavailable|no leader' \
    etcdctl_admin --dial-timeout=2s --command-timeout=3s put /smtpfence/v1/test/no-quorum 1
took=$((SECONDS - t))
check "... within 8 s (took $took s)" test "$took" -le 8
check "etcd$leader restarts" etcd_member_start "$leader"
check "etcd$other restarts" etcd_member_start "$other"
check "the cluster is healthy" etcd_wait_healthy
check "writes work with the quorum back" etcdctl_admin put /smtpfence/v1/test/quorum-back 1
on_every_member "quorum back" /smtpfence/v1/test/quorum-back 1

# ------------------------------------------------------------ cleanup

run_pids=("${ETCD_MEMBER_PID[@]}")
run_tmp=$HARNESS_TMP
run_data=$FLEET_DATA
fleet_cleanup
left_ns=$(ip netns list | awk '{print $1}' | grep -E -- "-$FLEET_ID\$" | tr '\n' ' ')
check_eq "cleanup: no namespace of this run remains" "" "$left_ns"
left_pids=
for p in "${run_pids[@]}"; do
    _etcd_alive "$p" && left_pids+="$p "
done
# Any etcd whose data dir is this run's, whatever its pid.
left_pids+=$(pgrep -a -x etcd | grep -F -- "--data-dir $run_data/" | awk '{print $1}' | tr '\n' ' ')
check_eq "cleanup: no etcd of this run runs" "" "$left_pids"
left_dirs=
for d in "$run_tmp" "$run_data"; do [[ -e $d ]] && left_dirs+="$d "; done
check_eq "cleanup: temporary and data directories gone" "" "$left_dirs"
harness_log "test_cluster took $((SECONDS - T0)) s"
harness_finish
