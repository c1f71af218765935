# shellcheck shell=bash disable=SC2034 # ML_SCENARIO etc. are read by mail.sh
# The mail lab's scenarios, sourced after scripts/lab/mail.sh by scripts/lab.sh
# (all of them, one topology) and by tests/mta/test_*.sh (one each). Every
# scenario narrates what it does, records checks with ml_check and one or more
# rows of the summary table with ml_row, and leaves the lab as it found it (no
# rule in force, queues empty), so that scenarios can follow each other.

# ml_scenario_begin NAME TITLE
ml_scenario_begin() {
    ML_SCENARIO=$1
    ML_SC_T0=$(ml_now_ms)
    printf '\n%s== scenario "%s": %s%s\n' "$HARNESS_C_B" "$1" "$2" "$HARNESS_C_OFF"
}
ml_scenario_ms() { echo $(($(ml_now_ms) - ML_SC_T0)); }

# ml_sender NAME NS: a sending Postfix instance, stopped, its queue laid out
# (created, started and stopped once; stopped if it runs).
ml_sender() {
    local name=$1 ns=$2
    if [[ -z ${ML_INST_NS[$name]:-} ]]; then
        ml_pf_create "$name" "$ns" sender
        ml_pf_start "$name" || ml_die "Postfix instance $name did not start: $(tail -5 "$(ml_pf_log "$name")" 2>/dev/null)"
    fi
    ml_pf_stop "$name"
}

# ml_backlog NAME TAG N: N messages queued in instance NAME while it is
# stopped (sendmail drops them into its maildrop); ml_pf_start releases them
# all at once, like an upstream that comes back with its backlog.
ml_backlog() {
    local name=$1 tag=$2 n=$3 t0
    t0=$(ml_now_ms)
    ml_inject "$name" "$tag" "$n" 2>/dev/null || ml_die "injecting $n messages into $name failed"
    ml_wait 30 ml_maildrop_is "$name" "$n" || ml_die "$name's maildrop holds $(ml_maildrop_count "$name") messages, expected $n"
    ml_say "$name: $n messages queued while its Postfix is down ($(ml_secs $(($(ml_now_ms) - t0))) s)"
}
ml_maildrop_count() { find "$ML_TMP/$1/spool/maildrop" -type f 2>/dev/null | wc -l; }
ml_maildrop_is() { [[ $(ml_maildrop_count "$1") -eq $2 ]]; }
# ml_release NAME: start the instance; everything queued goes at once.
ml_release() {
    ml_pf_start "$1" || ml_die "Postfix instance $1 did not start: $(tail -5 "$(ml_pf_log "$1")" 2>/dev/null)"
}
ml_queue_is() { [[ $(ml_pf_queue_count "$1") -eq $2 ]]; }

# ml_check_delivered TAG N: every one of the N messages arrived, exactly once.
ml_check_delivered() {
    local copies unique
    read -r copies unique < <(ml_delivered "$1")
    ml_check "$1: messages delivered (unique Message-IDs)" "$2" "$unique" $((unique == $2))
    ml_check "$1: copies delivered (no duplicates)" "$2" "$copies" $((copies == $2))
}

# ml_bounced NAME MARK: status=bounced lines in NAME's log since MARK.
ml_bounced() { ml_log_count "$1" "$2" 'status=bounced'; }
# ml_deferred_msgs NAME MARK: messages (queue IDs) deferred at least once
# since MARK, by NAME's log.
ml_deferred_msgs() {
    ml_log_since "$1" "$2" | awk '/status=deferred/ { sub(":", "", $6); if (!seen[$6]++) n++ } END { print n + 0 }'
}
ml_deferred_msgs_is() { [[ $(ml_deferred_msgs "$1" "$2") -ge $3 ]]; }

# ------------------------------------------------------------ storm

