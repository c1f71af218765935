#!/usr/bin/env bash
# End-to-end: `serve` under a scrape loop for 30 s while rules change and
# SMTP traffic flows.
#
#   /metrics is scraped back to back (with /rules and /top in between) while
#   another loop adds, changes and removes block, allow and limit rules and two
#   sources keep connecting. Every scrape answers 200 and passes `promtool
#   check metrics`; every rule change succeeds; serve is still running at the
#   end and its resident memory grew by less than 2 MiB between 5 s and 30 s
#   (no leak per scrape or per rule change); it exits 0 on SIGTERM.
#
# Needs root. Run: sudo bash tests/e2e/test_serve_soak.sh
# (SMTPFENCE / TCPPROBE point at the binaries; defaults build/...)
set -u
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMTOOL=${PROMTOOL:-/var/cache/smtpfence-deps/prometheus/usr/bin/promtool}
SOAK_S=${SOAK_S:-30}
WARMUP_S=5
MAX_RSS_GROWTH_KB=2048

e2e_require_root
e2e_require_tools curl
[[ -x $PROMTOOL ]] || e2e_die "promtool not found at $PROMTOOL (scripts/install-deps.sh unpacks it; or set PROMTOOL)"
e2e_setup_topology

H4_A=198.51.100.1
H4_B=203.0.113.1
LISTEN=127.0.0.1:9464

start_listener 25
expect_exit 0 "attach $HOST_IF" fence attach "$HOST_IF"

start_serve "$LISTEN"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVE_PID/status"; }

# Traffic for the whole soak: a source in the churned block range, and one in
# the churned limit range (each attempt gives up after 300 ms).
attempts=$(((SOAK_S + 2) * 1000 / 50))
for src_dst in "203.0.113.10 $H4_B" "198.51.100.10 $H4_A"; do
    read -r src dst <<<"$src_dst"
    sender_exec "$TCPPROBE" count --src "$src" --timeout-ms 300 --attempts "$attempts" --interval-ms 50 "$dst" 25 \
        >/dev/null 2>&1 &
    E2E_PIDS+=("$!")
done

# Rule churn until STOP exists; one line per failed change in CHURN_ERR.
STOP=$E2E_TMP/stop
CHURN_COUNT=$E2E_TMP/churn.count
CHURN_ERR=$E2E_TMP/churn.err
churn() {
    local n=0 i msg
    local -a changes=(
        "block 203.0.113.0/24 --reason soak"
        "allow 203.0.113.20 --reason soak"
        "limit 198.51.100.0/24 --rate 5/s --reason soak"
        "block 2001:db8:1::/64 --reason soak"
        "limit 203.0.113.0/24 --rate 10/s --per rule --reason soak"
        "remove 203.0.113.20"
        "remove 198.51.100.0/24 2001:db8:1::/64"
        "remove 203.0.113.0/24"
    )
    while [[ ! -e $STOP ]]; do
        for i in "${changes[@]}"; do
            # Warnings (a limit covering an allow, a rule covering the
            # host's own address) are expected; only failures count.
            # shellcheck disable=SC2086 # the change is a word list
            msg=$(fence $i 2>&1 >/dev/null) || echo "failed: $i: $msg" >>"$CHURN_ERR"
            n=$((n + 1))
        done
    done
    echo "$n" >"$CHURN_COUNT"
}
churn &
CHURN_PID=$!
E2E_PIDS+=("$CHURN_PID")

e2e_log "scraping for $SOAK_S s while rules change"
scrapes=0 bad_status=0 bad_parse=0 other=0 rss_start= first_problem=
BODY=$E2E_TMP/body
start=$SECONDS
# At least SOAK_S seconds and at least SOAK_SCRAPES scrapes: on a loaded
# machine (each scrape spawns curl and promtool) the soak runs longer rather
# than judging too few scrapes, up to three times SOAK_S.
SOAK_SCRAPES=100
while ((SECONDS - start < SOAK_S || (scrapes < SOAK_SCRAPES && SECONDS - start < 3 * SOAK_S))); do
    if [[ -z $rss_start ]] && ((SECONDS - start >= WARMUP_S)); then
        rss_start=$(rss_kb)
    fi
    code=$(host_exec curl -sS --max-time 10 -o "$BODY" -w '%{http_code}' "http://$LISTEN/metrics" 2>&1)
    scrapes=$((scrapes + 1))
    if [[ $code != 200 ]]; then
        bad_status=$((bad_status + 1))
        first_problem=${first_problem:-"/metrics answered '$code': $(head -c 300 "$BODY")"}
        continue
    fi
    if ! out=$("$PROMTOOL" check metrics <"$BODY" 2>&1) || [[ -n $out ]]; then
        bad_parse=$((bad_parse + 1))
        first_problem=${first_problem:-"promtool: $out"}
    fi
    if ((scrapes % 10 == 0)); then
        for path in /rules '/top?interval=0.1'; do
            code=$(host_exec curl -sS --max-time 10 -o "$BODY" -w '%{http_code}' "http://$LISTEN$path" 2>&1)
            if [[ $code != 200 ]] || ! jq -e . "$BODY" >/dev/null 2>&1; then
                other=$((other + 1))
                first_problem=${first_problem:-"$path answered '$code': $(head -c 300 "$BODY")"}
            fi
        done
    fi
done
rss_end=$(rss_kb)
touch "$STOP"
wait "$CHURN_PID"

e2e_log "$scrapes scrapes; $(cat "$CHURN_COUNT" 2>/dev/null) rule changes; RSS ${rss_start} kB -> ${rss_end} kB"
if kill -0 "$SERVE_PID" 2>/dev/null; then
    e2e_pass "serve still runs after $SOAK_S s"
else
    e2e_fail "serve died: $(cat "$SERVE_OUT")"
fi
if ((scrapes >= SOAK_SCRAPES)); then
    e2e_pass "$scrapes scrapes of /metrics in $((SECONDS - start)) s"
else
    e2e_fail "only $scrapes scrapes of /metrics in $((3 * SOAK_S)) s"
fi
check_eq "every scrape answered 200" 0 "$bad_status"
check_eq "every scrape passed promtool check metrics" 0 "$bad_parse"
check_eq "every /rules and /top answered 200 with JSON" 0 "$other"
[[ -n $first_problem ]] && e2e_log "first problem: $first_problem"
churned=$(cat "$CHURN_COUNT" 2>/dev/null || echo 0)
if ((churned >= 40)); then
    e2e_pass "$churned rule changes during the soak"
else
    e2e_fail "only $churned rule changes during the soak"
fi
check_eq "every rule change succeeded" "" "$(cat "$CHURN_ERR" 2>/dev/null)"
if [[ $rss_start =~ ^[0-9]+$ && $rss_end =~ ^[0-9]+$ ]] && ((rss_end - rss_start < MAX_RSS_GROWTH_KB)); then
    e2e_pass "RSS grew by $((rss_end - rss_start)) kB between ${WARMUP_S} s and ${SOAK_S} s (< $MAX_RSS_GROWTH_KB kB)"
else
    e2e_fail "RSS went from '${rss_start}' kB to '${rss_end}' kB (limit: + $MAX_RSS_GROWTH_KB kB)"
fi

stop_serve

e2e_finish
