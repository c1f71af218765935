#!/usr/bin/env bash
# bench/pace (issue 8): can the mail host pace an upstream's MESSAGES by pacing
# its own replies? A research harness, not a test. It builds the mail lab
# (scripts/lab/mail.sh: namespaces, receiving Postfix, relay Postfix), then
# runs one case per argument: the relay holds a backlog of N messages and is
# released at once while a mechanism is in force on the mail host; the
# receiver's maillog gives the per-second profile of accepted messages.
#
#   sudo bash bench/pace/pace.sh CASE...
#
# CASE is NAME:TLS:MECH[:key=value,...]
#   TLS   tls | plain   (the receiver always offers STARTTLS with a
#                        self-signed certificate; the relay uses
#                        smtp_tls_security_level = may or none)
#   MECH  measure       pace.bpf.c in MEASURE mode on eth0 egress (clsact):
#                       nothing is delayed, payload packets and turns counted
#         htb           pace.bpf.c steers the chosen packets of flows to the
#                       relay into an HTB class whose rate is a packet rate
#                       (size table: every packet costs `mpu` bytes); the
#                       token-bucket stand-in for EDT + fq (no sch_fq here)
#         conn          smtpfence limit RELAY_NET --rate R/s --per rule only
#   keys  n=200         messages in the backlog
#         rate=5        target messages/s (the report's ratio is vs n/rate)
#         k=2           slots per message: the class rate is rate*k packets/s
#         free=0        a flow's first FREE turns take no slot
#         mode=1|2|3    pace.bpf.c mode (default 2) (1 every payload packet, 2 turns,
#                       3 turns after >= minup bytes from the client)
#         minup=512     mode 3 threshold
#         conn=R        also smtpfence limit --rate R/s --per rule
#         reuse=yes|no  smtp_connection_cache_on_demand on the relay
#         tlsreuse=yes  smtp_tls_connection_reuse = yes on the relay (tlsproxy)
#         lat=1         a second sender (the client, swaks) every ~1 s
#
# Example (what README.md reports):
#   sudo bash bench/pace/pace.sh base:plain:measure base-tls:tls:measure \
#        p-plain:plain:htb:k=3,mode=3 p-tls:tls:htb:k=3,mode=3
#
# Results: one block per case on stdout, and a table at the end; raw data
# (maillog excerpts, profiles, BPF counters) are copied to $PACE_OUT
# (default /tmp/smtpfence-pace-results, outside the lab's temporary dir).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# Private copies of the binaries: other engineers rebuild build/ concurrently.
PACE_BIN=$(mktemp -d /tmp/smtpfence-pace-bin.XXXXXX) || exit 1
cp "${SMTPFENCE:-$ROOT/build/userspace/smtpfence}" "$PACE_BIN/smtpfence" &&
    cp "${TCPPROBE:-$ROOT/build/tests/tcpprobe}" "$PACE_BIN/tcpprobe" || { rm -rf "$PACE_BIN"; exit 1; }
export SMTPFENCE=$PACE_BIN/smtpfence TCPPROBE=$PACE_BIN/tcpprobe
PACE_OUT=${PACE_OUT:-/tmp/smtpfence-pace-results}
mkdir -p "$PACE_OUT"

# shellcheck source=../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"

# The lab's cleanup, plus ours (the private binaries).
eval "$(declare -f ml_cleanup | sed '1s/ml_cleanup/ml_cleanup_lab/')"
ml_cleanup() {
    local rc=$?
    [[ -n ${PACE_PROBE_PID:-} ]] && kill "$PACE_PROBE_PID" 2>/dev/null
    ml_cleanup_lab
    rm -rf -- "$PACE_BIN"
    return "$rc"
}
trap ml_cleanup EXIT

mx() { ip netns exec "$ML_NS_MX" "$@"; }
PACE_OBJ=$PACE_BIN/pace.o
PACE_MPU=10000          # bytes every packet costs in the HTB class
PACE_CLASS=0x10010      # 1:10
PACE_ROWS=()

clang -O2 -g -Wall -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu \
    -c "$HERE/pace.bpf.c" -o "$PACE_OBJ" || ml_die "cannot compile pace.bpf.c"

# ------------------------------------------------------------ the egress program