# ml_scenario_storm: a storm of connections from 50 addresses, blocked by the
# admin; the legitimate client's mail is accepted every time; the storm
# host's own MTA (50 alerts) is deferred during the block and drains after it.
ML_STORM_BEFORE=10   # attempts per storm address before the block (1 s)
ML_STORM_DURING=40   # attempts per storm address while blocked (4 s)
ML_STORM_ALERTS=50
ML_CLIENT_MSGS=10
ml_scenario_storm() {
    ml_scenario_begin storm "a connection storm from ${#ML_STORM_ADDRS[@]} sources, blocked at once"
    local n_addr=${#ML_STORM_ADDRS[@]} ok fail mx_mark storm_mark i rc
    local before=$((n_addr * ML_STORM_BEFORE)) during=$((n_addr * ML_STORM_DURING))

    ml_sender storm "$ML_NS_STORM"
    ml_backlog storm alert "$ML_STORM_ALERTS"

    # The client's latency with no storm, as a baseline.
    local base_sum=0
    for i in 1 2 3; do
        ml_swaks "$ML_NS_CLIENT" "$ML_MX" 25 baseline "$i" || ml_die "the client cannot send mail: $(tail -3 "$ML_TMP/swaks.baseline.$i.out")"
        base_sum=$((base_sum + ML_LAT_MS))
    done
    ml_say "client latency without a storm: $((base_sum / 3)) ms per message (swaks start-up included)"

    ml_say "the storm starts: $n_addr sources x $ML_STORM_BEFORE connections in 1 s to $ML_MX_B:25"
    ml_flood "$ML_NS_STORM" "$ML_MX_B" 25 "$ML_STORM_BEFORE" 100 300 "$ML_TMP/flood1" "${ML_STORM_ADDRS[@]}"
    wait "$ML_FLOOD_PID"
    read -r ok fail < <(ml_flood_result "$ML_TMP/flood1")
    ml_say "before the block: $ok of $before connected"
    ml_check "storm connects before the block" "$before" "$ok" $((ok == before))
    ml_row storm "flood, no rule" conns "$before" - "$ok" - - "1.0 s" "Postfix accepts them all"

    local t0 t_block
    t0=$(ml_now_ms)
    ml_fence_shown block "$ML_STORM_NET" --reason "notifier storm"
    rc=$?
    t_block=$(($(ml_now_ms) - t0))
    ml_check "block $ML_STORM_NET" "exit 0" "exit $rc" $((rc == 0))
    ml_say "the block took $t_block ms (from the command to the next packet)"

    mx_mark=$(ml_log_lines mx)
    storm_mark=$(ml_log_lines storm)
    ml_say "the storm goes on: $n_addr sources x $ML_STORM_DURING connections in 4 s; its MTA releases $ML_STORM_ALERTS alerts; the client sends $ML_CLIENT_MSGS messages"
    ml_flood "$ML_NS_STORM" "$ML_MX_B" 25 "$ML_STORM_DURING" 100 300 "$ML_TMP/flood2" "${ML_STORM_ADDRS[@]}"
    local flood_pid=$ML_FLOOD_PID
    ml_release storm
    local lat_sum=0 lat_max=0 accepted=0 port
    for ((i = 1; i <= ML_CLIENT_MSGS; i++)); do
        port=$((i % 2 ? 25 : 587))
        if ml_swaks "$ML_NS_CLIENT" "$ML_MX" "$port" client "$i"; then
            accepted=$((accepted + 1))
        else
            ml_say "client message $i on port $port failed: $(tail -2 "$ML_TMP/swaks.client.$i.out" | tr '\n' ' ')"
        fi
        lat_sum=$((lat_sum + ML_LAT_MS))
        ((ML_LAT_MS > lat_max)) && lat_max=$ML_LAT_MS
        sleep 0.2
    done
    local ssh_out ssh_rc
    ssh_out=$(ip netns exec "$ML_NS_STORM" "$TCPPROBE" connect --src "${ML_STORM_ADDRS[1]}" --timeout-ms 1000 "$ML_MX_B" 22 2>&1)
    ssh_rc=$?
    wait "$flood_pid"
    read -r ok fail < <(ml_flood_result "$ML_TMP/flood2")
    local dropped
    dropped=$(ml_rule "$ML_STORM_NET" .dropped)
    ml_say "while blocked: $ok of $during storm connections got through; the rule dropped $dropped SYNs"
    ml_say "client: $accepted of $ML_CLIENT_MSGS accepted (25 and 587), latency avg $((lat_sum / ML_CLIENT_MSGS)) ms, max $lat_max ms"
    ml_check "storm connects while blocked" 0 "$ok" $((ok == 0))
    ml_check "storm sessions at the mail host while blocked (smtpd log)" 0 \
        "$(ml_log_count mx "$mx_mark" ': connect from [^ ]*\[203\.0\.113\.')" \
        "$(($(ml_log_count mx "$mx_mark" ': connect from [^ ]*\[203\.0\.113\.') == 0))"
    ml_check "client messages accepted while the storm is blocked" "$ML_CLIENT_MSGS" "$accepted" $((accepted == ML_CLIENT_MSGS))
    ml_check "storm's ssh (22) still connects while blocked" "connects" \
        "$( ((ssh_rc == 0)) && echo connects || echo "fails: ${ssh_out//$'\n'/ }")" $((ssh_rc == 0))
    ml_check "rule dropped at least the storm's SYNs" ">= $during" "$dropped" $((dropped >= during))

    # The storm's MTA: its alerts wait in its queue, deferred, not bounced.
    ml_wait 30 ml_deferred_msgs_is storm "$storm_mark" "$ML_STORM_ALERTS"
    local queued deferred_n
    queued=$(ml_pf_queue_count storm)
    deferred_n=$(ml_deferred_msgs storm "$storm_mark")
    ml_say "the storm's MTA: $queued alerts in its queue, $deferred_n deferred ($(ml_log_since storm "$storm_mark" | grep -o 'status=deferred ([^)]*)' | sort | uniq -c | sort -rn | head -2 | awk '{c=$1; $1=""; printf "%s%d x%s", (NR>1?"; ":""), c, $0}')), $(ml_bounced storm "$storm_mark") bounced"
    ml_check "storm MTA's alerts wait in its queue during the block" "$ML_STORM_ALERTS" "$queued" $((queued == ML_STORM_ALERTS))
    ml_check "storm MTA's alerts deferred (log)" "$ML_STORM_ALERTS" "$deferred_n" $((deferred_n == ML_STORM_ALERTS))

    t0=$(ml_now_ms)
    ml_fence_shown remove "$ML_STORM_NET"
    ml_pf_flush storm
    ml_wait 60 ml_delivered_at_least alert "$ML_STORM_ALERTS"
    ml_wait 20 ml_pf_queue_empty storm
    local drain=$(($(ml_now_ms) - t0))
    ml_say "after the unblock the storm's queue drained in $(ml_secs "$drain") s"
    ml_check_delivered alert "$ML_STORM_ALERTS"
    local bounced
    bounced=$(ml_bounced storm "$storm_mark")
    ml_check "storm MTA: bounced" 0 "$bounced" $((bounced == 0))
    ml_pf_stop storm
    ml_wait 20 ml_delivered_at_least client "$ML_CLIENT_MSGS"
    ml_check_delivered client "$ML_CLIENT_MSGS"

    ml_row storm "flood, blocked" conns "$during" - "$ok" "$dropped" - "4.0 s" "SYNs dropped by the rule (flood + the MTA's retries)"
    ml_row storm "alert MTA" msgs "$ML_STORM_ALERTS" "$queued" "$(ml_delivered alert | cut -d' ' -f2)" - "$bounced" \
        "$(ml_secs "$drain") s" "deferred while blocked, drained after remove"
    ml_row storm "legit client" msgs "$ML_CLIENT_MSGS" 0 "$(ml_delivered client | cut -d' ' -f2)" - 0 - \
        "latency avg $((lat_sum / ML_CLIENT_MSGS)) ms, max $lat_max ms (no storm: $((base_sum / 3)) ms)"
}
ml_log_has() { (($(ml_log_count "$1" "$2" "$3") > 0)); }

# ------------------------------------------------------------ unclogged upstream

# ml_scenario_upstream N RATE REUSE: the relay holds N messages and is
# released while `limit RELAY_NET --rate RATE/s --per rule` is in force.
# REUSE=yes is Postfix's default (sessions are reused for a backlog), REUSE=no
# makes every message open its own connection.
ml_scenario_upstream() {
    local n=$1 rate=$2 reuse=$3 tag
    tag=up$([[ $reuse == no ]] && echo 1conn || echo reuse)
    ml_scenario_begin "upstream/$reuse-reuse" "the upstream relay unclogs $n messages under limit --rate $rate/s --per rule ($([[ $reuse == yes ]] && echo "Postfix default: sessions reused" || echo "one message per connection"))"
    ml_sender relay "$ML_NS_RELAY"
    # A dropped SYN is retried by the relay's kernel after 1, 3 and 7 s:
    # 10 s gives each connection those chances (Postfix's default is 30 s).
    ml_pf_set relay "smtp_connect_timeout = 10s" \
        "smtp_connection_cache_on_demand = $([[ $reuse == no ]] && echo no || echo yes)"
    ml_backlog relay "$tag" "$n"

    local t_limit rc
    ml_fence_shown limit "$ML_RELAY_NET" --rate "$rate/s" --per rule --reason "upstream unloading its backlog"
    rc=$?
    t_limit=$(ml_now_ms)
    ml_check "limit $ML_RELAY_NET --rate $rate/s --per rule" "exit 0" "exit $rc" $((rc == 0))
    local burst
    burst=$(ml_rule "$ML_RELAY_NET" .limit.burst)
    [[ $burst =~ ^[0-9]+$ ]] || burst=$rate

    local mx_mark relay_mark t0
    mx_mark=$(ml_log_lines mx)
    relay_mark=$(ml_log_lines relay)
    t0=$(ml_now_ms)
    ml_say "starting the relay: its backlog goes at once"
    ml_release relay
    local timeout=$((n * 4 / rate + 60))
    ml_wait "$timeout" ml_delivered_at_least "$tag" "$n"
    ml_wait 20 ml_pf_queue_empty relay
    local t1 drain elapsed_ms
    t1=$(ml_now_ms)
    drain=$((t1 - t0))
    elapsed_ms=$((t1 - t_limit))

    local conns allowed rate_dropped matched bounced deferred max_sec
    conns=$(ml_log_count mx "$mx_mark" ": connect from [^ ]*\\[${ML_RELAY//./\\.}\\]")
    allowed=$(ml_rule "$ML_RELAY_NET" .limit.allowed)
    rate_dropped=$(ml_rule "$ML_RELAY_NET" .limit.rate_dropped)
    matched=$(ml_rule "$ML_RELAY_NET" .matched)
    bounced=$(ml_bounced relay "$relay_mark")
    deferred=$(ml_log_count relay "$relay_mark" 'status=deferred')
    local deferred_msgs
    deferred_msgs=$(ml_deferred_msgs relay "$relay_mark")
    # The busiest second of new connections, from the receiver's log.
    max_sec=$(ml_log_since mx "$mx_mark" | grep -E ": connect from [^ ]*\\[${ML_RELAY//./\\.}\\]" |
        awk '{print $3}' | sort | uniq -c | sort -rn | awk 'NR==1{print $1+0}')
    max_sec=${max_sec:-0}
    # GCRA: at most burst + rate x elapsed admissions since the rule was made.
    local bound=$((burst + (rate * elapsed_ms + 999) / 1000))
    local theo_ms=$(((n > burst ? n - burst : 0) * 1000 / rate))
    local copies unique
    read -r copies unique < <(ml_delivered "$tag")
    ml_say "delivered $unique of $n (copies $copies) in $(ml_secs "$drain") s over $conns connections; $(awk -v n="$n" -v d="$drain" 'BEGIN{printf "%.1f", n*1000/(d?d:1)}') msg/s, $(awk -v c="$conns" -v d="$drain" 'BEGIN{printf "%.1f", c*1000/(d?d:1)}') conn/s (busiest second: $max_sec)"
    ml_say "smtpfence: matched $matched SYNs, allowed $allowed, dropped by rate $rate_dropped; bound burst + rate x elapsed = $burst + $rate x $(ml_secs "$elapsed_ms") s = $bound"
    ml_say "theoretical minimum if every message needed its own connection: ($n - $burst)/$rate = $(ml_secs "$theo_ms") s; with $conns connections: $(ml_secs $(((conns > burst ? conns - burst : 0) * 1000 / rate))) s"
    ml_say "relay: $deferred_msgs messages deferred at least once ($deferred deferrals: a connection not admitted within smtp_connect_timeout, and the messages queued behind it), $bounced bounced"
    ml_check_delivered "$tag" "$n"
    ml_check "relay: bounced" 0 "$bounced" $((bounced == 0))
    ml_check "relay: queue empty after the drain" 0 "$(ml_pf_queue_count relay)" "$(ml_queue_is relay 0 && echo 1 || echo 0)"
    ml_check "new connections within burst + rate x elapsed" "<= $bound" "$conns" $((conns <= bound))
    ml_check "SYNs admitted by the limit within the bound" "<= $bound" "$allowed" $((allowed <= bound))
    ml_check "connections at the receiver = SYNs admitted" "$allowed" "$conns" "$([[ $conns == "$allowed" ]] && echo 1 || echo 0)"
    # A limit that did nothing would pass the bounds whenever the relay
    # happened to stay under them: it must have dropped SYNs.
    ml_check "the limit engaged: SYNs dropped by rate" "> 0" "$rate_dropped" \
        "$([[ $rate_dropped =~ ^[0-9]+$ ]] && ((rate_dropped > 0)) && echo 1 || echo 0)"
    if [[ $reuse == no ]]; then
        ml_check "the limit bit: drain took at least (N - burst)/rate" ">= $(ml_secs "$theo_ms") s" "$(ml_secs "$drain") s" $((drain >= theo_ms))
    fi
    ml_fence_shown list
    ml_fence_shown remove "$ML_RELAY_NET" >/dev/null
    ml_row "upstream" "$reuse reuse, $rate/s" msgs "$n" "$deferred_msgs" "$unique" "$rate_dropped" "$bounced" "$(ml_secs "$drain") s" \
        "$conns conns (max $max_sec in 1 s); min at $rate/s: $(ml_secs "$theo_ms") s for $n conns"
    ml_pf_stop relay
    return 0
}

# ------------------------------------------------------------ nothing lost

# ml_scenario_nothing_lost N: the relay is blocked while it has N messages
# queued, for longer than its first retry: they are deferred, not bounced;
# after the unblock and a flush all arrive, each once.
ml_scenario_nothing_lost() {
    local n=$1 tag=lost
    ml_scenario_begin "nothing-lost" "block the relay while it has $n messages queued; unblock; all arrive"
    ml_sender relay "$ML_NS_RELAY"
    # A blocked attempt fails after 3 s (the SYN and one retransmission).
    ml_pf_set relay "smtp_connect_timeout = 3s" "smtp_connection_cache_on_demand = yes"
    ml_backlog relay "$tag" "$n"
    local rc
    ml_fence_shown block "$ML_RELAY_NET" --reason "upstream misbehaving"
    rc=$?
    ml_check "block $ML_RELAY_NET" "exit 0" "exit $rc" $((rc == 0))

    local relay_mark mx_mark t0
    relay_mark=$(ml_log_lines relay)
    mx_mark=$(ml_log_lines mx)
    t0=$(ml_now_ms)
    ml_release relay
    # Wait for the first try and the first retry of every message: 2 N
    # deferrals in the relay's log.
    ml_say "relay started; waiting until every message was tried twice (first try and first retry)"
    ml_wait 90 ml_log_at_least relay "$relay_mark" 'status=deferred' $((2 * n))
    local t_blocked deferrals
    t_blocked=$(($(ml_now_ms) - t0))
    deferrals=$(ml_log_count relay "$relay_mark" 'status=deferred')
    local qjson queued in_deferred reasons
    qjson=$(ml_pf_queue_json relay)
    queued=$(grep -c '^{' <<<"$qjson")
    in_deferred=$(jq -s '[.[] | select(.queue_name == "deferred")] | length' <<<"$qjson")
    reasons=$(jq -r '.recipients[].delay_reason' <<<"$qjson" | sed -E 's/^.*(Connection timed out|delivery temporarily suspended).*$/\1/' | sort | uniq -c | awk '{c=$1; $1=""; printf "%s%d x%s", (NR>1?"; ":""), c, $0}')
    ml_say "after $(ml_secs "$t_blocked") s blocked: $queued in the relay's queue ($in_deferred deferred: $reasons), $deferrals deferrals logged"
    ml_check "every message tried at least twice while blocked" ">= $((2 * n)) deferrals" "$deferrals" $((deferrals >= 2 * n))
    ml_check "relay queue while blocked (postqueue -j)" "$n deferred" "$in_deferred deferred" $((in_deferred == n && queued == n))
    ml_check "relay: bounced while blocked" 0 "$(ml_bounced relay "$relay_mark")" $(($(ml_bounced relay "$relay_mark") == 0))
    ml_check "delivered while blocked" 0 "$(ml_delivered "$tag" | cut -d' ' -f2)" $(($(ml_delivered "$tag" | cut -d' ' -f2) == 0))
    ml_check "relay sessions at the mail host while blocked" 0 "$(ml_log_count mx "$mx_mark" ": connect from [^ ]*\\[${ML_RELAY//./\\.}\\]")" \
        $(($(ml_log_count mx "$mx_mark" ": connect from [^ ]*\\[${ML_RELAY//./\\.}\\]") == 0))
    local dropped
    dropped=$(ml_rule "$ML_RELAY_NET" .dropped)

    local t1 drain
    t1=$(ml_now_ms)
    ml_fence_shown remove "$ML_RELAY_NET"
    ml_pf_flush relay
    ml_wait 60 ml_delivered_at_least "$tag" "$n"
    ml_wait 20 ml_pf_queue_empty relay
    drain=$(($(ml_now_ms) - t1))
    ml_say "unblocked and flushed: drained in $(ml_secs "$drain") s"
    ml_check_delivered "$tag" "$n"
    local bounced
    bounced=$(ml_bounced relay "$relay_mark")
    ml_check "relay: bounced" 0 "$bounced" $((bounced == 0))
    ml_check "relay: queue empty" 0 "$(ml_pf_queue_count relay)" "$(ml_queue_is relay 0 && echo 1 || echo 0)"
    ml_pf_stop relay
    ml_row "nothing-lost" "blocked $(ml_secs "$t_blocked") s" msgs "$n" "$in_deferred" "$(ml_delivered "$tag" | cut -d' ' -f2)" "$dropped" "$bounced" \
        "$(ml_secs "$drain") s" "$deferrals deferrals while blocked; drain after unblock"
}
ml_log_at_least() { (($(ml_log_count "$1" "$2" "$3") >= $4)); }

# ------------------------------------------------------------ MTA cost

# ml_scenario_mta_cost ATTEMPTS INTERVAL_MS ADDRS: the same connection flood
# (ADDRS storm addresses x ATTEMPTS, one every INTERVAL_MS each) against
# Postfix protected only by anvil (smtpd_client_connection_rate_limit), then
# against Postfix behind `smtpfence block`. The receiving instance is
# restarted fresh for each case; its CPU time (cgroup) and smtpd processes
# (sampled every 100 ms) are measured from the flood's start until 2 s after
# its end.
ML_ANVIL_LIMIT=10 # connections per client per minute
ml_cpu_ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
ml_scenario_mta_cost() {
    local attempts=$1 interval=$2 n_addr=$3
    local addrs=("${ML_STORM_ADDRS[@]:0:n_addr}")
    local total=$((attempts * n_addr))
    local dur_ms=$((attempts * interval))
    ml_scenario_begin mta-cost "$total connection attempts in $(ml_secs "$dur_ms") s from $n_addr sources: anvil alone vs smtpfence"
    ml_pf_set mx "smtpd_client_connection_rate_limit = $ML_ANVIL_LIMIT"
    local cg=
    [[ -n $ML_CGROUP_BASE ]] && cg=$ML_CGROUP_BASE/mx
    local case_name cpu_a=0 cpu_b=0 max_a=0 max_b=0 avg_a=0 avg_b=0 sess_a=0 sess_b=0 ok_a=0 ok_b=0 anvil_a=0
    for case_name in A B; do
        ml_pf_stop mx
        ml_pf_start mx "$cg" || ml_die "the mail host's Postfix did not restart"
        ml_wait 10 ml_smtp_ready "$ML_NS_CLIENT" "$ML_MX" 25 || ml_die "Postfix on $ML_MX:25 does not answer after the restart"
        if [[ $case_name == B ]]; then
            ml_fence_shown block "$ML_STORM_NET" --reason "flood" || ml_die "block failed"
        fi
        sleep 0.5
        local mark cpu0 cpu1 samples=$ML_TMP/samples.$case_name ok fail
        mark=$(ml_log_lines mx)
        : >"$samples"
        cpu0=$(ml_cg_usec "$cg")
        ml_sampler "$ML_NS_MX" "$samples"
        ml_flood "$ML_NS_STORM" "$ML_MX_B" 25 "$attempts" "$interval" 300 "$ML_TMP/cost.$case_name" "${addrs[@]}"
        wait "$ML_FLOOD_PID"
        sleep 2
        ml_sampler_stop
        cpu1=$(ml_cg_usec "$cg")
        read -r ok fail < <(ml_flood_result "$ML_TMP/cost.$case_name")
        # Every attempt of the flood ran and was counted (a tcpprobe that
        # wrote nothing would sum to 0 0).
        ml_check "case $case_name: the flood ran (connected + failed = attempts)" "$total" "$((ok + fail))" \
            $((ok + fail == total))
        local max avg sessions anvil
        read -r max avg < <(ml_samples_stats "$samples")
        sessions=$(ml_log_count mx "$mark" ': connect from [^ ]*\[203\.0\.113\.')
        anvil=$(ml_log_count mx "$mark" 'Connection rate limit exceeded')
        ml_say "case $case_name ($([[ $case_name == A ]] && echo "anvil only: smtpd_client_connection_rate_limit = $ML_ANVIL_LIMIT/min" || echo "anvil + smtpfence block $ML_STORM_NET")):"
        ml_say "  $ok of $total connected; $sessions smtpd sessions from the storm, $anvil refused by anvil; smtpd processes max $max, avg $avg; mail host's Postfix CPU $(ml_cpu_ms $((cpu1 - cpu0))) ms"
        if [[ $case_name == A ]]; then
            cpu_a=$((cpu1 - cpu0)) max_a=$max avg_a=$avg sess_a=$sessions ok_a=$ok anvil_a=$anvil
        else
            cpu_b=$((cpu1 - cpu0)) max_b=$max avg_b=$avg sess_b=$sessions ok_b=$ok
            local dropped
            dropped=$(ml_rule "$ML_STORM_NET" .dropped)
            ml_fence_shown remove "$ML_STORM_NET" >/dev/null
        fi
    done
    ml_pf_set mx "smtpd_client_connection_rate_limit = 0"
    ml_pf_reload mx
    local cpu_ratio smtpd_ratio
    cpu_ratio=$(awk -v a="$cpu_a" -v b="$cpu_b" 'BEGIN{ if (b < 100) printf ">%.0f", a / 100; else printf "%.0f", a / b }')
    smtpd_ratio=$(awk -v a="$avg_a" -v b="$avg_b" 'BEGIN{ if (b < 0.1) printf ">%.0f", a / 0.1; else printf "%.1f", a / b }')
    [[ -z $cg ]] && cpu_ratio="n/a (no cgroup v2)"
    ml_say "ratio A/B: Postfix CPU x$cpu_ratio ($(ml_cpu_ms "$cpu_a") ms vs $(ml_cpu_ms "$cpu_b") ms), smtpd processes (avg) x$smtpd_ratio"
    ml_say "(CPU of the receiving instance's processes, from its cgroup; the kernel's own per-packet work, XDP or TCP handshakes, is not in it)"
    ml_check "case A: the flood reaches Postfix (smtpd sessions)" "> 0" "$sess_a" $((sess_a > 0))
    ml_check "case B: smtpd sessions from the storm" 0 "$sess_b" $((sess_b == 0))
    ml_check "case B: storm connections that got through" 0 "$ok_b" $((ok_b == 0))
    # One SYN per attempt (each gives up after 300 ms, before the first
    # retransmission at 1 s), each dropped by the block.
    ml_check "case B: the block dropped every attempt's SYN" "$total" "$dropped" \
        "$([[ $dropped == "$total" ]] && echo 1 || echo 0)"
    ml_check "smtpd processes, max: B <= A" "<= $max_a" "$max_b" $((max_b <= max_a))
    ml_row "mta-cost" "A: anvil only" conns "$total" - "$ok_a" - - "$(ml_cpu_ms "$cpu_a") ms" \
        "CPU; smtpd max $max_a avg $avg_a; $sess_a sessions, $anvil_a refused by anvil"
    ml_row "mta-cost" "B: smtpfence" conns "$total" - "$ok_b" "$dropped" - "$(ml_cpu_ms "$cpu_b") ms" \
        "CPU; smtpd max $max_b avg $avg_b; $sess_b sessions; A/B: CPU x$cpu_ratio, smtpd x$smtpd_ratio"
}

# ------------------------------------------------------------ message pace

# ml_arrival_profile TAG MARK: messages of TAG per second at the receiver
# (when their body arrived: cleanup logs the Message-ID), from the first
# second to the last, space-separated.
ml_arrival_profile() {
    ml_log_since mx "$2" | grep -F "message-id=<$1." |
        awk '{split($3, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]; c[s]++; if (min == "" || s < min) min = s; if (s > max) max = s}
             END { for (i = min; i <= max; i++) printf "%d ", c[i] + 0; print "" }'
}
ml_profile_max() { tr ' ' '\n' <<<"$1" | sort -n | tail -1; }

# ml_relay_prepare KIND TLS: the relay instance of KIND (postfix or exim),
# stopped with an empty queue, using STARTTLS when the receiver offers it
# (TLS = tls) or never (plain). Postfix's defaults otherwise (sessions
# reused, 30 s connect timeout); see exim.sh for Exim's.
ml_relay_prepare() {
    local kind=$1 tls=$2
    case $kind in
    postfix)
        ml_sender relay "$ML_NS_RELAY"
        grep -q '^tlsmgr' "$ML_TMP/relay/etc/master.cf" ||
            echo "tlsmgr    unix  - - n 1000? 1 tlsmgr" >>"$ML_TMP/relay/etc/master.cf"
        ml_pf_set relay "smtp_connect_timeout = 30s" "smtp_connection_cache_on_demand = yes" \
            "smtp_tls_security_level = $([[ $tls == tls ]] && echo may || echo none)" "smtp_tls_loglevel = 1"
        ;;
    exim)
        [[ -n ${ML_EXIM_NS[exim]:-} ]] || ml_exim_create exim "$ML_NS_RELAY"
        ml_exim_stop exim
        ;;
    esac
}
# ml_relay_backlog KIND TAG N: N messages queued in the stopped relay. Exim's
# are queued the way a relay's backlog is after its upstream was down
# (-odqs: each message noted as waiting for the host, so a queue run sends
# many down one connection).
ml_relay_backlog() {
    case $1 in
    postfix) ml_backlog relay "$2" "$3" ;;
    exim) ml_exim_backlog exim "$2" "$3" odqs ;;
    esac
}
ml_relay_release() {
    case $1 in
    postfix) ml_release relay ;;
    exim) ml_exim_release exim ;;
    esac
}
ml_relay_stop() {
    case $1 in
    postfix) ml_pf_stop relay ;;
    exim) ml_exim_stop exim ;;
    esac
}
ml_relay_queue_empty() {
    case $1 in
    postfix) ml_pf_queue_empty relay ;;
    exim) ml_exim_queue_is exim 0 ;;
    esac
}
# ml_relay_bounces KIND MARK: bounces (Postfix status=bounced; Exim "**"
# delivery failures) since MARK (lines of the relay's log).
ml_relay_log() {
    case $1 in
    postfix) ml_pf_log relay ;;
    exim) ml_exim_log exim ;;
    esac
}
ml_relay_log_lines() { local f; f=$(ml_relay_log "$1"); [[ -f $f ]] && wc -l <"$f" || echo 0; }
ml_relay_bounces() {
    local f
    f=$(ml_relay_log "$1")
    case $1 in
    postfix) tail -n +$(($2 + 1)) "$f" 2>/dev/null | grep -c 'status=bounced' ;;
    exim) tail -n +$(($2 + 1)) "$f" 2>/dev/null | grep -c ' \*\* ' ;;
    esac
}

