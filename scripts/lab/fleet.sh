# shellcheck shell=bash disable=SC2034,SC2317 # globals read by mail.sh; helpers called through ml_wait
# The mail lab's "fleet" scenario: one rule set for many mail hosts, through
# etcd. Sourced by scripts/lab.sh (and tests/mta/test_fleet_lab.sh) after
# tests/fleet/etcd.sh, scripts/lab/mail.sh and scripts/lab/scenarios.sh.
#
# The seed's system, as namespaces on the fleet LAN of tests/fleet/etcd.sh
# (its own bridge, 203.0.113.0/24; apart from the mail lab's bridge):
#
#   sfetcd1..3-ID  203.0.113.101-.103  etcd, 3 members, TLS + client certs + auth
#   sfadmin-ID     203.0.113.200       the admin: `smtpfence fleet ...`
#   sffleet-mx1-ID      .11  role mx          Postfix on 25   + smtpfence agent
#   sffleet-sub1-ID     .12  role submission  Postfix on 587  + smtpfence agent
#   sffleet-sub2-ID     .13  role submission  Postfix on 587  + smtpfence agent
#   sffleet-central1-ID .14  role central     Postfix on 25   + smtpfence agent
#   sffleet-mon-ID      .60  a monitoring system whose own Postfix sends alerts
#                            to every host (transport map: each host's port)
#
# Every agent attaches XDP to its host's lan0, pins in its own directory
# (/sys/fs/bpf/smtpfence-mta-fleet-HOST-ID) and keeps its state in its own
# state directory. The storm is the monitoring system's alerts: once before any
# rule, then after `smtpfence fleet block MON --role submission`, when the
# submission hosts drop it (its mail waits, deferred, in its queue) and mx1
# and central1 still accept it. Then every etcd member is stopped: the blocks
# hold and each agent records the outage (fleet-agent.json, "connected":
# false); the members come back, `fleet remove` made right after converges on
# every host and the deferred alerts arrive, each once.

ML_FL_HOSTS=(mx1 sub1 sub2 central1)
declare -A ML_FL_ROLE=([mx1]=mx [sub1]=submission [sub2]=submission [central1]=central)
declare -A ML_FL_IP=([mx1]=203.0.113.11 [sub1]=203.0.113.12 [sub2]=203.0.113.13 [central1]=203.0.113.14)
declare -A ML_FL_PORT=([mx1]=25 [sub1]=587 [sub2]=587 [central1]=25)
declare -A ML_FL_AGENT=()
ML_FL_MON=203.0.113.60
ML_FL_PRE=10    # alerts per host before the block
ML_FL_STORM=20  # alerts per host while blocked
ML_FL_PROBE_MS=700

ml_fl_ns() { echo "sffleet-$1-$ML_ID"; }
ml_fl_pin_dir() { echo "/sys/fs/bpf/smtpfence-mta-fleet-$1-$ML_ID"; }
ml_fl_state_dir() { echo "$ML_TMP/fleet-state-$1"; }

# ml_fl_require: the fleet's tools (etcd, etcdctl, openssl, ...).
ml_fl_require() { fleet_require_tools; }

