# shellcheck shell=bash disable=SC2034,SC2016 # globals are read by the scripts that source this; bash -c scripts are single-quoted on purpose
# Exim as an upstream relay in the mail lab, next to Postfix. Sourced after
# scripts/lab/mail.sh and scripts/lab/scenarios.sh.
#
# Exim is Debian 12's exim4-daemon-light (Exim 4.96, GnuTLS), unpacked, not
# installed (its packages conflict with postfix): scripts/install-deps.sh puts
# the binary in /var/cache/smtpfence-deps/exim and creates the system user
# Debian-exim, which the binary looks up before it reads any configuration.
#
# An instance NAME lives in $ML_TMP/NAME: exim.conf (written here, run with
# `exim -C`), spool/ (input, msglog, db: the queue and the hints databases),
# log/mainlog (and rejectlog, paniclog), exim.pid. It runs in its namespace
# with `ip netns exec NS`, like the lab's Postfix instances; it never listens
# on any port: it takes mail on its command line (`exim -bm`, as sendmail),
# and ml_exim_release starts a daemon that only runs the queue (`exim -q...`
# without -bd). Its processes are the namespace's, so the harness's cleanup
# ends them with the namespace's others; the daemon's PID is also in ML_PIDS.
#
# Privileges: root starts exim with -C and keeps root (daemon, reception);
# processes that Exim re-executes as its own user (deliveries, queue runners)
# drop privilege for a -C file not listed in Debian's compiled-in
# TRUSTED_CONFIG_LIST (/etc/exim4/trusted_configs, not created here), and log
# "exim user lost privilege for using -C option". Remote SMTP deliveries run
# as the Exim user anyway, so nothing changes for a relay.
#
# Environment: EXIM (default /var/cache/smtpfence-deps/exim/usr/sbin/exim4),
# ML_EXIM_QUEUE_INTERVAL (default 2s, see ml_exim_release).

EXIM=${EXIM:-/var/cache/smtpfence-deps/exim/usr/sbin/exim4}
ML_EXIM_USER=Debian-exim
ML_EXIM_QUEUE_INTERVAL=${ML_EXIM_QUEUE_INTERVAL:-2s}
ML_EXIM_INSTANCES=()      # Exim instances: NAME, each in $ML_TMP/NAME
declare -A ML_EXIM_NS=()  # NAME -> namespace
declare -A ML_EXIM_PID=() # NAME -> PID of its queue-runner daemon

# ml_exim_require: skip (77; a failure in strict mode) when the unpacked Exim
# or its user is missing.
ml_exim_require() {
    if [[ ! -u $EXIM ]] || ! getent passwd "$ML_EXIM_USER" >/dev/null; then
        harness_skip "Exim missing ($EXIM, user $ML_EXIM_USER); scripts/install-deps.sh unpacks it"
    fi
    if ldd "$EXIM" 2>/dev/null | grep -q 'not found'; then
        ml_die "$EXIM lacks libraries: $(ldd "$EXIM" | grep 'not found' | tr -s ' \t\n' ' ')(run scripts/install-deps.sh)"
    fi
}

# ml_exim NAME ARGS...: runs the instance's exim with ARGS in its namespace.
ml_exim() {
    local name=$1
    shift
    ip netns exec "${ML_EXIM_NS[$name]}" "$EXIM" -C "$ML_TMP/$name/exim.conf" "$@"
}

