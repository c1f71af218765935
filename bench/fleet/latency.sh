#!/usr/bin/env bash
# bench/fleet/latency.sh: how long from `smtpfence fleet block` to the first
# SYN dropped on every targeted host. A benchmark, not a test: it prints a
# table and fails only when the setup does. See bench/fleet/README.md.
#
#   sudo bash bench/fleet/latency.sh [STEADY_N [FAILOVER_N]]     (defaults 50 20)
#
# Topology (tests/fleet/etcd.sh): 3 etcd members with TLS and auth, the
# admin namespace (the CLI), 4 mail hosts each running `smtpfence agent`
# (mx1, mx2: role mx; sub1: submission; central1: central; XDP on lan0), and a
# sender namespace (203.0.113.60) that owns one fresh source address per
# change, from the documentation range 198.51.100.0/24 (the hosts route it
# back via the sender).
#
# Per change: a fresh prefix P (a random length /26../32 inside
# 198.51.100.0/24; the previous change's rule is gone by then) and a source S
# in P. For every targeted
# host a prober in the sender namespace, `tcpprobe count --src S --timeout-ms
# 150 --interval-ms 10` (see start_probers), starts 100 ms before t0; then t0
# is taken and `smtpfence fleet block P` (all hosts, waiting) runs from the
# admin namespace. Per change and host:
#   ack      t0 until the CLI printed "stored (revision N)", i.e. the rule's
#            put returned (stdout line-buffered by stdbuf, stamped on arrival)
#   applied  what the CLI prints, "HOST: applied in N ms": the agent's clock
#            at its report minus the CLI's clock at its start (after process
#            start, before connecting). In failover, when the CLI had to be
#            run again, plus the offset of that run from t0. Also the
#            report's at_ms minus t0 ("applied from t0").
#   dropped  t0 until the start of the first probe attempt that was dropped
#            (resolution 10 ms; below 1 s no SYN is retransmitted), with a
#            timing check (see dropped_ms).
#   cli      t0 until the waiting CLI returned (every host applied).
# "every host" rows take, per change, the slowest of the 4 hosts (the
# issue's "dropped on every targeted host"); "per host" rows pool all host
# samples. Percentiles are nearest-rank: with n=50, p99 is the maximum.
# After each change the rule is removed (`fleet remove P`, waiting) and S
# deleted, so every change is a new block on an unchanged rule set.
#
# Scenarios:
#   baseline  interleaved, n=STEADY_N each, from the admin namespace: bare
#             `etcdctl put` as user admin with its password (what the CLI
#             does: TLS, login, put), the same with the client certificate
#             only (no password login), and `fleet block X/32 --no-wait`
#             wall time (every host; removed after the baseline).
#   steady    STEADY_N changes, cluster healthy.
#   failover  FAILOVER_N changes, each right after the etcd leader was killed
#             (SIGKILL, etcd_member_kill $(etcd_leader)): t0 is taken as soon
#             as the leader's process is gone; a CLI run that fails (no
#             leader yet) is run again at once, up to 15 s. The member is
#             restarted and every agent back in sync before the next change.
#
# Raw samples go to $FLEET_BENCH_OUT (default /tmp/smtpfence-fleet-bench),
# outside the harness's temporary directory, which the cleanup removes.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STEADY_N=${1:-50}
FAILOVER_N=${2:-20}
OUT=${FLEET_BENCH_OUT:-/tmp/smtpfence-fleet-bench}
STEADY_WINDOW_S=${STEADY_WINDOW_S:-2}     # probing per change: a drop later than this is NA
FAILOVER_WINDOW_S=${FAILOVER_WINDOW_S:-6}
PROBE_TIMEOUT_MS=150
PROBE_INTERVAL_MS=10
PROBE_LEAD_S=0.1

# shellcheck source=SCRIPTDIR/../../tests/fleet/etcd.sh
source "$ROOT/tests/fleet/etcd.sh"