# pace_attach: clsact + pace.bpf.c on the mail host's eth0 egress; sets
# PACE_MAP_CFG, PACE_MAP_STATS, PACE_MAP_FLOWS.
pace_attach() {
    mx tc qdisc add dev eth0 clsact 2>/dev/null
    mx tc filter del dev eth0 egress 2>/dev/null
    mx tc filter add dev eth0 egress bpf direct-action obj "$PACE_OBJ" sec tc >"$ML_TMP/tc.out" 2>&1 ||
        ml_die "attaching pace.bpf.c failed: $(tail -5 "$ML_TMP/tc.out")"
    local prog m name
    prog=$(mx tc filter show dev eth0 egress | grep -o ' id [0-9]*' | awk '{print $2}' | head -1)
    [[ -n $prog ]] || ml_die "no program id on eth0 egress"
    PACE_PROG=$prog
    for m in $(bpftool prog show id "$prog" -j | jq -r '.map_ids[]'); do
        name=$(bpftool map show id "$m" -j | jq -r .name)
        case $name in
        pace_cfg) PACE_MAP_CFG=$m ;;
        pace_stats) PACE_MAP_STATS=$m ;;
        pace_flows) PACE_MAP_FLOWS=$m ;;
        esac
    done
}
pace_detach() {
    mx tc filter del dev eth0 egress 2>/dev/null
    mx tc qdisc del dev eth0 clsact 2>/dev/null
    mx tc qdisc del dev eth0 root 2>/dev/null
    return 0
}

# pace_config MODE INTERVAL_NS MAX_DELAY_NS PER_SESSION EDT MIN_UPLOAD CLASSID FREE_TURNS
pace_config() {
    local hex
    hex=$(python3 - "$ML_RELAY_NET" "$@" <<'EOF'
import ipaddress, struct, sys
net = ipaddress.ip_network(sys.argv[1])
mode, interval, maxd, per_session, edt, minup, classid, free = (int(x, 0) for x in sys.argv[2:10])
b = struct.pack('<4s4sQQIIIIII', net.network_address.packed, net.netmask.packed,
                interval, maxd, mode, per_session, edt, minup, free, classid)
print(' '.join('%02x' % c for c in b))
EOF
)
    # shellcheck disable=SC2086
    bpftool map update id "$PACE_MAP_CFG" key hex 00 00 00 00 value hex $hex || ml_die "cannot configure pace_cfg"
}

# pace_stats: "v0 v1 ..." (the counters of pace.bpf.c, in enum order).
pace_stats() {
    bpftool map dump id "$PACE_MAP_STATS" -j |
        jq -r '[.[] | (.formatted.value // .value)] | map(if type == "array" then (map(ltrimstr("0x")) | reverse | join("") | ("0x" + .)) else . end) | .[]' |
        while read -r v; do printf '%d ' "$v"; done
}

# pace_htb PKTS_PER_S: root HTB with a size table (every packet costs
# PACE_MPU bytes); class 1:1 (default) is unlimited, class 1:10 is the rule's.
pace_htb() {
    local pps=$1 bits
    bits=$(awk -v p="$pps" -v m="$PACE_MPU" 'BEGIN{printf "%d", p * m * 8}')
    mx tc qdisc replace dev eth0 root handle 1: stab mtu 65536 tsize 512 mpu "$PACE_MPU" htb default 1 r2q 100000 ||
        ml_die "cannot create the HTB root"
    mx tc class add dev eth0 parent 1: classid 1:1 htb rate 10gbit quantum 60000
    mx tc class add dev eth0 parent 1: classid 1:10 htb rate "${bits}bit" burst "$PACE_MPU" cburst "$PACE_MPU" quantum 60000 ||
        ml_die "cannot create the paced class"
}

# ------------------------------------------------------------ TLS

pace_tlsmgr() {
    grep -q '^tlsmgr' "$ML_TMP/$1/etc/master.cf" ||
        echo "tlsmgr    unix  - - n 1000? 1 tlsmgr" >>"$ML_TMP/$1/etc/master.cf"
}