# ml_exim_create NAME NS: writes an Exim relay instance in $ML_TMP/NAME that
# sends all mail to [mail host]:25 (its address on the sender's subnet) from
# the namespace's first address, like ml_pf_create's sender role.
# Exim's defaults otherwise, notably:
#   - STARTTLS whenever the server offers it (hosts_avoid_tls unset; the
#     smtp transport has no "hosts_try_tls": trying is the default), and the
#     certificate is checked but a failure does not stop the delivery
#     (tls_try_verify_hosts = *, tls_verify_hosts unset); if the TLS
#     handshake fails, it delivers in clear (tls_tempfail_tryclear).
#   - queue_run_max = 5, remote_max_parallel = 2, connection_max_messages =
#     500 (see ml_exim_release).
# Lab changes: the retry rule keeps Exim's default shape (F,2h,15m;
# G,16h,1h,1.5; F,4d,6h) on the lab's time scale (retries within seconds,
# no bounce during a run); connect_timeout 10 s (default 5 min; the lab's
# Postfix relay uses 10 s too, see README "Senders' connect timeout").
ml_exim_create() {
    local name=$1 ns=$2 d=$ML_TMP/$1 src dst
    [[ -u $EXIM ]] || ml_die "Exim not found at $EXIM (scripts/install-deps.sh unpacks it)"
    mkdir -p "$d/spool" "$d/log" || ml_die "cannot create $d"
    chown "$ML_EXIM_USER:$ML_EXIM_USER" "$d/spool" "$d/log"
    chmod 750 "$d/spool"
    src=$(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}' | head -1)
    src=${src%/*}
    [[ -n $src ]] || ml_die "ml_exim_create: no address on $ns/eth0"
    dst=$ML_MX # the mail host's address on the sender's subnet
    [[ $src == "${ML_MX_B%.*}".* ]] && dst=$ML_MX_B
    # Exim wants its configuration owned by root and not writable by others.
    (
        umask 022
        cat >"$d/exim.conf" <<EOF
# smtpfence mail lab: Exim instance "$name" (relay) in namespace $ns
exim_user = $ML_EXIM_USER
exim_group = $ML_EXIM_USER
# Re-executions (queue runners, deliveries) use this binary, not /usr/sbin.
exim_path = $EXIM
spool_directory = $d/spool
log_file_path = $d/log/%slog
pid_file_path = $d/exim.pid
primary_hostname = $name.$ML_DOMAIN
qualify_domain = $name.$ML_DOMAIN
keep_environment =
# Never an SMTP listener (the daemon is started without -bd); were one
# started by mistake, it would be on loopback only.
local_interfaces = 127.0.0.1
daemon_smtp_ports = 2525
# A client only: no server certificate, so no STARTTLS to offer.
tls_advertise_hosts =
# What the lab reads: the local address of each delivery, TLS details.
log_selector = +outgoing_interface +outgoing_port +tls_peerdn +deliver_time +queue_time

begin routers

to_mail_host:
  driver = manualroute
  route_list = * $dst
  transport = remote_smtp

begin transports

remote_smtp:
  driver = smtp
  port = 25
  interface = $src
  connect_timeout = 10s

begin retry

*   *   F,2m,2s; G,16m,4s,1.5; F,1d,30s
EOF
    )
    ML_EXIM_INSTANCES+=("$name")
    ML_EXIM_NS[$name]=$ns
    ml_exim "$name" -bV >"$d/bV.out" 2>&1 || ml_die "Exim rejects $d/exim.conf: $(tail -3 "$d/bV.out")"
}

ml_exim_dir() { echo "$ML_TMP/$1"; }
ml_exim_log() { echo "$ML_TMP/$1/log/mainlog"; }
ml_exim_pid() {
    local f=$ML_TMP/$1/exim.pid p
    [[ -r $f ]] || return 1
    p=$(tr -dc 0-9 <"$f")
    [[ -n $p ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}
# ml_exim_queue_count NAME: messages in the instance's queue (exim -bpc).
ml_exim_queue_count() { ml_exim "$1" -bpc 2>/dev/null || echo 0; }
ml_exim_queue_is() { [[ $(ml_exim_queue_count "$1") -eq $2 ]]; }

# ml_exim_backlog NAME TAG N [MODE]: N messages queued in instance NAME
# without any delivery attempt, each with Message-ID <TAG.i.RUN@lab.example>
# and to TAG@lab.example, as ml_inject does for Postfix (the receiver counts
# them with ml_delivered TAG unchanged).
#   MODE odq  (default) `exim -odq`: only queued, not even routed; the state
#             of a relay whose daemon was down while mail came in.
#        odqs `exim -odqs`: routed at once, the SMTP delivery left to the
#             next queue run (queue_smtp_domains); Exim notes each message
#             in its hints database as waiting for the mail host, the state
#             of a relay whose upstream was unreachable, and the queue run
#             then sends many messages down each connection.
ml_exim_backlog() {
    local name=$1 tag=$2 n=$3 mode=${4:-odq} t0
    [[ $mode == odq || $mode == odqs ]] || ml_die "ml_exim_backlog: unknown mode $mode"
    t0=$(ml_now_ms)
    ip netns exec "${ML_EXIM_NS[$name]}" bash -c '
        exim=$1 conf=$2 tag=$3 n=$4 run=$5 dom=$6 from=$7 mode=$8 body=$9
        for ((i = 1; i <= n; i++)); do
            printf "From: %s\nTo: %s@%s\nSubject: %s %d of %d\nMessage-ID: <%s.%d.%s@%s>\n\nmessage %d of %d\n%s\n" \
                "$from" "$tag" "$dom" "$tag" "$i" "$n" "$tag" "$i" "$run" "$dom" "$i" "$n" "$body" |
                "$exim" -C "$conf" -"$mode" -oi -f "$from" "$tag@$dom" || exit 1
        done' _ "$EXIM" "$ML_TMP/$name/exim.conf" "$tag" "$n" "$ML_ID" "$ML_DOMAIN" "$name@$name.$ML_DOMAIN" "$mode" "$ML_MESSAGE_BODY" ||
        ml_die "queueing $n messages in Exim instance $name failed: $(tail -3 "$(ml_exim_log "$name")" 2>/dev/null)"
    ml_wait 30 ml_exim_queue_is "$name" "$n" || ml_die "$name's queue holds $(ml_exim_queue_count "$name") messages, expected $n"
    ml_say "$name: $n messages queued in Exim ($mode), none delivered ($(ml_secs $(($(ml_now_ms) - t0))) s)"
}

# ml_exim_release NAME [INTERVAL [QFLAGS]]: starts the instance's daemon as a relay
# that comes back would run it (Debian: `exim4 -bd -q30m`), minus the SMTP
# listener: `exim -q INTERVAL` (default ML_EXIM_QUEUE_INTERVAL, 2s: the
# lab's time scale, as Postfix's queue_run_delay 2s). Exim's defaults then:
#   - the daemon starts a queue runner at once and another every INTERVAL,
#     at most queue_run_max = 5 at a time; a runner walks the queue in
#     random order (queue_run_in_order = false), one message after another,
#     skipping those another runner has locked: so up to 5 deliveries
#     (connections) at once while the backlog outlasts 4 intervals;
#   - remote_max_parallel = 2 only splits ONE message's several hosts or
#     recipients, not the queue (one recipient each here);
#   - after a delivery, the connection is kept if the hints database
#     (spool/db/wait-remote_smtp) names other messages waiting for the same
#     host: they go down the same connection ("continued" delivery, a new
#     process is handed the socket, TLS included), up to
#     connection_max_messages = 500. Messages get there when a delivery to
#     the host was deferred or left for later (-odqs, queue_smtp_domains, the
#     first phase of a two-stage -qq run), not when they were only queued.
#   QFLAGS (optional, not a default): extra q flags, e.g. "q" for a two-stage
#   run (-qq INTERVAL: every message routed first, then delivered with
#   connections reused as above), "f" to ignore retry times.
ml_exim_release() {
    local name=$1 interval=${2:-$ML_EXIM_QUEUE_INTERVAL} qflags=${3:-} d=$ML_TMP/$1 pid
    ml_exim "$name" -q"$qflags$interval" -oP "$d/exim.pid" >"$d/start.out" 2>&1 ||
        ml_die "Exim instance $name did not start: $(cat "$d/start.out") $(tail -3 "$(ml_exim_log "$name")" 2>/dev/null)"
    ml_wait 10 ml_exim_pid "$name" >/dev/null || ml_die "Exim instance $name wrote no PID: $(tail -3 "$(ml_exim_log "$name")" 2>/dev/null)"
    pid=$(ml_exim_pid "$name")
    ML_EXIM_PID[$name]=$pid
    ML_PIDS+=("$pid")
}

# ml_exim_flush NAME: one forced queue run now (exim -qf: retry times
# ignored), as `postqueue -f` for Postfix; returns when the run is over.
ml_exim_flush() { ml_exim "$1" -qf >/dev/null 2>&1; }

# ml_exim_stop NAME: stops the daemon and whatever deliveries it started
# (processes of this instance in its namespace: their command line names
# its configuration).
ml_exim_stop() {
    local name=$1 pid i p left
    pid=$(ml_exim_pid "$name") && kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        left=$(ml_exim_procs "$name")
        [[ -n $left ]] || break
        ((i == 20)) && for p in $left; do kill -TERM "$p" 2>/dev/null; done
        sleep 0.1
    done
    for p in $(ml_exim_procs "$name"); do kill -KILL "$p" 2>/dev/null; done
    if [[ -n ${ML_EXIM_PID[$name]:-} ]]; then
        local keep=()
        for p in "${ML_PIDS[@]}"; do [[ $p == "${ML_EXIM_PID[$name]}" ]] || keep+=("$p"); done
        ML_PIDS=("${keep[@]}")
        unset "ML_EXIM_PID[$name]"
    fi
    rm -f "$ML_TMP/$name/exim.pid"
    return 0
}
# ml_exim_procs NAME: PIDs of the instance's processes (its namespace, its
# configuration on their command line).
ml_exim_procs() {
    local p conf=$ML_TMP/$1/exim.conf
    for p in $(ip netns pids "${ML_EXIM_NS[$1]}" 2>/dev/null); do
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -- "$conf" && echo "$p"
    done
}

# ------------------------------------------------------------ receiver TLS

# ml_pf_tls NAME: a Postfix instance (the receiver) offers STARTTLS with a
# self-signed certificate (as bench/pace/pace.sh's receiver), restarted
# (in its cgroup, if the lab made one); for mx, checked with openssl from
# the client's namespace.
ml_pf_tls() {
    local name=$1 d=$ML_TMP/tls cg=
    if [[ ! -s $d/cert.pem ]]; then
        mkdir -p "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 2 \
            -subj "/CN=mx.$ML_DOMAIN" >/dev/null 2>&1 || ml_die "openssl failed"
        chmod 600 "$d/key.pem"
    fi
    # Postfix's TLS needs tlsmgr (entropy, session cache); the lab's master.cf has none.
    grep -q '^tlsmgr' "$ML_TMP/$name/etc/master.cf" ||
        echo "tlsmgr    unix  - - n 1000? 1 tlsmgr" >>"$ML_TMP/$name/etc/master.cf"
    ml_pf_set "$name" "smtpd_tls_cert_file = $d/cert.pem" "smtpd_tls_key_file = $d/key.pem" \
        "smtpd_tls_security_level = may" "smtpd_tls_loglevel = 1"
    [[ -n $ML_CGROUP_BASE && -d $ML_CGROUP_BASE/$name ]] && cg=$ML_CGROUP_BASE/$name
    ml_pf_stop "$name"
    ml_pf_start "$name" "$cg" || ml_die "Postfix instance $name did not restart with TLS"
    [[ $name == mx ]] || return 0
    ml_wait 10 ml_smtp_ready "$ML_NS_CLIENT" "$ML_MX" 25 || ml_die "Postfix on $ML_MX:25 does not answer"
    timeout 10 ip netns exec "$ML_NS_CLIENT" openssl s_client -starttls smtp -connect "$ML_MX:25" </dev/null >"$ML_TMP/tlscheck.out" 2>&1
    grep -q 'Cipher is' "$ML_TMP/tlscheck.out" ||
        ml_die "the mail host does not do STARTTLS: $(tail -3 "$ML_TMP/tlscheck.out")"
    ml_say "the mail host offers STARTTLS ($(grep -m1 -o 'New, .*Cipher is.*' "$ML_TMP/tlscheck.out"))"
}
