# shellcheck shell=bash disable=SC2034 # globals are read by the scripts that source this
# A LAN of network namespaces with a real etcd cluster on it, for the fleet
# tests (one rule set for many mail hosts, through etcd). Built on
# tests/harness.sh: every namespace, process and directory made here is
# registered as it is made and removed by harness_cleanup, on EXIT, INT, TERM
# and HUP.
#
# The topology (ID is the harness id, this shell's PID, so runs never collide):
#
#                      sflan-ID: bridge br0 (no address)
#       p101     p102     p103       p200        p11  ...   (one port per
#        |        |        |          |           |          namespace; the
#     sfetcd1  sfetcd2  sfetcd3    sfadmin    HOST NS        port is named
#       -ID      -ID      -ID        -ID      (caller's)     after the last
#     .101     .102     .103       .200       .11 ...        octet)
#
#   every address 203.0.113.X/24 on "lan0" inside its namespace. etcd member K
#   listens on 203.0.113.(100+K): clients 22379, peers 22380 (never the
#   system's 2379/2380). The admin namespace runs etcdctl (and later the CLI);
#   mail hosts join with fleet_ns_join; name them sffleet-NAME-ID (e.g.
#   sffleet-mx1-$FLEET_ID), the pattern fleet_reap_stale removes when the run
#   that made them died by SIGKILL.
#
# Why a bridge in a namespace of its own: each member needs its own stack (to
# be stopped, killed or cut off alone), and a bridge joins any number of them
# without touching the root namespace. A port can be downed
# (ip -n "$FLEET_LAN_NS" link set "$(fleet_port IP)" down) to cut one
# namespace off the LAN (from everyone, the admin included): a partition
# without killing anything; `up` heals it.
#
# Security as the fleet will run it: TLS for clients and peers, client certificates
# required (--client-cert-auth, --peer-client-cert-auth), all from a throwaway
# CA made per run; etcd_enable_auth adds users, roles and `auth enable`.
# Note that with --client-cert-auth and auth enabled, etcd takes the CN of a
# client certificate as the user name when no user/password is given: the
# certificate fleet_client_cert NAME makes authenticates as user NAME.
# Files in $FLEET_PKI: ca.pem (0644), ca-key.pem, NAME.pem, NAME-key.pem and
# NAME.password (all 0600); NAME is etcdK, admin (the admin namespace's
# client), root, agent-HOST. Passwords reach etcdctl through ETCDCTL_USER in
# its environment, except when users are created: `user add
# --new-user-password` has them on its command line for a moment (a
# throwaway cluster's; the fleet CLI must not do that).
#
# Processes: etcd runs under setsid (a Ctrl-C to the test's process group
# does not reach it before the cleanup does) with a parent-death signal of
# KILL (a test killed with SIGKILL leaves no etcd behind). So call every
# function here that makes or changes something (fleet_*, etcd_cluster_start,
# etcd_member_*, etcd_enable_auth, ...) in the test's own shell, never in a
# subshell ($(...), a pipeline, a check helper capturing output with $(...)):
# a member started there dies with the subshell, and what the function
# records (pids, namespaces to clean up, "auth is on") is lost with it.
# Members are stopped by their recorded pid, never by name.
#
# Functions (those other code calls; the names are an interface):
#   fleet_require_tools            fail unless ip, nsenter, setsid, setpriv,
#                                  etcd, etcdctl, openssl, jq, curl are there
#   fleet_lan_create               the LAN namespace and its bridge (begins the
#                                  harness run, kind "fleet", if not begun)
#   fleet_ns_join NS IP            a namespace on the LAN at IP/24
#   fleet_port IP                  the name of IP's bridge port in the LAN ns
#   fleet_in NS CMD...             CMD in namespace NS (nsenter --net)
#   fleet_pki_init                 the CA in $FLEET_PKI
#   fleet_server_cert NAME IP      a server (and peer) certificate
#   fleet_client_cert NAME         a client certificate, CN=NAME
#   fleet_gateway_cert NAME        one without a CN, for smtpfence: NAME-gw.pem
#   fleet_admin_config FILE        smtpfence's config for the admin's fleet CLI
#   fleet_agent_config FILE HOST ROLES PIN_DIR STATE_DIR   an agent's config
#   etcd_cluster_start [N=3]       N members, a leader, the admin namespace
#   etcd_member_stop K             SIGTERM, waits for the exit
#   etcd_member_kill K             SIGKILL, waits for the exit
#   etcd_member_start K            restarts member K, waits until healthy
#   etcd_member_running K          whether member K's process runs
#   etcd_cluster_restart           starts every stopped member, waits for all
#   etcd_leader                    prints the index of the leader
#   etcd_wait_healthy              every running member healthy, or fail
#   etcd_endpoint K                prints member K's client URL
#   etcdctl_admin ARGS...          etcdctl as the administrator
#   fleet_etcdctl NS CERT [USER] -- ARGS...   etcdctl as anyone, from NS
#   etcd_enable_auth               root, admin/fleet-admin, auth enable
#   etcd_add_agent HOST            user and role agent-HOST, cert, password
#   fleet_cleanup                  the EXIT trap: ends and removes it all
#
# Exported: FLEET_PKI, ETCD_ENDPOINTS, FLEET_ADMIN_NS, FLEET_LAN_NS,
# ETCD_N. Arrays (not exportable, read in this shell): ETCD_MEMBER_NS[K],
# ETCD_MEMBER_IP[K], ETCD_MEMBER_PID[K] (empty when stopped), for K in 1..N.
#
# Deadlines (seconds, overridable): FLEET_ETCD_START_S (a leader after
# start, a member healthy after restart; 30), FLEET_ETCD_STOP_S (a member's
# exit after SIGTERM; 10).