# The admin's CLI, from the admin namespace.
ml_fl_cli() { nsenter --net="$NETNS_DIR/$FLEET_ADMIN_NS" -- "$SMTPFENCE" fleet --config "$ML_TMP/fleet-admin.conf" "$@"; }
# ml_fl_shown ARGS...: `smtpfence fleet ARGS`, shown with its output; its exit code.
ml_fl_shown() {
    printf '   %s# smtpfence fleet %s%s\n' "$HARNESS_C_B" "$*" "$HARNESS_C_OFF"
    local rc
    ml_fl_cli "$@" >"$ML_TMP/fleet-cli.out" 2>&1
    rc=$?
    [[ -s $ML_TMP/fleet-cli.out ]] && sed 's/^/     /' "$ML_TMP/fleet-cli.out"
    return "$rc"
}
# ml_fl_local HOST ARGS...: smtpfence on a mail host (its pin dir and state).
ml_fl_local() {
    local h=$1
    shift
    nsenter --net="$NETNS_DIR/$(ml_fl_ns "$h")" -- "$SMTPFENCE" --pin-dir "$(ml_fl_pin_dir "$h")" \
        --state-dir "$(ml_fl_state_dir "$h")" "$@"
}
# ml_fl_connects HOST: a TCP connection from the monitoring system to HOST's
# SMTP port succeeds (the 220 banner needs no more than the handshake).
ml_fl_connects() {
    ip netns exec "$(ml_fl_ns mon)" "$TCPPROBE" connect --src "$ML_FL_MON" --timeout-ms "$ML_FL_PROBE_MS" \
        "${ML_FL_IP[$1]}" "${ML_FL_PORT[$1]}" >/dev/null 2>&1
}
# ml_fl_check_reach HOST DROPPED_DESC ACCEPTS_DESC: one probe from the
# monitoring system to HOST, checked against the submission block: a
# submission host must drop it, every other host accept it.
ml_fl_check_reach() {
    local h=$1 seen=blocked want=connects desc=$3
    ml_fl_connects "$h" && seen=connects
    if [[ ${ML_FL_ROLE[$h]} == submission ]]; then
        want=blocked desc=$2
    fi
    ml_check "$desc" "$want" "$seen" "$([[ $seen == "$want" ]] && echo 1 || echo 0)"
}
# ml_fl_rule HOST CIDR JQ: a field of HOST's fleet rule for CIDR ("" if none).
ml_fl_rule() {
    ml_fl_local "$1" list --json 2>/dev/null |
        jq -r --arg c "$2" ".rules[] | select(.cidr == \$c and .set == \"fleet\") | $3"
}
ml_fl_alive() { ml_fl_cli status --json 2>/dev/null | jq -r '[.hosts[] | select(.alive) | .host] | sort | join(" ")'; }
ml_fl_all_alive() { [[ $(ml_fl_alive) == "central1 mx1 sub1 sub2" ]]; }
ml_fl_all_in_sync() {
    ml_fl_cli status --json 2>/dev/null |
        jq -e '[.hosts[] | select(.alive and .store_connected and .in_sync)] | length == 4' >/dev/null
}
# ml_fl_agent_connected HOST: "true" or "false", from STATE_DIR/fleet-agent.json.
ml_fl_agent_connected() { jq -r '.connected' "$(ml_fl_state_dir "$1")/fleet-agent.json" 2>/dev/null; }
ml_fl_all_connected() {
    local h
    for h in "${ML_FL_HOSTS[@]}"; do [[ $(ml_fl_agent_connected "$h") == true ]] || return 1; done
}
ml_fl_all_disconnected() {
    local h
    for h in "${ML_FL_HOSTS[@]}"; do [[ $(ml_fl_agent_connected "$h") == false ]] || return 1; done
}
# ml_fl_queued_for TAG: messages in the monitoring MTA's queue for TAG@.
ml_fl_queued_for() {
    ml_pf_queue_json mon | jq -s --arg t "$1@" '[.[] | select(any(.recipients[]; .address | startswith($t)))] | length'
}
ml_fl_delivered() { ML_RECEIVER=$1 ml_delivered "$2"; }
ml_fl_delivered_at_least() { ML_RECEIVER=$1 ml_delivered_at_least "$2" "$3"; }
ml_fl_pre_delivered() {
    local h
    for h in "${ML_FL_HOSTS[@]}"; do ml_fl_delivered_at_least "$h" "pre-$h" "$ML_FL_PRE" || return 1; done
}
ml_fl_no_rule_anywhere() {
    local h
    for h in "${ML_FL_HOSTS[@]}"; do [[ -z $(ml_fl_rule "$h" "$1" .action) ]] || return 1; done
}
ml_fl_remove_pins() {
    local h
    for h in "${ML_FL_HOSTS[@]}"; do rm -rf -- "$(ml_fl_pin_dir "$h")"; done
}

