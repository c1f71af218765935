# shellcheck shell=bash disable=SC2034,SC2016 # globals are read by scenarios.sh; bash -c scripts are single-quoted on purpose
# The mail lab's plumbing, sourced by scripts/lab.sh and tests/mta/test_*.sh.
#
# Topology: five network namespaces, named after this shell's PID so that runs
# never collide. Every host has one veth ("eth0") whose peer is a port of the
# bridge in the "net" namespace, i.e. they share one Ethernet segment:
#
#   sfmail-client-PID  198.51.100.10   swaks, the legitimate client
#   sfmail-relay-PID   198.51.100.20   upstream relay: its own Postfix, with a backlog
#   sfmail-storm-PID   203.0.113.10-.59  the storm: 50 source addresses, and an
#                                      alerting MTA (its own Postfix) on .10
#        |  (each: eth0 <-veth-> port in sfmail-net-PID, bridge br0)
#   sfmail-mx-PID      198.51.100.1, 203.0.113.1 on eth0: the receiving mail
#                      host, Postfix on 25 and 587, a listener on 22, and
#                      smtpfence attached to eth0
#
# Only documentation ranges are used, and no namespace has a default route:
# traffic cannot leave the lab. Postfix instances run with `postfix -c DIR`
# (never postmulti), each with its own config, queue, data and log directory
# under a temporary directory; the system's /etc/postfix is only read. The
# receiving instance delivers every message for @lab.example to one maildir,
# where messages are counted by their Message-ID.
#
# Everything created here (namespaces and their processes, Postfix instances,
# the smtpfence pin dir, cgroups, the temporary directory) is removed by
# tests/harness.sh's cleanup, on EXIT, INT, TERM and HUP (ml_begin); the
# leftovers of runs killed with SIGKILL are reaped by the next run.
#
# Environment: SMTPFENCE (default build/userspace/smtpfence), TCPPROBE
# (default build/tests/tcpprobe). SMTPFENCE_PIN_DIR is set to a private
# directory, /sys/fs/bpf/smtpfence-mta-PID.

# shellcheck source=SCRIPTDIR/../../tests/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../tests/harness.sh"
# The lab polls Postfix's queue and logs: every 100 ms is often enough.
HARNESS_POLL_S=0.1
HARNESS_INDENT='   '

# Postfix's commands live in /usr/sbin, which a non-login root PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

ML_ID=$HARNESS_ID
ML_NS_NET=sfmail-net-$ML_ID
ML_NS_MX=sfmail-mx-$ML_ID
ML_NS_RELAY=sfmail-relay-$ML_ID
ML_NS_STORM=sfmail-storm-$ML_ID
ML_NS_CLIENT=sfmail-client-$ML_ID

ML_DOMAIN=lab.example
ML_MX=198.51.100.1        # the mail host, as the client and the relay see it
ML_MX_B=203.0.113.1       # the mail host, as the storm sees it
ML_CLIENT=198.51.100.10
ML_RELAY=198.51.100.20
ML_RELAY_NET=198.51.100.16/28 # "the upstream": its servers, limited together
ML_STORM_NET=203.0.113.0/24
ML_STORM_MTA=203.0.113.10
ML_STORM_ADDRS=()
for ((ml_i = 10; ml_i < 60; ml_i++)); do ML_STORM_ADDRS+=("203.0.113.$ml_i"); done
unset ml_i

ML_CGROUP_BASE=   # a cgroup v2 directory of this run (CPU time of the mail host)
ML_INSTANCES=()   # Postfix instances: NAME, each in $ML_TMP/NAME
declare -A ML_INST_NS=()
ML_ETC_SUM=

# The lab's names for the harness's state and helpers: its temporary
# directory, its background processes (ml_flood, ml_sampler, Exim daemons)
# and the count of checks.
declare -n ML_TMP=HARNESS_TMP ML_PIDS=HARNESS_PIDS ML_PASSED=HARNESS_PASSED ML_FAILED=HARNESS_FAILED
ml_log() { harness_log "$@"; }
ml_die() { harness_die "$@"; }
ml_wait() { harness_wait_until "$@"; }
ml_say() { printf '   %s\n' "$*"; }

# Results: checks (pass/fail) and scenario rows for the summary table.
ML_CHECKS=()   # "scenario|what|expected|got|ok"
ML_ROWS=()     # "scenario|sent|deferred|delivered|dropped|bounced|time|note"
ML_SCENARIO=setup

# ------------------------------------------------------------ preconditions