harness_require_root "the fleet benchmark"
fleet_require_tools
command -v stdbuf >/dev/null || harness_die "stdbuf (coreutils) is needed"
fleet_lan_create

# Private copies of the binaries: build/ may be rebuilt while this runs.
if ! cp "$SMTPFENCE" "$HARNESS_TMP/smtpfence" || ! cp "$TCPPROBE" "$HARNESS_TMP/tcpprobe"; then
    harness_die "build first: $SMTPFENCE and $TCPPROBE"
fi
SMTPFENCE=$HARNESS_TMP/smtpfence
TCPPROBE=$HARNESS_TMP/tcpprobe
mkdir -p "$OUT" && rm -f "$OUT"/*.tsv "$OUT"/*.log

HOSTS=(mx1 mx2 sub1 central1)
declare -A ROLE=([mx1]=mx [mx2]=mx [sub1]=submission [central1]=central)
declare -A IP=([mx1]=$FLEET_NET.11 [mx2]=$FLEET_NET.12 [sub1]=$FLEET_NET.13 [central1]=$FLEET_NET.14)
SENDER_NS=sffleet-sender-$FLEET_ID
SENDER_IP=$FLEET_NET.60
BENCH_NET=198.51.100.0/24

host_ns() { echo "sffleet-$1-$FLEET_ID"; }
pin_dir() { echo "/sys/fs/bpf/smtpfence-fleet-$FLEET_ID-$1"; }
remove_pins() {
    local h
    for h in "${HOSTS[@]}"; do rm -rf -- "$(pin_dir "$h")"; done
}
harness_on_cleanup remove_pins

fleet() { nsenter --net="$NETNS_DIR/$FLEET_ADMIN_NS" -- "$SMTPFENCE" fleet --config "$HARNESS_TMP/admin.conf" "$@"; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
ms_since() { echo $((($2 - $1) / 1000)); } # FROM_US TO_US: whole ms

# ------------------------------------------------------------ setup

T0=$SECONDS
etcd_cluster_start 3
etcd_enable_auth || harness_die "etcd auth"
fleet_admin_config "$HARNESS_TMP/admin.conf"

fleet_ns_join "$SENDER_NS" "$SENDER_IP" || harness_die "sender namespace"
for h in "${HOSTS[@]}"; do
    ns=$(host_ns "$h")
    fleet_ns_join "$ns" "${IP[$h]}" || harness_die "namespace of $h"
    ip -n "$ns" route add "$BENCH_NET" via "$SENDER_IP" || harness_die "route on $h"
    etcd_add_agent "$h" || harness_die "etcd user of $h"
    fleet_agent_config "$HARNESS_TMP/$h.conf" "$h" "${ROLE[$h]}" "$(pin_dir "$h")" "$HARNESS_TMP/state-$h"
    nsenter --net="$NETNS_DIR/$ns" -- "$TCPPROBE" listen --die-with-parent 25 >"$HARNESS_TMP/listen-$h.out" 2>&1 &
    harness_track $!
    nsenter --net="$NETNS_DIR/$ns" -- setpriv --pdeathsig TERM -- \
        "$SMTPFENCE" agent --config "$HARNESS_TMP/$h.conf" >>"$OUT/agent-$h.log" 2>&1 &
    harness_track $!
done
in_sync() {
    fleet status --json 2>/dev/null |
        jq -e "[.hosts[] | select(.alive and .store_connected and .in_sync)] | length == ${#HOSTS[@]}" >/dev/null
}
harness_wait_until 30 in_sync || harness_die "the agents are not all alive and in sync: $(fleet status 2>&1)"
harness_log "cluster, auth and ${#HOSTS[@]} agents up in $((SECONDS - T0)) s"

# ------------------------------------------------------------ probes

# A prober per host: one `tcpprobe count --interval-ms` process (no fork per
# attempt: a first version forked `tcpprobe connect` in a shell loop, which
# took ~60 ms per attempt on this loaded 2-core VM and slowed the CLI it
# measured by ~150 ms). Attempt k starts at (its start) + k*PROBE_INTERVAL_MS;
# the rule, once in force, stays until the prober ends, so the attempts
# accepted come first and the first dropped one is number ok (from 0).
# Output: "LAUNCH_US" (the shell's clock just before exec), then tcpprobe's
# "ok=X fail=Y span_us=S", then "END_US".
PROBER_PIDS=()
# start_probers SRC WINDOW_S: checks that SRC reaches every host, starts the
# probers and waits PROBE_LEAD_S so that their first attempts precede t0.
start_probers() {
    local src=$1 attempts=$(($2 * 1000 / PROBE_INTERVAL_MS)) h
    for h in "${HOSTS[@]}"; do
        nsenter --net="$NETNS_DIR/$SENDER_NS" -- "$TCPPROBE" connect --src "$src" --timeout-ms 1000 "${IP[$h]}" 25 \
            >/dev/null 2>&1 || harness_die "source $src does not reach $h before its change"
    done
    PROBER_PIDS=()
    for h in "${HOSTS[@]}"; do
        # shellcheck disable=SC2016 # expanded by the inner bash
        nsenter --net="$NETNS_DIR/$SENDER_NS" -- bash -c 'echo "${EPOCHREALTIME/./}"; "$0" "$@"; echo "${EPOCHREALTIME/./}"' \
            "$TCPPROBE" count --src "$src" --timeout-ms "$PROBE_TIMEOUT_MS" --attempts "$attempts" \
            --interval-ms "$PROBE_INTERVAL_MS" "${IP[$h]}" 25 >"$HARNESS_TMP/probe-$h" 2>&1 &
        PROBER_PIDS+=($!)
        harness_track $!
    done
    sleep "$PROBE_LEAD_S"
}

wait_probers() {
    local p
    for p in "${PROBER_PIDS[@]}"; do wait "$p" 2>/dev/null; done
}

# dropped_ms HOST T0_US: "MS CHECK_MS": ms from T0 to the start of the first
# dropped attempt (launch + ok*interval, the interval measured by span_us),
# and the same start estimated from the other end (end - timeout - span +
# ok*interval) minus the first: the timing error of the estimate. "NA NA"
# when none was dropped (or none accepted: the source never worked).
dropped_ms() {
    awk -v t0="$2" -v to="$PROBE_TIMEOUT_MS" 'NR == 1 { launch = $1 }
        /^ok=/ { split($0, f, /[= ]/); ok = f[2]; fail = f[4]; span = f[6]; n = ok + fail }
        NR > 1 && /^[0-9]+$/ { end = $1 }
        END { if (!n || !ok || !fail || !end) { print "NA NA"; exit }
              iv = span / (n - 1); a = launch + ok * iv; b = end - to * 1000 - span + ok * iv
              printf "%d %d\n", (a - t0) / 1000, (b - a) / 1000 }' "$HARNESS_TMP/probe-$1"
}

# ------------------------------------------------------------ one change

# The prefix of change I: a random length 26..32 inside 198.51.100.0/24 (only
# documentation addresses; each change's rule is removed before the next),
# and a random source in it other than .0 and .255.
PREFIX="" SRC=""
pick_prefix() {
    local len=$((26 + RANDOM % 7)) host=$((1 + RANDOM % 254))
    local size=$((1 << (32 - len)))
    local base=$((host / size * size))
    PREFIX=198.51.100.$base/$len
    SRC=198.51.100.$host
}

# change SCENARIO I KILL: one measured change; appends to $OUT/SCENARIO.tsv
# "I HOST ACK APPLIED DROPPED GAP CLI RUNS APPLIED_FROM_T0".
change() {
    local sc=$1 i=$2 kill=$3 h t0 t1 tack='' run=0 rc leader='' run_start applied_base=0 line
    pick_prefix "$i"
    ip -n "$SENDER_NS" addr add "$SRC/32" dev "$FLEET_IF" || harness_die "address $SRC"
    start_probers "$SRC" $((kill ? FAILOVER_WINDOW_S : STEADY_WINDOW_S))
    if ((kill)); then
        leader=$(etcd_leader) || harness_die "no leader before change $i"
        etcd_member_kill "$leader" || harness_die "cannot kill etcd$leader"
    fi
    t0=$(now_us)
    while :; do
        run=$((run + 1))
        run_start=$(now_us)
        nsenter --net="$NETNS_DIR/$FLEET_ADMIN_NS" -- stdbuf -oL "$SMTPFENCE" fleet --config "$HARNESS_TMP/admin.conf" \
            block "$PREFIX" --reason "bench $sc $i" --wait 10s 2>"$HARNESS_TMP/cli.err" |
            while IFS= read -r line; do echo "${EPOCHREALTIME/./} $line"; done >"$HARNESS_TMP/cli.out"
        rc=${PIPESTATUS[0]}
        ((rc == 0)) && break
        cat "$HARNESS_TMP/cli.out" "$HARNESS_TMP/cli.err" >>"$OUT/cli-retries.log"
        (($(now_us) - t0 < 15000000)) || harness_die "change $i: the CLI failed for 15 s: $(cat "$HARNESS_TMP/cli.err")"
    done
    t1=$(now_us)
    applied_base=$(ms_since "$t0" "$run_start")
    tack=$(awk '/ stored \(revision/ { t = $1 } END { print t }' "$HARNESS_TMP/cli.out")
    wait_probers
    # The agents' reports as stored (at_ms: the host's clock, this machine's).
    fleet_etcdctl "$FLEET_ADMIN_NS" admin -- get --prefix /smtpfence/v1/hosts/ |
        awk -F/ '/^\/smtpfence\/v1\/hosts\/[^\/]+\/applied$/ { h = $5; getline; print h, $0 }' >"$HARNESS_TMP/applied"
    for h in "${HOSTS[@]}"; do
        local applied drop at_ms abs
        applied=$(awk -v h="$h:" '$2 == h && $3 == "applied" { print $5 }' "$HARNESS_TMP/cli.out")
        drop=$(dropped_ms "$h" "$t0")
        at_ms=$(awk -v h="$h" '$1 == h { print $2 }' "$HARNESS_TMP/applied" | jq -r '.at_ms // empty')
        abs=NA
        [[ -n $at_ms ]] && abs=$((at_ms - t0 / 1000))
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$h" "$(ms_since "$t0" "$tack")" \
            "$([[ -n $applied ]] && echo $((applied + applied_base)) || echo NA)" \
            "${drop% *}" "${drop#* }" "$(ms_since "$t0" "$t1")" "$run" "$abs" >>"$OUT/$sc.tsv"
    done
    if ((kill)); then
        etcd_member_start "$leader" || harness_die "etcd$leader does not come back"
    fi
    fleet remove "$PREFIX" --wait 15s >/dev/null 2>>"$OUT/cli-retries.log" ||
        harness_die "change $i: cannot remove $PREFIX"
    ip -n "$SENDER_NS" addr del "$SRC/32" dev "$FLEET_IF"
    if ((kill)); then harness_wait_until 20 in_sync || harness_die "agents not back in sync after change $i"; fi
}

# ------------------------------------------------------------ baseline

harness_log "baseline: $STEADY_N x (etcdctl put with password, etcdctl put with certificate, fleet block --no-wait)"
: >"$OUT/baseline.tsv"
for ((i = 0; i < STEADY_N; i++)); do
    t0=$(now_us)
    fleet_etcdctl "$FLEET_ADMIN_NS" admin admin -- put /smtpfence/bench/k "$i" >/dev/null || harness_die "etcdctl put"
    t1=$(now_us)
    fleet_etcdctl "$FLEET_ADMIN_NS" admin -- put /smtpfence/bench/k "$i" >/dev/null || harness_die "etcdctl put (cert)"
    t2=$(now_us)
    fleet block "198.19.255.$i/32" --no-wait >/dev/null || harness_die "fleet block --no-wait"
    t3=$(now_us)
    printf '%s\t%s\t%s\t%s\n' "$i" "$(ms_since "$t0" "$t1")" "$(ms_since "$t1" "$t2")" "$(ms_since "$t2" "$t3")" \
        >>"$OUT/baseline.tsv"
done
for ((i = 0; i < STEADY_N; i++)); do
    fleet remove "198.19.255.$i/32" --no-wait >/dev/null || harness_die "removing 198.19.255.$i/32"
done
harness_wait_until 20 in_sync || harness_die "agents not in sync after the baseline"

# ------------------------------------------------------------ runs

harness_log "steady: $STEADY_N changes, every host targeted"
: >"$OUT/steady.tsv"
for ((i = 0; i < STEADY_N; i++)); do change steady "$i" 0; done

harness_log "failover: $FAILOVER_N changes, each right after the leader was killed"
: >"$OUT/failover.tsv"
for ((i = 0; i < FAILOVER_N; i++)); do change failover $((256 + i)) 1; done

# ------------------------------------------------------------ the table

# stats: numbers on stdin -> "n p50 p90 p99 max" (nearest rank; NA counted apart)
stats() {
    sort -n | awk '$1 != "NA" { v[++n] = $1 } $1 == "NA" { na++ }
        function r(p) { k = int(p * n + 0.9999); if (k < 1) k = 1; return v[k] }
        END { if (!n) { print "0 - - - -" (na ? "(NA:" na ")" : ""); exit }
              printf "%d %d %d %d %d%s\n", n, r(.5), r(.9), r(.99), v[n], na ? "(NA:" na ")" : "" }'
}
row() { # SCENARIO FIGURE < numbers
    local s
    s=$(stats)
    # shellcheck disable=SC2086
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" $s
}
per_change_max() { # FILE COLUMN: per change, the max over hosts (NA if any NA)
    awk -v c="$2" '{ if ($c == "NA") na[$1] = 1; else if (!($1 in m) || $c > m[$1]) m[$1] = $c; seen[$1] = 1 }
        END { for (i in seen) print (i in na) ? "NA" : m[i] }' "$1"
}
per_change_first() { awk -v c="$2" '!($1 in s) { s[$1] = 1; print $c }' "$1"; }

{
    echo "fleet command-to-enforced latency, ms ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo '| scenario | figure | n | p50 | p90 | p99 | max |'
    echo '|---|---|---|---|---|---|---|'
    cut -f2 "$OUT/baseline.tsv" | row baseline "etcdctl put, user+password (process wall)"
    cut -f3 "$OUT/baseline.tsv" | row baseline "etcdctl put, client cert only (process wall)"
    cut -f4 "$OUT/baseline.tsv" | row baseline "fleet block --no-wait (process wall)"
    for sc in steady failover; do
        f=$OUT/$sc.tsv
        [[ -s $f ]] || continue
        per_change_first "$f" 3 | row "$sc" "ack: rule put returned"
        per_change_max "$f" 4 | row "$sc" "applied as printed, every host (max of 4)"
        per_change_max "$f" 9 | row "$sc" "applied from t0 (agent's at_ms), every host (max of 4)"
        per_change_max "$f" 5 | row "$sc" "first SYN dropped, every host (max of 4)"
        per_change_first "$f" 7 | row "$sc" "cli returned (waiting)"
        cut -f4 "$f" | row "$sc" "applied as printed, per host"
        awk -F'\t' '$9 != "NA" && $4 != "NA" { print $9 - $4 }' "$f" | row "$sc" "t0 to the CLI's own start (at_ms - t0 - printed)"
        cut -f5 "$f" | row "$sc" "first SYN dropped, per host"
        cut -f6 "$f" | row "$sc" "probe timing check (end-based - launch-based), per host"
        awk '$8 > 1' "$f" | cut -f1 | sort -u | wc -l | sed "s/^/  $sc: changes whose CLI had to be run again: /" >&2
    done
} | tee "$OUT/table.md"
harness_log "raw samples in $OUT; done in $((SECONDS - T0)) s"