# ml_fl_setup: the etcd cluster (TLS, auth), the admin, four mail hosts with
# Postfix and the agent, the monitoring system and its Postfix.
ml_fl_setup() {
    # etcd.sh's own cleanup: etcd members first (SIGKILL), its tmpfs data,
    # leftovers of fleet runs killed with SIGKILL. (fleet_begin does this only
    # when it begins the harness run; here the lab began it.)
    trap fleet_cleanup EXIT
    harness_on_cleanup _fleet_cleanup
    harness_on_cleanup ml_fl_remove_pins
    fleet_reap_stale
    local t0
    t0=$(ml_now_ms)
    fleet_lan_create
    etcd_cluster_start 3
    etcd_enable_auth || ml_die "etcd: enabling auth failed"
    ml_say "etcd: 3 members with TLS and auth in $(ml_secs $(($(ml_now_ms) - t0))) s"
    t0=$(ml_now_ms)
    fleet_admin_config "$ML_TMP/fleet-admin.conf"
    fleet_ns_join "$(ml_fl_ns mon)" "$ML_FL_MON" || ml_die "cannot put the monitoring system on the fleet LAN"
    local h d ns transport=$ML_TMP/fleet-transport
    : >"$transport"
    for h in "${ML_FL_HOSTS[@]}"; do
        ns=$(ml_fl_ns "$h")
        fleet_ns_join "$ns" "${ML_FL_IP[$h]}" || ml_die "cannot put $h on the fleet LAN"
        etcd_add_agent "$h" || ml_die "etcd: user of $h"
        # Postfix: the lab's receiving instance, listening on the host's LAN
        # address and its one SMTP port.
        ml_pf_create "$h" "$ns" receiver
        d=$(ml_pf_dir "$h")
        ml_pf_set "$h" "inet_interfaces = ${ML_FL_IP[$h]}"
        if [[ ${ML_FL_PORT[$h]} == 587 ]]; then
            postconf -c "$d/etc" -MX 25/inet
        else
            postconf -c "$d/etc" -MX 587/inet
        fi
        # The agent: its own config, pin dir and state directory.
        fleet_agent_config "$ML_TMP/fleet-$h.conf" "$h" "${ML_FL_ROLE[$h]}" "$(ml_fl_pin_dir "$h")" \
            "$(ml_fl_state_dir "$h")"
        nsenter --net="$NETNS_DIR/$ns" -- setpriv --pdeathsig TERM -- \
            "$SMTPFENCE" agent --config "$ML_TMP/fleet-$h.conf" >>"$ML_TMP/fleet-agent-$h.log" 2>&1 &
        ML_FL_AGENT[$h]=$!
        harness_track "${ML_FL_AGENT[$h]}"
        echo "pre-$h@$ML_DOMAIN smtp:[${ML_FL_IP[$h]}]:${ML_FL_PORT[$h]}" >>"$transport"
        echo "st-$h@$ML_DOMAIN smtp:[${ML_FL_IP[$h]}]:${ML_FL_PORT[$h]}" >>"$transport"
    done
    # The monitoring system's MTA: every alert goes straight to its host.
    ml_pf_create mon "$(ml_fl_ns mon)" sender
    ml_pf_set mon "relayhost =" "transport_maps = texthash:$transport" "smtp_bind_address = $ML_FL_MON"
    # The five Postfix instances start at once (`postfix start` takes a
    # second or two each); their masters run in the namespaces, so the
    # cleanup ends them like every other process there.
    local pids=() i names=(mon "${ML_FL_HOSTS[@]}")
    for h in "${names[@]}"; do
        ml_pf_start "$h" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[i]}" || ml_die "Postfix instance ${names[i]} did not start: $(tail -5 "$(ml_pf_log "${names[i]}")" 2>/dev/null)"
    done
    ml_say "4 mail hosts (etcd users, agents) and 5 Postfix instances in $(ml_secs $(($(ml_now_ms) - t0))) s"
    for h in "${ML_FL_HOSTS[@]}"; do
        ml_wait 10 ml_fl_connects "$h" || ml_die "Postfix on $h (${ML_FL_IP[$h]}:${ML_FL_PORT[$h]}) does not answer"
    done
}