# ml_require: skip (77) when not root or when the MTA tools are missing;
# anything else missing is a failure.
ml_require() {
    harness_require_root "the mail lab"
    local t missing=()
    for t in postfix postconf postqueue postsuper sendmail swaks; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [[ -x /usr/lib/postfix/sbin/master || -x $(postconf -dh daemon_directory 2>/dev/null)/master ]] ||
        missing+=(postfix-master)
    ((${#missing[@]} == 0)) || harness_skip "Postfix/swaks missing (${missing[*]}); scripts/install-deps.sh installs them"
    harness_require_tools ip nsenter jq mountpoint sha256sum awk
    getent passwd postfix >/dev/null || ml_die "no 'postfix' user (is the postfix package installed?)"
    getent group postdrop >/dev/null || ml_die "no 'postdrop' group (is the postfix package installed?)"
}

# ------------------------------------------------------------ time

ml_now_ms() { echo $(($(date +%s%N) / 1000000)); }
# ml_secs MS: "12.3"
ml_secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }

# ------------------------------------------------------------ results

# ml_scenario NAME: the scenario the next checks belong to.
ml_scenario() { ML_SCENARIO=$1; }

# ml_check WHAT EXPECTED GOT OK: records one check (OK is 1 or 0).
ml_check() {
    if (($4)); then
        ML_CHECKS+=("$ML_SCENARIO|$1|$2|$3|ok")
        harness_pass "$1: $3"
    else
        ML_CHECKS+=("$ML_SCENARIO|$1|$2|$3|FAIL")
        harness_fail "$1: expected $2, got $3"
    fi
}

# ml_row SCENARIO CASE UNIT SENT DEFERRED DELIVERED DROPPED BOUNCED TIME NOTE:
# one row of the summary table. UNIT is "msgs" or "conns" (then DELIVERED
# counts connections that were accepted); "-" where a column does not apply.
ml_row() { ML_ROWS+=("$1|$2|$3|$4|$5|$6|$7|$8|$9|${10}"); }

ml_summary() {
    local r s c u sent def del drop bnc t note what exp got ok fmt
    fmt='  %-13s %-20s %-5s %6s %8s %9s %8s %7s %8s  %s\n'
    printf '\n%sSummary%s (msgs: messages, Message-IDs counted at the receiver; conns: TCP connections; dropped: SYNs dropped by smtpfence)\n' "$HARNESS_C_B" "$HARNESS_C_OFF"
    # shellcheck disable=SC2059
    printf "$fmt" scenario case unit sent deferred delivered dropped bounced time notes
    # shellcheck disable=SC2059
    printf "$fmt" -------- ---- ---- ---- -------- --------- ------- ------- ---- -----
    for r in "${ML_ROWS[@]}"; do
        IFS='|' read -r s c u sent def del drop bnc t note <<<"$r"
        # shellcheck disable=SC2059
        printf "$fmt" "$s" "$c" "$u" "$sent" "$def" "$del" "$drop" "$bnc" "$t" "$note"
    done
    printf '\n  %-20s %-58s %-20s %s\n' scenario check expected got
    for r in "${ML_CHECKS[@]}"; do
        IFS='|' read -r s what exp got ok <<<"$r"
        printf '  %-20s %-58s %-20s %s%s\n' "$s" "$what" "$exp" "$got" "$([[ $ok == ok ]] || echo "  ${HARNESS_C_BAD}<-- FAIL${HARNESS_C_OFF}")"
    done
    printf '\n%d passed, %d failed\n' "$HARNESS_PASSED" "$HARNESS_FAILED"
}

# ml_finish: summary, exit status (for the tests).
ml_finish() {
    ml_summary
    ((HARNESS_FAILED == 0)) || exit 1
    exit 0
}

# ------------------------------------------------------------ setup, cleanup

# A checksum of the system's Postfix configuration: it must not change.
ml_etc_postfix_sum() {
    find /etc/postfix -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
}

# ml_begin: the run's temporary directory, pin dir and cleanup (the
# harness's), and a cgroup for the mail host's CPU time.
ml_begin() {
    ML_ETC_SUM=$(ml_etc_postfix_sum)
    harness_begin mta
    harness_on_cleanup ml_cleanup
    chmod 755 "$ML_TMP" # Postfix's daemons (user postfix) must reach their queue
    local root
    if root=$(harness_cgroup_root); then
        ML_CGROUP_BASE=$root/smtpfence-mta-$ML_ID
        mkdir "$ML_CGROUP_BASE" 2>/dev/null || ML_CGROUP_BASE=
    fi
}

# ml_cleanup: the lab's own part of the cleanup, run by the harness once the
# lab's processes (Postfix and Exim instances among them: they run in the
# lab's namespaces) have ended.
ml_cleanup() {
    if [[ -n $ML_CGROUP_BASE && -d $ML_CGROUP_BASE ]]; then
        find "$ML_CGROUP_BASE" -depth -type d -exec rmdir {} \; 2>/dev/null
    fi
    return 0
}

# ml_check_etc_postfix: the system's Postfix configuration is unchanged.
ml_check_etc_postfix() {
    local now
    now=$(ml_etc_postfix_sum)
    ml_check "/etc/postfix unchanged (sha256 of its files)" "${ML_ETC_SUM:0:12}" "${now:0:12}" \
        "$([[ $now == "$ML_ETC_SUM" ]] && echo 1 || echo 0)"
}

# ------------------------------------------------------------ topology

# ml_join NS PORT ADDR/LEN...: NS gets eth0, whose peer PORT is a bridge port.
ml_join() {
    local ns=$1 port=$2 a
    shift 2
    ip link add eth0 netns "$ns" type veth peer name "$port" netns "$ML_NS_NET" ||
        ml_die "cannot create the veth pair $ns/eth0 - $ML_NS_NET/$port"
    ip -n "$ML_NS_NET" link set "$port" master br0 up || ml_die "cannot add $port to the bridge"
    ip -n "$ns" link set eth0 up
    for a in "$@"; do
        ip -n "$ns" addr add "$a" dev eth0 || ml_die "cannot add $a to $ns"
    done
}

fence() { nsenter --net="$NETNS_DIR/$ML_NS_MX" -- "$SMTPFENCE" "$@"; }

# ml_fence_shown ARGS...: runs smtpfence on the mail host, showing the command
# and its output; returns its exit code.
ml_fence_shown() {
    printf '   %s# smtpfence %s%s\n' "$HARNESS_C_B" "$*" "$HARNESS_C_OFF"
    local out rc
    out=$(fence "$@" 2>&1)
    rc=$?
    [[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/     /'
    return "$rc"
}

# ml_rule CIDR JQ: a field of one rule from `list --json` ("" if no such rule).
ml_rule() {
    local json
    json=$(fence list --json 2>/dev/null) || { echo "(list --json failed)"; return 1; }
    jq -r --arg c "$1" ".rules[] | select(.cidr == \$c) | $2" <<<"$json"
}

# ml_setup: namespaces, the bridge, addresses, the receiving Postfix, a
# listener on 22 (ssh stand-in), smtpfence attached to the mail host's eth0.
ml_setup() {
    ml_begin
    harness_ns_create "$ML_NS_NET"
    ip -n "$ML_NS_NET" link add br0 type bridge || ml_die "cannot create the bridge"
    ip -n "$ML_NS_NET" link set br0 up
    local ns
    for ns in "$ML_NS_MX" "$ML_NS_RELAY" "$ML_NS_STORM" "$ML_NS_CLIENT"; do harness_ns_create "$ns"; done
    ml_join "$ML_NS_MX" p-mx "$ML_MX/24" "$ML_MX_B/24"
    ml_join "$ML_NS_CLIENT" p-client "$ML_CLIENT/24"
    ml_join "$ML_NS_RELAY" p-relay "$ML_RELAY/24"
    ml_join "$ML_NS_STORM" p-storm "${ML_STORM_ADDRS[@]/%//24}"
    ml_log "lab $ML_ID: mail host $ML_MX, $ML_MX_B ($ML_NS_MX); client $ML_CLIENT; relay $ML_RELAY; storm ${ML_STORM_ADDRS[0]}-${ML_STORM_ADDRS[-1]#203.0.113.}"

    ml_pf_create mx "$ML_NS_MX" receiver
    local cg=
    if [[ -n $ML_CGROUP_BASE ]]; then
        mkdir -p "$ML_CGROUP_BASE/mx" && cg=$ML_CGROUP_BASE/mx
    fi
    ml_pf_start mx "$cg" || ml_die "the mail host's Postfix did not start: $(tail -5 "$ML_TMP/mx/log/maillog" 2>/dev/null)"
    ml_wait 10 ml_smtp_ready "$ML_NS_CLIENT" "$ML_MX" 25 || ml_die "Postfix on $ML_MX:25 does not answer"
    ml_wait 10 ml_smtp_ready "$ML_NS_CLIENT" "$ML_MX" 587 || ml_die "Postfix on $ML_MX:587 does not answer"

    # An ssh stand-in on 22: smtpfence must never touch it.
    ip netns exec "$ML_NS_MX" "$TCPPROBE" listen --die-with-parent --banner "SSH-2.0-lab" 22 \
        >"$ML_TMP/ssh.out" 2>&1 &
    ML_PIDS+=($!)
    ml_wait 5 grep -qsx ready "$ML_TMP/ssh.out" || ml_die "the port 22 listener did not start"

    fence attach eth0 >"$ML_TMP/attach.out" 2>&1 || ml_die "smtpfence attach failed: $(cat "$ML_TMP/attach.out")"
    ml_log "smtpfence attached to $ML_NS_MX/eth0 ($(fence status --json | jq -r '.interfaces[0].mode')), pin dir $SMTPFENCE_PIN_DIR"
}

# ml_smtp_ready NS ADDR PORT: the server answers with a 220 banner.
ml_smtp_ready() {
    ip netns exec "$1" "$TCPPROBE" connect --timeout-ms 1000 "$2" "$3" 2>/dev/null | grep -q '^220'
}

# ------------------------------------------------------------ Postfix instances

# ml_pf_create NAME NS ROLE: writes a Postfix instance in $ML_TMP/NAME:
# etc/ (main.cf, master.cf), spool/ (queue), data/, log/maillog.
#   receiver: listens on 25 and 587 of the mail host; delivers every
#             recipient of @lab.example to the maildir mail/inbox/.
#   sender:   no listener; relays all mail to [mail host]:25 (its address
#             on the sender's subnet) from the
#             namespace's first address; short retry timers.
ml_pf_create() {
    local name=$1 ns=$2 role=$3 d=$ML_TMP/$1
    mkdir -p "$d/etc" "$d/spool" "$d/data" "$d/log" || ml_die "cannot create $d"
    chown postfix:postfix "$d/data"
    cat >"$d/etc/main.cf" <<EOF
# smtpfence mail lab: instance "$name" ($role) in namespace $ns
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-$name
maillog_file = $d/log/maillog
maillog_file_prefixes = $ML_TMP
myhostname = $name.$ML_DOMAIN
mydomain = $ML_DOMAIN
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP
biff = no
readme_directory = no
smtputf8_enable = no
delay_warning_time = 0
# Retry soon (the lab's timescale is seconds), never give up during a run.
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
maximal_queue_lifetime = 1d
bounce_queue_lifetime = 1d
smtp_connect_timeout = 3s
EOF
    case $role in
    receiver)
        mkdir -p "$d/mail"
        chown nobody:nogroup "$d/mail"
        cat >>"$d/etc/main.cf" <<EOF
inet_interfaces = $ML_MX, $ML_MX_B
virtual_mailbox_domains = $ML_DOMAIN
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
virtual_minimum_uid = 100
# anvil: off unless a scenario turns it on; no client is exempt from it.
smtpd_client_connection_rate_limit = 0
smtpd_client_event_limit_exceptions =
anvil_rate_time_unit = 60s
EOF
        ;;
    sender)
        local src
        src=$(ip -n "$ns" -4 -o addr show scope global | awk '{print $4}' | head -1)
        src=${src%/*}
        local dst=$ML_MX # the mail host's address on the sender's subnet
        [[ $src == "${ML_MX_B%.*}".* ]] && dst=$ML_MX_B
        cat >>"$d/etc/main.cf" <<EOF
inet_interfaces = loopback-only
relayhost = [$dst]:25
smtp_bind_address = $src
EOF
        ;;
    *) ml_die "ml_pf_create: unknown role $role" ;;
    esac
    {
        echo "# service type private unpriv chroot wakeup maxproc command"
        if [[ $role == receiver ]]; then
            echo "25        inet  n - n - - smtpd"
            echo "587       inet  n - n - - smtpd"
        fi
        cat <<'EOF'
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
    } >"$d/etc/master.cf"
    ML_INSTANCES+=("$name")
    ML_INST_NS[$name]=$ns
}

ml_pf_dir() { echo "$ML_TMP/$1"; }
ml_pf_log() { echo "$ML_TMP/$1/log/maillog"; }
ml_pf_master_pid() {
    local f=$ML_TMP/$1/spool/pid/master.pid p
    [[ -r $f ]] || return 1
    p=$(tr -dc 0-9 <"$f")
    [[ -n $p ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}

# ml_pf_set NAME 'param = value'...: changes main.cf (postconf -e).
ml_pf_set() {
    local name=$1
    shift
    postconf -c "$ML_TMP/$name/etc" -e "$@"
}

# ml_pf_start NAME [CGROUP_DIR]: starts the instance's master in its namespace
# (in CGROUP_DIR when given, so that its CPU time can be read).
ml_pf_start() {
    local name=$1 cg=${2:-} d=$ML_TMP/$1 ns=${ML_INST_NS[$1]}
    if [[ -n $cg ]]; then
        bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$cg" \
            ip netns exec "$ns" postfix -c "$d/etc" start >"$d/start.out" 2>&1 || { cat "$d/start.out" >&2; return 1; }
    else
        ip netns exec "$ns" postfix -c "$d/etc" start >"$d/start.out" 2>&1 || { cat "$d/start.out" >&2; return 1; }
    fi
    ml_wait 10 ml_pf_master_pid "$name" >/dev/null
}

# ml_pf_stop NAME: stops the instance (master and all its children).
ml_pf_stop() {
    local name=$1 d=$ML_TMP/$1 pid i
    pid=$(ml_pf_master_pid "$name") || return 0
    postfix -c "$d/etc" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    return 0
}

ml_pf_reload() { postfix -c "$ML_TMP/$1/etc" reload >/dev/null 2>&1; }
ml_pf_flush() { postqueue -c "$ML_TMP/$1/etc" -f >/dev/null 2>&1; }
# ml_pf_queue_json NAME: postqueue -j (one JSON object per queued message).
ml_pf_queue_json() { postqueue -c "$ML_TMP/$1/etc" -j 2>/dev/null; }
ml_pf_queue_count() { ml_pf_queue_json "$1" | grep -c '^{'; }
ml_pf_queue_empty() { [[ $(ml_pf_queue_count "$1") -eq 0 ]]; }
# ml_log_lines NAME: the number of lines in the instance's log (a mark).
ml_log_lines() { local f; f=$(ml_pf_log "$1"); [[ -f $f ]] && wc -l <"$f" || echo 0; }
# ml_log_since NAME MARK: the log lines after MARK.
ml_log_since() { tail -n +$(($2 + 1)) "$(ml_pf_log "$1")" 2>/dev/null; }
# ml_log_count NAME MARK REGEX: how many log lines after MARK match.
ml_log_count() { ml_log_since "$1" "$2" | grep -cE -- "$3"; }

# The body of every lab message: an alert of about 1 KB, the size of a small
# real message (a relay adds its Received: header; DKIM adds about 600 bytes).
ML_MESSAGE_BODY=$(for i in $(seq 1 14); do printf 'alert %02d: disk /var/spool at 91%%, queue 4711 messages, host mon%02d.lab.example\n' "$i" "$i"; done)

# ml_inject NAME TAG N: N messages handed to the instance with sendmail(1),
# Message-ID <TAG.i.RUN@lab.example>, to TAG@lab.example.
ml_inject() {
    local name=$1 tag=$2 n=$3 d=$ML_TMP/$1
    ip netns exec "${ML_INST_NS[$name]}" bash -c '
        etc=$1 tag=$2 n=$3 run=$4 dom=$5 from=$6 body=$7
        for ((i = 1; i <= n; i++)); do
            printf "From: %s\nTo: %s@%s\nSubject: %s %d of %d\nMessage-ID: <%s.%d.%s@%s>\n\nmessage %d of %d\n%s\n" \
                "$from" "$tag" "$dom" "$tag" "$i" "$n" "$tag" "$i" "$run" "$dom" "$i" "$n" "$body" |
                sendmail -C "$etc" -f "$from" "$tag@$dom" || exit 1
        done' _ "$d/etc" "$tag" "$n" "$ML_ID" "$ML_DOMAIN" "$name@$name.$ML_DOMAIN" "$ML_MESSAGE_BODY"
}

# ml_delivered_ids TAG: the Message-IDs of TAG's messages in the receiver's
# maildir, one per delivered copy. The receiver is the instance "mx" unless
# ML_RECEIVER names another (the fleet scenario's mail hosts).
ml_delivered_ids() {
    local box=$ML_TMP/${ML_RECEIVER:-mx}/mail/inbox
    [[ -d $box ]] || return 0
    find "$box/new" "$box/cur" -type f -print0 2>/dev/null | xargs -0 -r grep -hi -m1 '^message-id:' |
        grep -F "<$1." | tr -d '\r' | awk '{print $2}'
}
# ml_delivered TAG: "COPIES UNIQUE" of TAG's messages at the receiver.
ml_delivered() {
    local ids
    ids=$(ml_delivered_ids "$1")
    if [[ -z $ids ]]; then echo "0 0"; return; fi
    echo "$(wc -l <<<"$ids") $(sort -u <<<"$ids" | wc -l)"
}
ml_delivered_at_least() { local c; read -r c _ < <(ml_delivered "$1"); ((c >= $2)); }

# ------------------------------------------------------------ clients

# ml_swaks NS SERVER PORT TAG I: one message with swaks; sets ML_LAT_MS (wall
# time of the whole SMTP transaction, swaks' own start-up included) and
# returns swaks' exit code.
ML_LAT_MS=0
ml_swaks() {
    local ns=$1 server=$2 port=$3 tag=$4 i=$5 t0 rc
    t0=$(ml_now_ms)
    ip netns exec "$ns" swaks --server "$server" --port "$port" --helo client.$ML_DOMAIN \
        --from "alice@client.$ML_DOMAIN" --to "$tag@$ML_DOMAIN" \
        --header "Message-Id: <$tag.$i.$ML_ID@$ML_DOMAIN>" --header "Subject: $tag $i" \
        --timeout 15 >"$ML_TMP/swaks.$tag.$i.out" 2>&1
    rc=$?
    ML_LAT_MS=$(($(ml_now_ms) - t0))
    return "$rc"
}

# ml_flood NS DST PORT ATTEMPTS INTERVAL_MS TIMEOUT_MS OUT ADDR...: one paced
# `tcpprobe count` per source address, all at once, in the background (the
# PID is in ML_FLOOD_PID); each address makes ATTEMPTS attempts, one every
# INTERVAL_MS. Bounded: ATTEMPTS x INTERVAL_MS + TIMEOUT_MS. Results: OUT.N.
ML_FLOOD_PID=
ml_flood() {
    local ns=$1 dst=$2 port=$3 attempts=$4 interval=$5 timeout=$6 out=$7
    shift 7
    ip netns exec "$ns" bash -c '
        tp=$1 dst=$2 port=$3 attempts=$4 interval=$5 timeout=$6 out=$7
        shift 7
        i=0
        for a in "$@"; do
            "$tp" count --src "$a" --timeout-ms "$timeout" --attempts "$attempts" \
                --interval-ms "$interval" "$dst" "$port" >"$out.$i" 2>&1 &
            i=$((i + 1))
        done
        wait' _ "$TCPPROBE" "$dst" "$port" "$attempts" "$interval" "$timeout" "$out" "$@" &
    ML_FLOOD_PID=$!
    ML_PIDS+=("$ML_FLOOD_PID")
}
# ml_flood_result OUT: "OK FAIL" summed over OUT.*.
ml_flood_result() {
    cat "$1".* 2>/dev/null | awk -F'[ =]' '/^ok=/{ok+=$2; fail+=$4} END{printf "%d %d\n", ok, fail}'
}

# ------------------------------------------------------------ the mail host's cost

# ml_cg_usec CG: CPU time (user+system, µs) of the processes in cgroup CG.
ml_cg_usec() { awk '$1 == "usage_usec" {print $2}' "$1/cpu.stat" 2>/dev/null || echo 0; }

# ml_smtpd_count NS: smtpd processes in namespace NS now.
ml_smtpd_count() {
    local p n=0 c
    for p in $(ip netns pids "$1" 2>/dev/null); do
        read -r c <"/proc/$p/comm" 2>/dev/null && [[ $c == smtpd ]] && n=$((n + 1))
    done
    echo "$n"
}

# ml_sampler NS OUT: samples ml_smtpd_count every 100 ms into OUT, in the
# background (PID in ML_SAMPLER_PID) until killed.
ML_SAMPLER_PID=
ml_sampler() {
    (
        trap 'exit 0' TERM
        while :; do
            ml_smtpd_count "$1" >>"$2"
            sleep 0.1
        done
    ) &
    ML_SAMPLER_PID=$!
    ML_PIDS+=("$ML_SAMPLER_PID")
}
ml_sampler_stop() {
    kill -TERM "$ML_SAMPLER_PID" 2>/dev/null
    wait "$ML_SAMPLER_PID" 2>/dev/null
}
# ml_samples_stats FILE: "MAX AVG" (AVG with one decimal).
ml_samples_stats() {
    awk '{ if ($1 > m) m = $1; s += $1; n++ } END { if (n == 0) n = 1; printf "%d %.1f\n", m, s / n }' "$1"
}