FLEET_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../harness.sh
source "$FLEET_DIR/../harness.sh"

FLEET_ID=$HARNESS_ID
FLEET_NET=203.0.113
FLEET_LAN_NS=sflan-$FLEET_ID
FLEET_ADMIN_NS=sfadmin-$FLEET_ID
FLEET_ADMIN_IP=$FLEET_NET.200
FLEET_BRIDGE=br0
FLEET_IF=lan0
ETCD_CLIENT_PORT=22379
ETCD_PEER_PORT=22380
FLEET_ETCD_START_S=${FLEET_ETCD_START_S:-30}
FLEET_ETCD_STOP_S=${FLEET_ETCD_STOP_S:-10}
export FLEET_LAN_NS FLEET_ADMIN_NS

FLEET_PKI=
FLEET_DATA=      # the members' data dirs: tmpfs (/dev/shm) when there is one
ETCD_N=0
ETCD_ENDPOINTS=
ETCD_MEMBER_NS=()
ETCD_MEMBER_IP=()
ETCD_MEMBER_PID=()
ETCD_INITIAL_CLUSTER=
FLEET_AUTH=0     # etcdctl_admin logs in as root once etcd_enable_auth ran

# ------------------------------------------------------------ preconditions

# fleet_require_tools: a missing tool is a failure (scripts/install-deps.sh
# installs them), as in harness_require_tools; smtpfence itself is not needed.
fleet_require_tools() {
    local t missing=()
    for t in ip nsenter setsid setpriv etcd etcdctl openssl jq curl; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || harness_die "missing tools: ${missing[*]} (scripts/install-deps.sh)"
}

# fleet_reap_stale: what fleet runs killed with SIGKILL left behind (named
# after a PID that no longer runs): their namespaces (and whatever still runs
# in them), mail host namespaces named sffleet-*-PID, and directories.
# harness_reap_stale does the same for the e2e and mail tests.
fleet_reap_stale() {
    local ns dir
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        [[ $ns =~ ^(sflan|sfadmin|sfetcd[0-9]+|sffleet-[a-z0-9]+)-([0-9]+)$ ]] || continue
        kill -0 "${BASH_REMATCH[2]}" 2>/dev/null && continue
        harness_ns_delete "$ns" && harness_log "removed stale namespace $ns"
    done
    for dir in /tmp/smtpfence-fleet-*.* /dev/shm/smtpfence-fleet-*.*; do
        [[ -d $dir && $dir =~ smtpfence-fleet-([0-9]+)\. ]] || continue
        kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || rm -rf -- "$dir"
    done
}