# ml_scenario_fleet: see the top of this file.
ml_scenario_fleet() {
    ml_scenario_begin fleet "four mail hosts, one rule set through etcd (3 members, TLS): block by role, etcd away, etcd back"
    ml_fl_require
    local t0 h rc out ok
    t0=$(ml_now_ms)
    ml_fl_setup
    local t1
    t1=$(ml_now_ms)
    ml_wait 20 ml_fl_all_alive
    ml_say "every agent alive in fleet status after $(ml_secs $(($(ml_now_ms) - t1))) s"
    ml_check "fleet status: every agent alive" "central1 mx1 sub1 sub2" "$(ml_fl_alive)" \
        "$(ml_fl_all_alive && echo 1 || echo 0)"
    local t_setup=$(($(ml_now_ms) - t0))
    ml_say "etcd ${ETCD_ENDPOINTS//https:\/\//}; hosts: $(for h in "${ML_FL_HOSTS[@]}"; do printf '%s (%s) %s:%s  ' "$h" "${ML_FL_ROLE[$h]}" "${ML_FL_IP[$h]}" "${ML_FL_PORT[$h]}"; done)"
    ml_say "monitoring system $ML_FL_MON (its own Postfix); set up in $(ml_secs "$t_setup") s"

    # The storm before any rule: every host accepts it.
    local mon_mark
    mon_mark=$(ml_log_lines mon)
    for h in "${ML_FL_HOSTS[@]}"; do
        ml_inject mon "pre-$h" "$ML_FL_PRE" 2>/dev/null || ml_die "injecting alerts into the monitoring MTA failed"
    done
    ml_say "the monitoring system sends $ML_FL_PRE alerts to each host"
    ml_wait 30 ml_fl_pre_delivered
    ml_wait 10 ml_pf_queue_empty mon
    for h in "${ML_FL_HOSTS[@]}"; do
        read -r ok _ < <(ml_fl_delivered "$h" "pre-$h")
        ml_check "$h: alerts accepted before any rule" "$ML_FL_PRE" "$ok" $((ok == ML_FL_PRE))
    done

    # The block, by role: the command waits until the targeted hosts applied it.
    local t_block applied
    t0=$(ml_now_ms)
    ml_fl_shown block "$ML_FL_MON/32" --role submission --reason "monitoring storm on the submission port"
    rc=$?
    t_block=$(($(ml_now_ms) - t0))
    out=$(<"$ML_TMP/fleet-cli.out")
    ml_check "fleet block $ML_FL_MON/32 --role submission" "exit 0" "exit $rc" $((rc == 0))
    applied=$(grep -oE '^ *(mx1|sub1|sub2|central1): applied' <<<"$out" | awk -F: '{print $1}' | tr -d ' ' | sort | xargs)
    ml_check "it reports sub1 and sub2 applied, no other host" "sub1 sub2" "$applied" \
        "$([[ $applied == "sub1 sub2" ]] && echo 1 || echo 0)"
    ml_say "the command returned after $t_block ms, once both submission hosts had applied the rule"
    for h in "${ML_FL_HOSTS[@]}"; do
        ml_fl_check_reach "$h" "$h (${ML_FL_ROLE[$h]}): the monitoring system's SYN dropped" \
            "$h (${ML_FL_ROLE[$h]}): still accepts the monitoring system"
    done

    # The storm while blocked: mx1 and central1 take it; the submission
    # hosts' share waits, deferred, in the monitoring system's queue.
    mon_mark=$(ml_log_lines mon)
    for h in "${ML_FL_HOSTS[@]}"; do
        ml_inject mon "st-$h" "$ML_FL_STORM" 2>/dev/null || ml_die "injecting alerts into the monitoring MTA failed"
    done
    ml_say "the storm: $ML_FL_STORM more alerts to each host"
    local blocked_n=$((2 * ML_FL_STORM))
    ml_wait 30 ml_fl_delivered_at_least mx1 st-mx1 "$ML_FL_STORM"
    ml_wait 30 ml_fl_delivered_at_least central1 st-central1 "$ML_FL_STORM"
    ml_wait 30 ml_deferred_msgs_is mon "$mon_mark" "$blocked_n"
    for h in mx1 central1; do
        read -r ok _ < <(ml_fl_delivered "$h" "st-$h")
        ml_check "$h: storm alerts accepted while sub1/sub2 block" "$ML_FL_STORM" "$ok" $((ok == ML_FL_STORM))
    done
    local q
    for h in sub1 sub2; do
        q=$(ml_fl_queued_for "st-$h")
        ml_check "$h: its alerts wait in the monitoring MTA's queue" "$ML_FL_STORM" "$q" $((q == ML_FL_STORM))
        read -r ok _ < <(ml_fl_delivered "$h" "st-$h")
        ml_check "$h: storm alerts delivered while blocked" 0 "$ok" $((ok == 0))
    done
    ml_check "monitoring MTA: alerts deferred (log)" "$blocked_n" "$(ml_deferred_msgs mon "$mon_mark")" \
        $(($(ml_deferred_msgs mon "$mon_mark") == blocked_n))
    ml_say "the monitoring MTA's queue: $(ml_pf_queue_count mon) alerts ($(ml_log_since mon "$mon_mark" | grep -o 'status=deferred ([^)]*)' | sed -E 's/\(connect to [^)]*: /(/' | sort | uniq -c | sort -rn | head -2 | awk '{c=$1; $1=""; printf "%s%d x%s", (NR>1?"; ":""), c, $0}'))"

    ml_say "the admin's one spot:"
    ml_fl_shown status
    rc=$?
    local rows
    rows=$(grep -cE '^ *(mx1|sub1|sub2|central1) +[a-z]+ +yes ' "$ML_TMP/fleet-cli.out")
    ml_check "fleet status: a row per host, every one alive" 4 "$rows" $((rc == 0 && rows == 4))

    # etcd away: every member stopped.
    local t_down t_stop outage_ms mon_mark2
    t0=$(ml_now_ms)
    for k in 1 2 3; do etcd_member_stop "$k" || etcd_member_kill "$k"; done
    t_stop=$(($(ml_now_ms) - t0))
    t_down=$(ml_now_ms)
    ml_say "etcd: all 3 members stopped (SIGTERM) in $(ml_secs "$t_stop") s"
    ml_wait 30 ml_fl_all_disconnected
    ml_check "agents record the outage (fleet-agent.json .connected)" "false x4" \
        "$(for h in "${ML_FL_HOSTS[@]}"; do ml_fl_agent_connected "$h"; done | sort | uniq -c | awk '{printf "%s%s x%d", (NR>1?", ":""), $2, $1}')" \
        "$(ml_fl_all_disconnected && echo 1 || echo 0)"
    ml_say "sub1's status after $(ml_secs $(($(ml_now_ms) - t_down))) s: $(ml_fl_local sub1 status | grep -E '^fleet:|store is unreachable' | sed 's/^ *//' | tr '\n' ' ')"
    printf '   %s# smtpfence status%s (on sub1)\n' "$HARNESS_C_B" "$HARNESS_C_OFF"
    ml_fl_local sub1 status 2>&1 | sed 's/^/     /'
    rc=${PIPESTATUS[0]}
    ml_check "sub1: local smtpfence status with etcd away" "exit 0" "exit $rc" $((rc == 0))
    # The blocks hold: the submission hosts still drop the monitoring system
    # (its retries keep being deferred), the others still accept it.
    mon_mark2=$(ml_log_lines mon)
    ml_pf_flush mon
    ml_wait 20 ml_log_at_least mon "$mon_mark2" 'status=deferred' 2
    for h in "${ML_FL_HOSTS[@]}"; do
        ml_fl_check_reach "$h" "etcd away: $h still drops it" "etcd away: $h still accepts it"
    done
    ml_check "etcd away: retries deferred, none delivered to sub1/sub2" "0 delivered" \
        "$(($(ml_fl_delivered sub1 st-sub1 | cut -d' ' -f1) + $(ml_fl_delivered sub2 st-sub2 | cut -d' ' -f1))) delivered, $(ml_log_count mon "$mon_mark2" 'status=deferred') deferrals" \
        $(($(ml_fl_delivered sub1 st-sub1 | cut -d' ' -f1) + $(ml_fl_delivered sub2 st-sub2 | cut -d' ' -f1) == 0))
    local dropped_sub1 dropped_sub2
    dropped_sub1=$(ml_fl_rule sub1 "$ML_FL_MON/32" .dropped)
    dropped_sub2=$(ml_fl_rule sub2 "$ML_FL_MON/32" .dropped)

    # etcd back; a change right after converges everywhere.
    local t_restart t_conv
    t0=$(ml_now_ms)
    etcd_cluster_restart
    rc=$?
    t_restart=$(($(ml_now_ms) - t0))
    outage_ms=$(($(ml_now_ms) - t_down))
    ml_check "etcd: all 3 members back and healthy" "exit 0" "exit $rc" $((rc == 0))
    ml_say "etcd back in $(ml_secs "$t_restart") s (down $(ml_secs "$outage_ms") s in all)"
    t0=$(ml_now_ms)
    # An agent that lost the store retries with a backoff of up to 5 s plus
    # jitter: more than the CLI's default wait of 2 s right after an outage.
    ml_fl_shown remove "$ML_FL_MON/32" --role submission --wait 15s
    rc=$?
    ml_check "fleet remove $ML_FL_MON/32 --role submission (etcd just back)" "exit 0" "exit $rc" $((rc == 0))
    ml_wait 30 ml_fl_no_rule_anywhere "$ML_FL_MON/32"
    t_conv=$(($(ml_now_ms) - t0))
    # fleet status learns it from each host's periodic report (every 10 s).
    ml_wait 30 ml_fl_all_in_sync
    local t_sync=$(($(ml_now_ms) - t0))
    ml_check "the removal reached every host" "no rule on 4 hosts" \
        "$(ml_fl_no_rule_anywhere "$ML_FL_MON/32" && echo "no rule on 4 hosts" || echo "still on some")" \
        "$(ml_fl_no_rule_anywhere "$ML_FL_MON/32" && echo 1 || echo 0)"
    ml_check "fleet status: every host alive, connected, in sync" "4 hosts" \
        "$(ml_fl_cli status --json 2>/dev/null | jq '[.hosts[] | select(.alive and .store_connected and .in_sync)] | length') hosts" \
        "$(ml_fl_all_in_sync && echo 1 || echo 0)"
    ml_wait 15 ml_fl_all_connected
    ml_check "agents record the store again (fleet-agent.json .connected)" "true x4" \
        "$(for h in "${ML_FL_HOSTS[@]}"; do ml_fl_agent_connected "$h"; done | sort | uniq -c | awk '{printf "%s%s x%d", (NR>1?", ":""), $2, $1}')" \
        "$(ml_fl_all_connected && echo 1 || echo 0)"
    ml_say "the rule was gone from every host's kernel $(ml_secs "$t_conv") s after the command; fleet status showed every host in sync after $(ml_secs "$t_sync") s"

    # The deferred alerts arrive.
    local t_drain
    t0=$(ml_now_ms)
    ml_pf_flush mon
    ml_wait 60 ml_fl_delivered_at_least sub1 st-sub1 "$ML_FL_STORM"
    ml_wait 60 ml_fl_delivered_at_least sub2 st-sub2 "$ML_FL_STORM"
    ml_wait 20 ml_pf_queue_empty mon
    t_drain=$(($(ml_now_ms) - t0))
    ml_say "the monitoring MTA's queue drained in $(ml_secs "$t_drain") s"
    local copies unique bounced
    bounced=$(ml_bounced mon 0)
    for h in "${ML_FL_HOSTS[@]}"; do
        read -r copies unique < <(ml_fl_delivered "$h" "st-$h")
        ml_check "$h: storm alerts delivered, each once" "$ML_FL_STORM x1" "$unique unique, $copies copies" \
            $((unique == ML_FL_STORM && copies == ML_FL_STORM))
    done
    ml_check "monitoring MTA: bounced, queue" "0, 0" "$bounced, $(ml_pf_queue_count mon)" \
        "$( ((bounced == 0)) && ml_pf_queue_empty mon && echo 1 || echo 0)"

    ml_fl_shown status
    printf '   %s# smtpfence fleet status --json%s | jq (per host)\n' "$HARNESS_C_B" "$HARNESS_C_OFF"
    ml_fl_cli status --json 2>/dev/null |
        jq -r '.hosts[] | "     \(.host): roles \(.roles | join(",")), alive \(.alive), store_connected \(.store_connected), in_sync \(.in_sync), fleet_rules \(.fleet_rules), syn_dropped \(.syn_dropped)"'

    # Rows: one per host (alerts before + during the storm).
    local sent=$((ML_FL_PRE + ML_FL_STORM)) pre st note
    for h in "${ML_FL_HOSTS[@]}"; do
        read -r _ pre < <(ml_fl_delivered "$h" "pre-$h")
        read -r _ st < <(ml_fl_delivered "$h" "st-$h")
        if [[ ${ML_FL_ROLE[$h]} == submission ]]; then
            local dr=$dropped_sub1
            [[ $h == sub2 ]] && dr=$dropped_sub2
            note="$ML_FL_STORM deferred while blocked (etcd down $(ml_secs "$outage_ms") s of it), arrived after fleet remove"
            ml_row fleet "$h ${ML_FL_ROLE[$h]}:${ML_FL_PORT[$h]}" msgs "$sent" "$ML_FL_STORM" "$((pre + st))" "${dr:-?}" "$bounced" \
                "$(ml_secs "$t_drain") s" "$note"
        else
            ml_row fleet "$h ${ML_FL_ROLE[$h]}:${ML_FL_PORT[$h]}" msgs "$sent" 0 "$((pre + st))" - 0 - "not targeted: accepted throughout"
        fi
    done
    ml_row fleet "etcd outage" - - - - - - "$(ml_secs "$outage_ms") s" \
        "3 members stopped: blocks held; back in $(ml_secs "$t_restart") s, fleet remove converged in $(ml_secs "$t_conv") s"

    # Leave the lab as found: the fleet's Postfix instances and agents stop
    # (etcd, namespaces and pins go at cleanup).
    for h in mon "${ML_FL_HOSTS[@]}"; do ml_pf_stop "$h"; done
    local pids=()
    for h in "${ML_FL_HOSTS[@]}"; do pids+=("${ML_FL_AGENT[$h]}"); done
    harness_end_pids "${pids[@]}"
    for h in "${pids[@]}"; do _etcd_untrack "$h"; done
    ml_say "scenario fleet: $(ml_secs "$(ml_scenario_ms)") s"
}