# ml_latency_probe TAG OUT STOPFILE: the client sends one message about every
# second until STOPFILE exists; "i ok latency_ms" lines in OUT. Sets
# ML_PROBE_PID.
ML_PROBE_PID=
ml_latency_probe() {
    local tag=$1 out=$2 stop=$3
    : >"$out"
    (
        j=0
        while [[ ! -e $stop ]]; do
            j=$((j + 1))
            if ml_swaks "$ML_NS_CLIENT" "$ML_MX" 25 "$tag" "$j"; then r=1; else r=0; fi
            echo "$j $r $ML_LAT_MS" >>"$out"
            sleep 1
        done
    ) &
    ML_PROBE_PID=$!
    ML_PIDS+=("$ML_PROBE_PID")
}

# ml_scenario_pace KIND TLS N RATE: the upstream relay (Postfix or Exim, with
# its defaults: sessions reused, PIPELINING, STARTTLS when TLS = tls) unclogs
# N messages under `limit RELAY_NET --messages RATE/s`; the client sends a
# message about every second meanwhile. Checks: every message arrives once,
# none bounces, the drain takes 0.8-1.25 x N/RATE, no second has more than
# 2 x RATE, no reply was let through unpaced, and the client's latency stays
# within 2 x its baseline.
ml_scenario_pace() {
    local kind=$1 tls=$2 n=$3 rate=$4 tag
    tag=pace$kind$tls
    ml_scenario_begin "pace/$kind-$tls" "$kind relay ($([[ $tls == tls ]] && echo STARTTLS || echo plain)) unclogs $n messages under limit --messages $rate/s --per rule"
    ml_relay_prepare "$kind" "$tls"
    ml_relay_backlog "$kind" "$tag" "$n"

    local base_sum=0 i
    for i in 1 2 3; do
        ml_swaks "$ML_NS_CLIENT" "$ML_MX" 25 "${tag}base" "$i" || ml_die "the client cannot send mail: $(tail -3 "$ML_TMP/swaks.${tag}base.$i.out")"
        base_sum=$((base_sum + ML_LAT_MS))
    done
    local base=$((base_sum / 3))

    local rc
    ml_fence_shown limit "$ML_RELAY_NET" --messages "$rate/s" --per rule --reason "upstream unloading its backlog"
    rc=$?
    ml_check "limit $ML_RELAY_NET --messages $rate/s --per rule" "exit 0" "exit $rc" $((rc == 0))

    local mx_mark relay_mark t0 t1 stop=$ML_TMP/$tag.stop lat=$ML_TMP/$tag.lat
    mx_mark=$(ml_log_lines mx)
    relay_mark=$(ml_relay_log_lines "$kind")
    t0=$(ml_now_ms)
    ml_say "starting the relay: its backlog goes at once; the client sends a message about every second"
    ml_relay_release "$kind"
    ml_latency_probe "${tag}lat" "$lat" "$stop"
    ml_wait $((n * 3 / rate + 60)) ml_delivered_at_least "$tag" "$n"
    t1=$(ml_now_ms)
    touch "$stop"
    wait "$ML_PROBE_PID" 2>/dev/null
    ml_wait 30 ml_relay_queue_empty "$kind"

    local drain=$((t1 - t0)) target=$((n * 1000 / rate)) prof max_sec conns tls_conns bounced
    prof=$(ml_arrival_profile "$tag" "$mx_mark")
    max_sec=$(ml_profile_max "$prof")
    conns=$(ml_log_count mx "$mx_mark" ": connect from [^ ]*\\[${ML_RELAY//./\\.}\\]")
    tls_conns=$(ml_log_count mx "$mx_mark" "TLS connection established from [^ ]*\\[${ML_RELAY//./\\.}\\]")
    bounced=$(ml_relay_bounces "$kind" "$relay_mark")
    local paced overflow refused held
    paced=$(ml_rule "$ML_RELAY_NET" .limit.messages_paced)
    held=$(ml_rule "$ML_RELAY_NET" .limit.pace_packets)
    overflow=$(ml_rule "$ML_RELAY_NET" .limit.pace_overflow)
    refused=$(ml_rule "$ML_RELAY_NET" .limit.pace_refused)
    local lat_n lat_ok lat_avg lat_max
    read -r lat_n lat_ok lat_avg lat_max < <(awk '{n++; ok += $2; s += $3; if ($3 > m) m = $3} END {printf "%d %d %d %d\n", n, ok, n ? s / n : 0, m}' "$lat")
    local ratio
    ratio=$(awk -v d="$drain" -v t="$target" 'BEGIN{printf "%.2f", d / t}')
    ml_say "delivered in $(ml_secs "$drain") s = ${ratio} x the target $(ml_secs "$target") s, over $conns connections ($tls_conns with TLS)"
    ml_say "messages per second at the receiver: $prof"
    ml_say "smtpfence: $paced body replies paced ($held packets through the class), $overflow let through unpaced, $refused SYNs refused while the clock ran ahead"
    ml_say "client: $lat_ok of $lat_n messages accepted meanwhile, latency avg $lat_avg ms, max $lat_max ms (baseline $base ms)"
    ml_check_delivered "$tag" "$n"
    ml_check "relay: bounced" 0 "$bounced" $((bounced == 0))
    ml_check "relay: queue empty after the drain" 0 "" "$(ml_relay_queue_empty "$kind" && echo 1 || echo 0)"
    ml_check "drain time / (N / rate)" "0.80-1.25" "$ratio" $((drain * 100 >= target * 80 && drain * 100 <= target * 125))
    ml_check "busiest second" "<= $((2 * rate))" "$max_sec" $((max_sec <= 2 * rate))
    ml_check "replies let through unpaced" 0 "$overflow" "$([[ $overflow == 0 ]] && echo 1 || echo 0)"
    if [[ $tls == tls ]]; then
        ml_check "the relay used STARTTLS" ">= 1 connection" "$tls_conns" $((tls_conns >= 1))
    fi
    ml_check "client messages accepted during the pace" "$lat_n" "$lat_ok" $((lat_n > 0 && lat_ok == lat_n))
    ml_check "client latency avg during the pace" "<= 2 x $base ms" "$lat_avg ms" $((lat_avg <= 2 * base))
    ml_fence_shown list
    ml_fence_shown remove "$ML_RELAY_NET" >/dev/null
    ml_relay_stop "$kind"
    ml_row "pace" "$kind $tls, $rate/s" msgs "$n" - "$n" "$refused" "$bounced" "$(ml_secs "$drain") s" \
        "${ratio}x target; max $max_sec/s; $conns conns; client avg $lat_avg ms (base $base)"
    return 0
}