pace_tls_receiver() {
    local d=$ML_TMP/tls
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 2 \
        -subj "/CN=mx.$ML_DOMAIN" >/dev/null 2>&1 || ml_die "openssl failed"
    chmod 600 "$d/key.pem"
    # Postfix's TLS needs tlsmgr (entropy, session cache); the lab's master.cf has none.
    pace_tlsmgr mx
    ml_pf_set mx "smtpd_tls_cert_file = $d/cert.pem" "smtpd_tls_key_file = $d/key.pem" \
        "smtpd_tls_security_level = may" "smtpd_tls_loglevel = 1"
    ml_pf_stop mx
    ml_pf_start mx || ml_die "the mail host's Postfix did not restart with TLS"
    ml_wait 10 ml_smtp_ready "$ML_NS_CLIENT" "$ML_MX" 25 || ml_die "Postfix on $ML_MX:25 does not answer"
    timeout 10 ip netns exec "$ML_NS_CLIENT" openssl s_client -starttls smtp -connect "$ML_MX:25" </dev/null >"$ML_TMP/tlscheck.out" 2>&1
    grep -q 'Cipher is' "$ML_TMP/tlscheck.out" ||
        ml_die "the mail host does not do STARTTLS: $(tail -3 "$ML_TMP/tlscheck.out")"
    ml_say "the mail host offers STARTTLS ($(grep -m1 -o 'New, .*Cipher is.*' "$ML_TMP/tlscheck.out"))"
}

# ------------------------------------------------------------ one case

# pace_profile TAG MARK: per-second counts of TAG's messages accepted by the
# receiver (cleanup's message-id= lines), from the first second to the last.
pace_profile() {
    ml_log_since mx "$2" | grep -F "message-id=<$1." | awk '{split($3, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]; c[s]++; if (min == "" || s < min) min = s; if (s > max) max = s}
        END { for (i = min; i <= max; i++) printf "%d ", c[i] + 0; print "" }'
}