# fleet_begin: the harness run (traps, temporary directory), once; the EXIT
# trap becomes fleet_cleanup.
fleet_begin() {
    [[ -n $HARNESS_TMP ]] && return 0
    harness_begin fleet
    trap fleet_cleanup EXIT
    fleet_reap_stale
    harness_on_cleanup _fleet_cleanup
}

# fleet_cleanup: the EXIT trap (a test may call it itself, to check what is
# left): SIGKILL to the members first, then harness_cleanup. The harness's
# SIGTERM would do, but a leader that gets it tries to hand its leadership to
# a follower that is going away too, and so takes the harness's whole 2 s
# grace; the data is thrown away anyway. Keeps the exit status.
fleet_cleanup() {
    local rc=$? k pids=()
    if ((!HARNESS_CLEANED)); then
        for ((k = 1; k <= ETCD_N; k++)); do
            etcd_member_running "$k" && pids+=("${ETCD_MEMBER_PID[k]}")
        done
        ((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null
        for k in "${pids[@]}"; do harness_wait_until 2 _etcd_dead "$k"; done
    fi
    (exit "$rc")
    harness_cleanup
}

# _fleet_cleanup: the cleanup hook; processes have ended by now.
_fleet_cleanup() {
    [[ -n $FLEET_DATA && $FLEET_DATA == /dev/shm/smtpfence-fleet-* ]] && rm -rf -- "$FLEET_DATA"
    return 0
}

# ------------------------------------------------------------ the LAN

# fleet_lan_create: the namespace holding the bridge every other namespace
# plugs into. STP stays off, so a new port forwards at once (no 15 s
# listening/learning delay).
fleet_lan_create() {
    fleet_begin
    [[ -e $NETNS_DIR/$FLEET_LAN_NS ]] && return 0
    harness_ns_create "$FLEET_LAN_NS"
    ip -n "$FLEET_LAN_NS" link add "$FLEET_BRIDGE" type bridge stp_state 0 ||
        harness_die "cannot create bridge $FLEET_BRIDGE in $FLEET_LAN_NS"
    ip -n "$FLEET_LAN_NS" link set "$FLEET_BRIDGE" up || harness_die "cannot bring up $FLEET_BRIDGE"
}

# fleet_port IP: the bridge port of the namespace at IP (p + last octet):
# unique on the /24, short enough for an interface name, and found from the
# address alone by tests that cut a namespace off the LAN.
fleet_port() { echo "p${1##*.}"; }

# fleet_ns_join NS IP: namespace NS (registered for cleanup) with lo up and
# "lan0" at IP/24, its veth peer a port of the bridge. Prints nothing; returns
# non-zero on failure (the namespace, if made, is still removed at cleanup).
# The veth pair is created directly in the two namespaces, so the root
# namespace never sees its names.
fleet_ns_join() {
    local ns=$1 ip=$2 port
    port=$(fleet_port "$ip")
    [[ -e $NETNS_DIR/$FLEET_LAN_NS ]] || { echo "fleet_ns_join: no LAN (fleet_lan_create)" >&2; return 1; }
    ip netns add "$ns" || return 1
    HARNESS_NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up &&
        ip link add "$FLEET_IF" netns "$ns" type veth peer name "$port" netns "$FLEET_LAN_NS" &&
        ip -n "$FLEET_LAN_NS" link set "$port" master "$FLEET_BRIDGE" &&
        ip -n "$FLEET_LAN_NS" link set "$port" up &&
        ip -n "$ns" addr add "$ip/24" dev "$FLEET_IF" &&
        ip -n "$ns" link set "$FLEET_IF" up
}

# fleet_in NS CMD...: CMD in namespace NS. nsenter, not `ip netns exec`,
# which remounts /sys and so hides /sys/fs/bpf from the agent.
fleet_in() {
    local ns=$1
    shift
    nsenter --net="$NETNS_DIR/$ns" -- "$@"
}

# ------------------------------------------------------------ certificates

# fleet_pki_init: a CA of this run only (EC P-256, valid 2 days) in
# $FLEET_PKI, a directory of mode 0700 under the run's temporary directory.
fleet_pki_init() {
    fleet_begin
    [[ -n $FLEET_PKI && -f $FLEET_PKI/ca.pem ]] && return 0
    FLEET_PKI=$HARNESS_TMP/pki
    export FLEET_PKI
    mkdir -m 0700 "$FLEET_PKI" || harness_die "cannot create $FLEET_PKI"
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$FLEET_PKI/ca-key.pem" -out "$FLEET_PKI/ca.pem" -days 2 \
            -subj "/CN=smtpfence fleet test CA $FLEET_ID" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$FLEET_PKI/openssl.err"
    ) || harness_die "cannot create the CA: $(cat "$FLEET_PKI/openssl.err")"
    chmod 0644 "$FLEET_PKI/ca.pem"
}

# _fleet_cert NAME EXTENSIONS: a key and a certificate signed by the CA,
# CN=NAME, in NAME.pem and NAME-key.pem (0600).
_fleet_cert() {
    local name=$1 ext=$2 subject=${3:-/CN=$1}
    [[ -f $FLEET_PKI/ca.pem ]] || fleet_pki_init
    (
        umask 077
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$FLEET_PKI/$name-key.pem" -subj "$subject" 2>"$FLEET_PKI/openssl.err" |
            openssl x509 -req -CA "$FLEET_PKI/ca.pem" -CAkey "$FLEET_PKI/ca-key.pem" \
                -set_serial "0x$(openssl rand -hex 16)" -days 2 \
                -extfile <(printf '%s\n' "$ext") -out "$FLEET_PKI/$name.pem" 2>>"$FLEET_PKI/openssl.err"
    ) || harness_die "cannot create the certificate of $name: $(cat "$FLEET_PKI/openssl.err")"
    chmod 0600 "$FLEET_PKI/$name-key.pem" "$FLEET_PKI/$name.pem"
}

# fleet_server_cert NAME IP: for a member, which presents it to clients and,
# as a client, to its peers: hence serverAuth and clientAuth. The SAN holds
# the IP (what clients dial) and NAME.
fleet_server_cert() {
    _fleet_cert "$1" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:$2,DNS:$1"
}

# fleet_client_cert NAME: for a client; CN=NAME, which etcd takes as the user
# name when the client sends no user/password.
fleet_client_cert() {
    _fleet_cert "$1" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
}

# _fleet_password NAME: a random password in $FLEET_PKI/NAME.password (0600).
_fleet_password() {
    (umask 077 && openssl rand -hex 16 >"$FLEET_PKI/$1.password") || harness_die "cannot write $1.password"
    chmod 0600 "$FLEET_PKI/$1.password"
}

# fleet_gateway_cert NAME: a client certificate for smtpfence (the agent and
# the fleet CLI), $FLEET_PKI/NAME-gw.pem: without a CN, because etcd's JSON
# gateway refuses a client certificate with a CN once auth is on ("CommonName
# of client sending a request against gateway will be ignored"); such a
# client logs in with a user and password.
fleet_gateway_cert() {
    _fleet_cert "$1-gw" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth" "/O=smtpfence/OU=$1"
}

# fleet_admin_config FILE: the config of an admin's `smtpfence fleet` (user
# admin, the CA, its gateway certificate): the etcd_* keys only.
fleet_admin_config() {
    cat >"$1" <<EOF
etcd_endpoints = $ETCD_ENDPOINTS
etcd_ca = $FLEET_PKI/ca.pem
etcd_cert = $FLEET_PKI/admin-gw.pem
etcd_key = $FLEET_PKI/admin-gw-key.pem
etcd_user = admin
etcd_password_file = $FLEET_PKI/admin.password
EOF
}

# fleet_agent_config FILE HOST ROLES PIN_DIR STATE_DIR: the config of HOST's
# `smtpfence agent` (user agent-HOST, after etcd_add_agent HOST), guarding
# the namespace's LAN interface; STATE_DIR is created.
fleet_agent_config() {
    local file=$1 host=$2 roles=$3 pin_dir=$4 state_dir=$5 u=agent-$2
    mkdir -p "$state_dir"
    cat >"$file" <<EOF
interfaces = $FLEET_IF
pin_dir = $pin_dir
state_dir = $state_dir
host = $host
roles = $roles
etcd_endpoints = $ETCD_ENDPOINTS
etcd_ca = $FLEET_PKI/ca.pem
etcd_cert = $FLEET_PKI/$u-gw.pem
etcd_key = $FLEET_PKI/$u-gw-key.pem
etcd_user = $u
etcd_password_file = $FLEET_PKI/$u.password
EOF
}

# ------------------------------------------------------------ etcdctl

# fleet_etcdctl NS CERT [USER] -- ARGS...: etcdctl from namespace NS with the
# CA and client certificate CERT ($FLEET_PKI/CERT.pem); with USER, as USER
# with the password of $FLEET_PKI/USER.password, passed in the environment
# (ETCDCTL_USER), not on the command line. Endpoints default to all members;
# an --endpoints in ARGS replaces them, a later timeout flag wins. Short dial and
# command timeouts: a member that is down must cost a test seconds, not
# minutes.
fleet_etcdctl() {
    local ns=$1 cert=$2 user=
    shift 2
    if [[ $1 != -- ]]; then
        user=$1
        shift
    fi
    [[ $1 == -- ]] && shift
    # etcdctl's --endpoints is a list that a second --endpoints appends to,
    # so the default goes only when ARGS has none.
    local a eps=--endpoints=$ETCD_ENDPOINTS
    for a in "$@"; do [[ $a == --endpoints* ]] && eps=; done
    (
        export ETCDCTL_API=3
        if [[ -n $user ]]; then
            ETCDCTL_USER="$user:$(cat "$FLEET_PKI/$user.password")" || exit 1
            export ETCDCTL_USER
        fi
        exec nsenter --net="$NETNS_DIR/$ns" -- etcdctl ${eps:+"$eps"} --cacert="$FLEET_PKI/ca.pem" \
            --cert="$FLEET_PKI/$cert.pem" --key="$FLEET_PKI/$cert-key.pem" \
            --dial-timeout=2s --command-timeout=5s "$@"
    )
}

# etcdctl_admin ARGS...: etcdctl from the admin namespace with the admin's
# certificate, and as root once auth is enabled.
etcdctl_admin() {
    if ((FLEET_AUTH)); then
        fleet_etcdctl "$FLEET_ADMIN_NS" admin root -- "$@"
    else
        fleet_etcdctl "$FLEET_ADMIN_NS" admin -- "$@"
    fi
}

# ------------------------------------------------------------ the cluster

# etcd_endpoint K: member K's client URL.
etcd_endpoint() { echo "https://${ETCD_MEMBER_IP[$1]}:$ETCD_CLIENT_PORT"; }

# _etcd_alive PID: runs (a zombie, dead but not yet reaped, does not count).
_etcd_alive() {
    local state
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

_etcd_dead() { ! _etcd_alive "$1"; }

# etcd_member_running K
etcd_member_running() { _etcd_alive "${ETCD_MEMBER_PID[$1]}"; }

# _etcd_untrack PID: drops PID from the harness's list once it has ended, so
# that the cleanup never signals a recycled PID.
_etcd_untrack() {
    local i
    for i in "${!HARNESS_PIDS[@]}"; do
        [[ ${HARNESS_PIDS[$i]} == "$1" ]] && unset 'HARNESS_PIDS[i]'
    done
    HARNESS_PIDS=("${HARNESS_PIDS[@]}")
}

# _etcd_spawn K STATE: member K's etcd, in the background of this shell.
# setsid does not fork here (a background job of a non-interactive shell is
# not a process group leader), nor do setpriv and nsenter --net: $! is
# etcd's own PID, which is checked.
_etcd_spawn() {
    local k=$1 state=$2 ns=${ETCD_MEMBER_NS[$1]} ip=${ETCD_MEMBER_IP[$1]} pki=$FLEET_PKI
    setsid setpriv --pdeathsig KILL -- nsenter --net="$NETNS_DIR/$ns" -- etcd \
        --name "etcd$k" --data-dir "$FLEET_DATA/etcd$k" \
        --logger zap --log-outputs stderr \
        --listen-client-urls "https://$ip:$ETCD_CLIENT_PORT" \
        --advertise-client-urls "https://$ip:$ETCD_CLIENT_PORT" \
        --listen-peer-urls "https://$ip:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "https://$ip:$ETCD_PEER_PORT" \
        --initial-cluster "$ETCD_INITIAL_CLUSTER" \
        --initial-cluster-token "smtpfence-fleet-$FLEET_ID" \
        --initial-cluster-state "$state" \
        --client-cert-auth --trusted-ca-file "$pki/ca.pem" \
        --cert-file "$pki/etcd$k.pem" --key-file "$pki/etcd$k-key.pem" \
        --peer-client-cert-auth --peer-trusted-ca-file "$pki/ca.pem" \
        --peer-cert-file "$pki/etcd$k.pem" --peer-key-file "$pki/etcd$k-key.pem" \
        --experimental-watch-progress-notify-interval 2s \
        </dev/null >>"$HARNESS_TMP/etcd$k.log" 2>&1 &
    local pid=$!
    # Out of the job table: bash reaps it all the same, but reports no
    # "Killed" line when etcd_member_kill or the cleanup ends it.
    disown "$pid"
    harness_track "$pid"
    ETCD_MEMBER_PID[k]=$pid
    # Until the execs are done, comm is setsid, setpriv or nsenter.
    harness_wait_until 5 _etcd_is_etcd "$pid" ||
        harness_die "member $k (pid $pid) is not etcd: $(cat "/proc/$pid/comm" 2>/dev/null || echo exited); $(tail -5 "$HARNESS_TMP/etcd$k.log")"
}

_etcd_is_etcd() { [[ $(cat "/proc/$1/comm" 2>/dev/null) == etcd ]] || ! _etcd_alive "$1"; }

# _etcd_healthy K...: each member K answers `endpoint health` (a read through
# raft, so it needs a leader).
_etcd_healthy() {
    local k eps=()
    for k in "$@"; do eps+=("$(etcd_endpoint "$k")"); done
    local IFS=,
    etcdctl_admin --endpoints="${eps[*]}" --dial-timeout=1s --command-timeout=2s \
        endpoint health >/dev/null 2>&1
}

# etcd_leader: prints K, the index of the member that says it is the leader
# (its own member_id equals the leader it reports in `endpoint status -w
# json`); fails when none does. Each running member is asked on its own: one
# etcdctl for all endpoints fails as a whole when one is down. Should two
# claim it (an old leader not yet told), the higher raft term wins. Asked
# with the admin certificate only (no user): Status needs no login, and a
# login would need a quorum. jq reads the 64-bit IDs as doubles; two IDs
# equal in their top 53 bits are not a practical concern.
etcd_leader() {
    local k claim best='' best_term=-1
    for ((k = 1; k <= ETCD_N; k++)); do
        etcd_member_running "$k" || continue
        claim=$(fleet_etcdctl "$FLEET_ADMIN_NS" admin -- --endpoints="$(etcd_endpoint "$k")" \
            --dial-timeout=1s --command-timeout=2s endpoint status -w json 2>/dev/null |
            jq -r '.[0].Status | select(.header.member_id == .leader) | .raftTerm' 2>/dev/null)
        if [[ $claim =~ ^[0-9]+$ ]] && ((claim > best_term)); then
            best=$k
            best_term=$claim
        fi
    done
    [[ -n $best ]] || return 1
    echo "$best"
}

# etcd_wait_healthy: every running member healthy within FLEET_ETCD_START_S.
etcd_wait_healthy() {
    local k up=()
    for ((k = 1; k <= ETCD_N; k++)); do
        etcd_member_running "$k" && up+=("$k")
    done
    ((${#up[@]})) || return 1
    harness_wait_until "$FLEET_ETCD_START_S" _etcd_healthy "${up[@]}"
}

# etcd_cluster_start [N]: certificates, N members (etcdK in sfetcdK-ID at
# 203.0.113.(100+K)), the admin namespace and its certificate; returns once
# there is a leader and every member is healthy. Dies on failure: nothing
# after it could work.
etcd_cluster_start() {
    local n=${1:-3} k ip
    fleet_lan_create
    fleet_pki_init
    ETCD_N=$n
    # Data dirs on tmpfs: etcd fsyncs its WAL on every write, which on a
    # slow disk makes elections and puts, and so the tests, slow and uneven.
    if [[ -z $FLEET_DATA ]]; then
        FLEET_DATA=$(mktemp -d "/dev/shm/smtpfence-fleet-$FLEET_ID.XXXXXX" 2>/dev/null) ||
            FLEET_DATA=$HARNESS_TMP/data
        [[ -d $FLEET_DATA ]] || mkdir -m 0700 "$FLEET_DATA" || harness_die "cannot create $FLEET_DATA"
    fi
    local cluster=() eps=()
    for ((k = 1; k <= n; k++)); do
        ip=$FLEET_NET.$((100 + k))
        ETCD_MEMBER_NS[k]=sfetcd$k-$FLEET_ID
        ETCD_MEMBER_IP[k]=$ip
        ETCD_MEMBER_PID[k]=
        cluster+=("etcd$k=https://$ip:$ETCD_PEER_PORT")
        eps+=("https://$ip:$ETCD_CLIENT_PORT")
        fleet_ns_join "${ETCD_MEMBER_NS[k]}" "$ip" || harness_die "cannot put ${ETCD_MEMBER_NS[k]} on the LAN"
        fleet_server_cert "etcd$k" "$ip"
    done
    local IFS=,
    ETCD_INITIAL_CLUSTER="${cluster[*]}"
    ETCD_ENDPOINTS="${eps[*]}"
    unset IFS
    export ETCD_ENDPOINTS ETCD_N
    fleet_ns_join "$FLEET_ADMIN_NS" "$FLEET_ADMIN_IP" || harness_die "cannot put $FLEET_ADMIN_NS on the LAN"
    fleet_client_cert admin
    fleet_gateway_cert admin
    for ((k = 1; k <= n; k++)); do _etcd_spawn "$k" new; done
    local start=$SECONDS
    if ! harness_wait_until "$FLEET_ETCD_START_S" etcd_leader >/dev/null || ! etcd_wait_healthy; then
        for ((k = 1; k <= n; k++)); do
            echo "--- etcd$k.log (tail)" >&2
            tail -5 "$HARNESS_TMP/etcd$k.log" >&2
        done
        harness_die "etcd cluster of $n: no leader or not healthy within ${FLEET_ETCD_START_S}s"
    fi
    harness_log "etcd cluster of $n up in $((SECONDS - start))s: $ETCD_ENDPOINTS (admin in $FLEET_ADMIN_NS)"
}

# _etcd_wait_exit K SIGNAL: sends SIGNAL to member K and reaps it; fails if
# it still runs after FLEET_ETCD_STOP_S.
_etcd_wait_exit() {
    local k=$1 pid=${ETCD_MEMBER_PID[$1]}
    [[ -n $pid ]] || return 0
    kill "-$2" "$pid" 2>/dev/null
    if ! harness_wait_until "$FLEET_ETCD_STOP_S" _etcd_dead "$pid"; then
        echo "etcd$k (pid $pid) still runs ${FLEET_ETCD_STOP_S}s after SIG$2" >&2
        return 1
    fi
    _etcd_untrack "$pid"
    ETCD_MEMBER_PID[k]=
}

# etcd_member_stop K: SIGTERM (etcd hands leadership over first if it leads)
# and waits for the exit.
etcd_member_stop() { _etcd_wait_exit "$1" TERM; }

# etcd_member_kill K: SIGKILL, a crash: no leadership transfer, the others
# notice by missed heartbeats.
etcd_member_kill() { _etcd_wait_exit "$1" KILL; }

# etcd_member_start K: member K again, same name and data dir; the data dir
# makes it rejoin (--initial-cluster-state existing says so). Waits until it
# is healthy, which needs a quorum with it.
etcd_member_start() {
    local k=$1
    etcd_member_running "$k" && return 0
    _etcd_spawn "$k" existing
    harness_wait_until "$FLEET_ETCD_START_S" _etcd_healthy "$k" || {
        echo "etcd$k not healthy ${FLEET_ETCD_START_S}s after restart: $(tail -3 "$HARNESS_TMP/etcd$k.log")" >&2
        return 1
    }
}

# etcd_cluster_restart: starts every stopped member at once, then waits until
# all are healthy. (etcd_member_start waits for each member to be healthy,
# which a member alone cannot be while the others are down: no quorum.)
etcd_cluster_restart() {
    local k
    for ((k = 1; k <= ETCD_N; k++)); do
        etcd_member_running "$k" || _etcd_spawn "$k" existing
    done
    harness_wait_until "$FLEET_ETCD_START_S" etcd_leader >/dev/null && etcd_wait_healthy
}

# ------------------------------------------------------------ auth

# etcd_enable_auth: user root (role root, which `auth enable` requires),
# user admin with role fleet-admin (readwrite on the prefix /smtpfence/),
# then auth on. From then on etcdctl_admin logs in as root.
etcd_enable_auth() {
    local out
    _fleet_password root
    _fleet_password admin
    out=$({
        etcdctl_admin user add root --new-user-password="$(cat "$FLEET_PKI/root.password")" &&
            etcdctl_admin role add fleet-admin &&
            etcdctl_admin role grant-permission fleet-admin --prefix=true readwrite /smtpfence/ &&
            etcdctl_admin user add admin --new-user-password="$(cat "$FLEET_PKI/admin.password")" &&
            etcdctl_admin user grant-role admin fleet-admin &&
            etcdctl_admin auth enable
    } 2>&1) || { echo "etcd_enable_auth: $out" >&2; return 1; }
    FLEET_AUTH=1
}

# etcd_add_agent HOST: what the agent of mail host HOST may do: read the
# policy (prefix /smtpfence/v1/policy/), write its own state (prefix
# /smtpfence/v1/hosts/HOST/) and its echo key (/smtpfence/v1/policy/echo/HOST,
# one key). User and role agent-HOST, its password file and its client
# certificate (CN=agent-HOST).
etcd_add_agent() {
    local host=$1 u=agent-$1 out
    _fleet_password "$u"
    fleet_client_cert "$u"
    fleet_gateway_cert "$u"
    out=$({
        etcdctl_admin role add "$u" &&
            etcdctl_admin role grant-permission "$u" --prefix=true read /smtpfence/v1/policy/ &&
            etcdctl_admin role grant-permission "$u" --prefix=true readwrite "/smtpfence/v1/hosts/$host/" &&
            etcdctl_admin role grant-permission "$u" readwrite "/smtpfence/v1/policy/echo/$host" &&
            etcdctl_admin user add "$u" --new-user-password="$(cat "$FLEET_PKI/$u.password")" &&
            etcdctl_admin user grant-role "$u" "$u"
    } 2>&1) || { echo "etcd_add_agent $host: $out" >&2; return 1; }
}