# ml_scenario_pace_handover N RATE [TAG]: the relay (Postfix) is blocked
# while it tries to send N messages; then one command turns the block into
# --messages RATE/s on the same prefix (one atomic map update). Checks:
# every message arrives once, none bounces, and from the change on no second
# has more than 2 x RATE. TAG (default pacehand) marks the messages, one per
# round when the scenario is repeated. Sets ML_HANDOVER_MAX (the busiest
# second) and ML_HANDOVER_PROFILE.
ML_HANDOVER_MAX=
ML_HANDOVER_PROFILE=
ml_scenario_pace_handover() {
    local n=$1 rate=$2 tag=${3:-pacehand}
    ml_scenario_begin "pace/handover" "a blocked relay with $n messages queued; the block becomes limit --messages $rate/s"
    ml_relay_prepare postfix plain
    ml_backlog relay "$tag" "$n"
    ml_fence_shown block "$ML_RELAY_NET" --reason "upstream unloading its backlog" >/dev/null ||
        ml_die "block $ML_RELAY_NET failed"
    local relay_mark mx_mark
    relay_mark=$(ml_log_lines relay)
    ml_release relay
    ml_wait 60 ml_deferred_msgs_is relay "$relay_mark" 1 || ml_die "the blocked relay deferred nothing"
    mx_mark=$(ml_log_lines mx)
    local t0 rc
    t0=$(ml_now_ms)
    ml_fence_shown limit "$ML_RELAY_NET" --messages "$rate/s" --per rule --reason "upstream unloading its backlog"
    rc=$?
    ml_check "block -> limit --messages $rate/s, one command" "exit 0" "exit $rc" $((rc == 0))
    ml_pf_flush relay # the relay retries now rather than after its backoff
    ml_wait $((n * 3 / rate + 60)) ml_delivered_at_least "$tag" "$n"
    local t1 drain prof max_sec bounced
    t1=$(ml_now_ms)
    drain=$((t1 - t0))
    ml_wait 30 ml_pf_queue_empty relay
    prof=$(ml_arrival_profile "$tag" "$mx_mark")
    max_sec=$(ml_profile_max "$prof")
    bounced=$(ml_bounced relay "$relay_mark")
    ML_HANDOVER_MAX=$max_sec
    ML_HANDOVER_PROFILE=$prof
    ml_say "after the change: delivered in $(ml_secs "$drain") s (target $(ml_secs $((n * 1000 / rate))) s)"
    ml_say "messages per second at the receiver: $prof"
    ml_check_delivered "$tag" "$n"
    ml_check "relay: bounced" 0 "$bounced" $((bounced == 0))
    ml_check "busiest second after the change" "<= $((2 * rate))" "$max_sec" $((max_sec <= 2 * rate))
    ml_fence_shown remove "$ML_RELAY_NET" >/dev/null
    ml_pf_stop relay
    ml_row "pace" "block -> messages $rate/s" msgs "$n" "$n" "$n" - "$bounced" "$(ml_secs "$drain") s" "max $max_sec/s after the change"
    return 0
}