pace_case() {
    local spec=$1 name tls mech opts
    IFS=: read -r name tls mech opts <<<"$spec"
    local n=200 rate=5 k=2 mode=2 free=0 minup=512 conn= reuse=yes tlsreuse=no lat=1 persess=0 maxdelay=5000
    local kv
    IFS=, read -r -a kvs <<<"${opts:-}"
    for kv in "${kvs[@]}"; do
        case ${kv%%=*} in
        n) n=${kv#*=} ;; rate) rate=${kv#*=} ;; k) k=${kv#*=} ;; mode) mode=${kv#*=} ;;
        minup) minup=${kv#*=} ;; conn) conn=${kv#*=} ;; reuse) reuse=${kv#*=} ;;
        tlsreuse) tlsreuse=${kv#*=} ;; lat) lat=${kv#*=} ;; persess) persess=${kv#*=} ;;
        maxdelay) maxdelay=${kv#*=} ;; free) free=${kv#*=} ;;
        *) ml_die "unknown option $kv in $spec" ;;
        esac
    done
    local tag=${name//[^a-z0-9]/}
    ml_scenario_begin "$name" "$n messages, $([[ $tls == tls ]] && echo STARTTLS || echo plain), $mech ${opts:-}"

    # The relay: Postfix defaults but the lab's short retry timers.
    ml_sender relay "$ML_NS_RELAY"
    ml_pf_set relay "smtp_connect_timeout = 30s" \
        "smtp_connection_cache_on_demand = $reuse" \
        "smtp_tls_security_level = $([[ $tls == tls ]] && echo may || echo none)" \
        "smtp_tls_loglevel = 1" "smtp_tls_connection_reuse = $tlsreuse"
    pace_tlsmgr relay
    if [[ $tlsreuse == yes ]] && ! grep -q '^tlsproxy' "$ML_TMP/relay/etc/master.cf"; then
        echo "tlsproxy  unix  - - n - 0 tlsproxy" >>"$ML_TMP/relay/etc/master.cf"
    fi
    ml_backlog relay "$tag" "$n"

    # The mechanism.
    pace_detach
    pace_attach
    local pps interval
    pps=$(awk -v r="$rate" -v k="$k" 'BEGIN{printf "%.3f", r * k}')
    interval=$(awk -v p="$pps" 'BEGIN{printf "%d", 1e9 / p}')
    case $mech in
    measure | conn) pace_config 0 "$interval" $((maxdelay * 1000000)) "$persess" 0 "$minup" 0 0 ;;
    htb)
        pace_htb "$pps"
        pace_config "$mode" "$interval" $((maxdelay * 1000000)) "$persess" 0 "$minup" "$PACE_CLASS" "$free"
        ;;
    *) ml_die "unknown mechanism $mech" ;;
    esac
    if [[ $mech == conn && -z $conn ]]; then conn=$rate; fi
    if [[ -n $conn ]]; then
        ml_fence_shown limit "$ML_RELAY_NET" --rate "$conn/s" --per rule --reason "pace bench" || ml_die "limit failed"
    fi
    ml_say "mechanism: $mech$([[ $mech == htb ]] && echo " mode $mode, $pps slots/s (k=$k x $rate msg/s)")$([[ -n $conn ]] && echo ", new connections <= $conn/s")"

    # The second sender, before (baseline) and during the drain.
    local base_sum=0 i
    for i in 1 2 3; do
        ml_swaks "$ML_NS_CLIENT" "$ML_MX" 25 "b$tag" "$i" || ml_say "baseline swaks $i failed"
        base_sum=$((base_sum + ML_LAT_MS))
    done
    local latf=$ML_TMP/lat.$tag stop=$ML_TMP/lat.$tag.stop
    : >"$latf"

    local mx_mark relay_mark t0 t1
    mx_mark=$(ml_log_lines mx)
    relay_mark=$(ml_log_lines relay)
    local rx0 rx1
    rx0=$(ip netns exec "$ML_NS_RELAY" nstat -asz TcpRetransSegs | awk '/TcpRetransSegs/{print $2}')
    local qsamp=$ML_TMP/q.$tag
    : >"$qsamp"
    (
        trap 'exit 0' TERM
        while :; do
            mx tc -s class show dev eth0 classid 1:10 2>/dev/null | awk '/backlog/{gsub("p","",$3); print $3}' >>"$qsamp"
            sleep 0.5
        done
    ) &
    local qpid=$!
    ML_PIDS+=("$qpid")
    t0=$(ml_now_ms)
    ml_release relay
    if ((lat)); then
        (
            j=0
            while [[ ! -e $stop ]]; do
                j=$((j + 1))
                if ml_swaks "$ML_NS_CLIENT" "$ML_MX" 25 "l$tag" "$j"; then r=0; else r=1; fi
                echo "$j $r $ML_LAT_MS" >>"$latf"
                sleep 1
            done
        ) &
        PACE_PROBE_PID=$!
        ML_PIDS+=("$PACE_PROBE_PID")
    fi
    local timeout=$((n * 6 / rate + 120))
    ml_wait "$timeout" ml_delivered_at_least "$tag" "$n"
    t1=$(ml_now_ms)
    ml_wait 30 ml_pf_queue_empty relay
    touch "$stop"
    [[ -n ${PACE_PROBE_PID:-} ]] && wait "$PACE_PROBE_PID" 2>/dev/null
    PACE_PROBE_PID=
    kill "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
    rx1=$(ip netns exec "$ML_NS_RELAY" nstat -asz TcpRetransSegs | awk '/TcpRetransSegs/{print $2}')

    local drain=$((t1 - t0)) copies unique conns tlsconns bounced deferred prof maxsec
    read -r copies unique < <(ml_delivered "$tag")
    conns=$(ml_log_count mx "$mx_mark" ": connect from [^ ]*\\[${ML_RELAY//./\\.}\\]")
    tlsconns=$(ml_log_count mx "$mx_mark" "TLS connection established from [^ ]*\\[${ML_RELAY//./\\.}\\]")
    bounced=$(ml_bounced relay "$relay_mark")
    deferred=$(ml_deferred_msgs relay "$relay_mark")
    prof=$(pace_profile "$tag" "$mx_mark")
    maxsec=$(tr ' ' '\n' <<<"$prof" | sort -n | tail -1)
    local st
    read -r -a st <<<"$(pace_stats)"
    # enum: 0 matched 1 payload 2 turns 3 slots 4 delayed 5 capped 6 maxdelay 7 sumdelay 8 flows 9 other 10 banners 11 steered 12.. hist
    local kpay kturn kslot
    kpay=$(awk -v a="${st[1]}" -v n="$n" 'BEGIN{printf "%.2f", a / n}')
    kturn=$(awk -v a="${st[2]}" -v n="$n" 'BEGIN{printf "%.2f", a / n}')
    kslot=$(awk -v a="${st[11]}" -v n="$n" 'BEGIN{printf "%.2f", a / n}')
    local hist="" b
    for ((b = 0; b < 17; b++)); do hist+="${st[$((12 + b))]} "; done
    local lat_n lat_avg lat_max lat_fail
    read -r lat_n lat_avg lat_max lat_fail < <(awk '{n++; s += $3; if ($3 > m) m = $3; if ($2) f++} END{printf "%d %d %d %d\n", n, n ? s / n : 0, m, f}' "$latf")
    local qmax
    qmax=$(sort -n "$qsamp" | tail -1)
    local htbsent="-" htbdrop="-"
    if [[ $mech == htb ]]; then
        read -r htbsent htbdrop < <(mx tc -s class show dev eth0 classid 1:10 | awk '/Sent/{s=$4} /dropped/{gsub(",","",$7); d=$7} END{print s, d}')
    fi
    local ratio
    ratio=$(awk -v d="$drain" -v n="$n" -v r="$rate" 'BEGIN{printf "%.2f", d / 1000 / (n / r)}')
    ml_say "delivered $unique of $n (copies $copies) in $(ml_secs "$drain") s = ${ratio} x n/rate; $conns connections ($tlsconns TLS), bounced $bounced, deferred $deferred"
    ml_say "per-second profile (receiver): $prof"
    ml_say "busiest second: $maxsec messages (pace $rate/s)"
    ml_say "server packets to the relay: payload $((st[1])) ($kpay/msg), turns $((st[2])) ($kturn/msg), banners $((st[10])), flows $((st[8])); steered into the paced class $((st[11])) ($kslot/msg)"
    ml_say "turns by client upload since the previous server payload (128-byte buckets, last >= 2048): $hist"
    ml_say "virtual EDT clock (what fq would do): max delay $(awk -v d="${st[6]}" 'BEGIN{printf "%.0f", d / 1e6}') ms, mean $(awk -v d="${st[7]}" -v s="${st[3]}" 'BEGIN{printf "%.0f", s ? d / s / 1e6 : 0}') ms over $((st[3])) slots, capped $((st[5]))"
    [[ $mech == htb ]] && ml_say "HTB class 1:10: sent $htbsent packets, dropped $htbdrop, max backlog sampled $qmax packets"
    ml_say "relay TCP retransmissions: $((rx1 - rx0))"
    ml_say "second sender: $lat_n messages during the drain, latency avg $lat_avg ms, max $lat_max ms, $lat_fail failed (before: $((base_sum / 3)) ms)"
    ml_check_delivered "$tag" "$n"
    ml_check "relay: bounced" 0 "$bounced" $((bounced == 0))

    {
        echo "case $spec"
        echo "drain_ms $drain ratio $ratio conns $conns tls $tlsconns bounced $bounced deferred $deferred copies $copies unique $unique"
        echo "profile $prof"
        echo "stats ${st[*]}"
        echo "latency n=$lat_n avg=$lat_avg max=$lat_max fail=$lat_fail base=$((base_sum / 3))"
        echo "relay_retrans $((rx1 - rx0)) htb_sent $htbsent htb_drop $htbdrop qmax $qmax"
    } >>"$PACE_OUT/results.txt"
    ml_log_since mx "$mx_mark" >"$PACE_OUT/mx.$tag.log"
    ml_log_since relay "$relay_mark" >"$PACE_OUT/relay.$tag.log"
    bpftool map dump id "$PACE_MAP_FLOWS" -j >"$PACE_OUT/flows.$tag.json" 2>/dev/null

    PACE_ROWS+=("$name|$tls|$mech ${opts:-}|$unique/$n|$(ml_secs "$drain")|$ratio|$maxsec|$conns|$bounced|$((copies - unique))|$kpay|$kturn|$kslot|${lat_avg}/${lat_max} ($((base_sum / 3)))|$((rx1 - rx0))")

    if [[ -n $conn ]]; then fence remove "$ML_RELAY_NET" >/dev/null 2>&1; fi
    pace_detach
    ml_pf_stop relay
}

pace_table() {
    local r fmt='  %-10s %-5s %-26s %-8s %-8s %-6s %-6s %-6s %-4s %-4s %-6s %-6s %-6s %-20s %s\n'
    printf '\nResults (drain: release -> last message at the receiver; ratio: drain / (n / rate))\n'
    # shellcheck disable=SC2059
    printf "$fmt" case tls mechanism delivered drain_s ratio max/s conns bnc dup k_pay k_turn k_slot "2nd lat avg/max ms" retrans
    for r in "${PACE_ROWS[@]}"; do
        # shellcheck disable=SC2059,SC2046
        IFS='|' read -r -a f <<<"$r"
        printf "$fmt" "${f[@]}"
    done
}

(($# > 0)) || { sed -n '2,40p' "$0"; exit 2; }
ml_require
ml_setup
pace_tls_receiver
echo "# run $(date -Is) pid $$ kernel $(uname -r)" >>"$PACE_OUT/results.txt"
for c in "$@"; do pace_case "$c"; done
pace_table | tee -a "$PACE_OUT/results.txt"
ml_check_etc_postfix
ml_finish
