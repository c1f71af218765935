# shellcheck shell=bash disable=SC2034 # globals are read by the scripts that source this
# The life of a test run in network namespaces, shared by the end-to-end tests
# (tests/e2e/lib.sh) and the mail lab (scripts/lab/mail.sh, so tests/mta and
# scripts/lab.sh): logging, skips, counted checks, polling with a deadline,
# bpffs, a private pin dir and temporary directory, namespaces and background
# processes registered as they are made, and one cleanup that removes all of
# it on EXIT, INT, TERM and HUP. It lives in tests/ because the lab is the
# mta tests' harness as much as a demonstration.
#
# Every run names what it makes after its PID (namespaces NAME-PID, pin dir
# /sys/fs/bpf/smtpfence-KIND-PID, /tmp/smtpfence-KIND-PID.XXXXXX), so that
# runs never collide and harness_reap_stale can tell the leftovers of a run
# killed with SIGKILL (no trap runs) from those of a run still going.

HARNESS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMTPFENCE=${SMTPFENCE:-$HARNESS_ROOT/build/userspace/smtpfence}
TCPPROBE=${TCPPROBE:-$HARNESS_ROOT/build/tests/tcpprobe}
NETNS_DIR=/var/run/netns
# Seconds between two tries of harness_wait_until.
HARNESS_POLL_S=0.05
# Printed before PASS and FAIL lines.
HARNESS_INDENT=

HARNESS_ID=$$
HARNESS_PASSED=0
HARNESS_FAILED=0
HARNESS_PIDS=()        # background processes of this shell, ended at cleanup
HARNESS_NAMESPACES=()  # network namespaces this run created
HARNESS_CLEANUP_HOOKS=() # functions run at cleanup, once nothing runs any more
HARNESS_TMP=
HARNESS_OWN_PIN_DIR=
HARNESS_MOUNTED_BPFFS=0
HARNESS_CLEANED=0

if [[ -t 1 ]]; then
    HARNESS_C_OK=$'\e[32m' HARNESS_C_BAD=$'\e[31m' HARNESS_C_DIM=$'\e[2m' HARNESS_C_B=$'\e[1m' HARNESS_C_OFF=$'\e[0m'
else
    HARNESS_C_OK='' HARNESS_C_BAD='' HARNESS_C_DIM='' HARNESS_C_B='' HARNESS_C_OFF=''
fi

harness_log() { printf '%s== %s%s\n' "$HARNESS_C_DIM" "$*" "$HARNESS_C_OFF"; }

harness_die() {
    printf '%sERROR: %s%s\n' "$HARNESS_C_BAD" "$*" "$HARNESS_C_OFF" >&2
    exit 1
}

# harness_skip REASON: exit 77, which CTest counts as skipped; in strict mode
# (SMTPFENCE_TESTS_STRICT=1, set by CI) exit 1: a skipped tier is a failure.
harness_skip() {
    if [[ ${SMTPFENCE_TESTS_STRICT:-} == 1 ]]; then
        echo "FAIL: SMTPFENCE_TESTS_STRICT=1 makes a skip a failure; this test would skip: $*"
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

# ------------------------------------------------------------ preconditions

# harness_require_root WHAT: skip unless root.
harness_require_root() {
    [[ $(id -u) -eq 0 ]] || harness_skip "$1 needs root (network namespaces, XDP, bpffs)"
}

# harness_require_tools TOOL...: a missing tool is a failure, not a skip:
# scripts/install-deps.sh provides them. So are the binaries under test.
harness_require_tools() {
    local t missing=()
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || harness_die "missing tools: ${missing[*]}"
    [[ -x $SMTPFENCE ]] || harness_die "smtpfence not found at '$SMTPFENCE' (build it, or set SMTPFENCE)"
    [[ -x $TCPPROBE ]] || harness_die "tcpprobe not found at '$TCPPROBE' (build it, or set TCPPROBE)"
}

# ------------------------------------------------------------ checks

harness_pass() {
    HARNESS_PASSED=$((HARNESS_PASSED + 1))
    printf '%s%sPASS%s %s\n' "$HARNESS_INDENT" "$HARNESS_C_OK" "$HARNESS_C_OFF" "$*"
}

harness_fail() {
    HARNESS_FAILED=$((HARNESS_FAILED + 1))
    printf '%s%sFAIL%s %s\n' "$HARNESS_INDENT" "$HARNESS_C_BAD" "$HARNESS_C_OFF" "$*"
}

# harness_finish: the count of checks; exit 0 only if none failed.
harness_finish() {
    printf '\n%d passed, %d failed\n' "$HARNESS_PASSED" "$HARNESS_FAILED"
    ((HARNESS_FAILED == 0)) || exit 1
    exit 0
}

# ------------------------------------------------------------ polling

# harness_wait_until TIMEOUT_S CMD...: runs CMD every HARNESS_POLL_S seconds
# until it succeeds (0) or TIMEOUT_S seconds have passed (1). SECONDS has a
# 1 s resolution: a deadline of N seconds waits N to N+1.
harness_wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    while :; do
        "$@" && return 0
        ((SECONDS > deadline)) && return 1
        sleep "$HARNESS_POLL_S"
    done
}

# ------------------------------------------------------------ what a run makes

# harness_begin KIND: the cleanup traps, a temporary directory, bpffs, and a
# pin dir of the run's own (SMTPFENCE_PIN_DIR, exported with the state
# directory, so that smtpfence never touches the system's).
harness_begin() {
    local kind=$1
    trap harness_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    harness_reap_stale
    HARNESS_TMP=$(mktemp -d "/tmp/smtpfence-$kind-$HARNESS_ID.XXXXXX") || harness_die "mktemp failed"
    export SMTPFENCE_STATE_DIR=$HARNESS_TMP/state
    # The state file and audit log go to the temporary directory; nothing goes
    # to syslog.
    export SMTPFENCE_SYSLOG=0
    if ! mountpoint -q /sys/fs/bpf; then
        mount -t bpf bpf /sys/fs/bpf || harness_die "cannot mount bpffs at /sys/fs/bpf"
        HARNESS_MOUNTED_BPFFS=1
    fi
    export SMTPFENCE_PIN_DIR=/sys/fs/bpf/smtpfence-$kind-$HARNESS_ID
    [[ ! -e $SMTPFENCE_PIN_DIR ]] || harness_die "pin dir $SMTPFENCE_PIN_DIR already exists"
    HARNESS_OWN_PIN_DIR=$SMTPFENCE_PIN_DIR
}

# harness_ns_create NAME: a namespace with lo up, removed at cleanup.
harness_ns_create() {
    ip netns add "$1" || harness_die "cannot create network namespace $1"
    HARNESS_NAMESPACES+=("$1")
    ip -n "$1" link set lo up
}

# harness_track PID: a background process to end at cleanup.
harness_track() { HARNESS_PIDS+=("$1"); }

# harness_on_cleanup FUNCTION: run at cleanup, after every process of the run
# has ended and before the namespaces and the temporary directory go.
harness_on_cleanup() { HARNESS_CLEANUP_HOOKS+=("$1"); }

# harness_end_pids PID...: TERM, up to 2 s for all to exit, then KILL.
harness_end_pids() {
    local pid i alive
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null
    for ((i = 0; i < 40; i++)); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.05
    done
    kill -KILL "$@" 2>/dev/null
    # Reaps those that are this shell's children; the others are not waitable.
    for pid in "$@"; do wait "$pid" 2>/dev/null; done
    return 0
}

# harness_end_netns_pids NS: whatever still runs in NS (a namespace of this
# run, or of a dead earlier run) is that run's: TERM, then KILL.
harness_end_netns_pids() {
    local pids
    read -r -a pids < <(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
    harness_end_pids "${pids[@]}"
}

# harness_ns_delete NS: its processes ended, both ends of its veths deleted
# (a peer in another namespace goes with them), then the namespace.
harness_ns_delete() {
    local dev
    harness_end_netns_pids "$1"
    for dev in $(ip -n "$1" -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
        ip -n "$1" link del "$dev" 2>/dev/null
    done
    ip netns del "$1" 2>/dev/null
}

# harness_cleanup: the EXIT trap; idempotent, keeps the script's exit status.
harness_cleanup() {
    local rc=$?
    ((HARNESS_CLEANED)) && return "$rc"
    HARNESS_CLEANED=1
    # A second INT or TERM (an impatient Ctrl-C, a supervisor that signals
    # twice) must not cut the cleanup short and leak namespaces and pins. The
    # no-op trap, unlike an ignored signal, is not inherited by the commands
    # run below.
    trap : INT TERM HUP
    local ns hook
    harness_end_pids "${HARNESS_PIDS[@]}"
    for ns in "${HARNESS_NAMESPACES[@]}"; do harness_end_netns_pids "$ns"; done
    for hook in "${HARNESS_CLEANUP_HOOKS[@]}"; do "$hook"; done
    # Pinned links and programs go with the pin dir; deleting the veths
    # detaches whatever is still attached.
    [[ -n $HARNESS_OWN_PIN_DIR ]] && rm -rf -- "$HARNESS_OWN_PIN_DIR"
    for ns in "${HARNESS_NAMESPACES[@]}"; do harness_ns_delete "$ns"; done
    if ((HARNESS_MOUNTED_BPFFS)) && [[ -z $(ls -A /sys/fs/bpf 2>/dev/null) ]]; then
        umount /sys/fs/bpf 2>/dev/null
    fi
    [[ -n $HARNESS_TMP && -d $HARNESS_TMP ]] && rm -rf -- "$HARNESS_TMP"
    return "$rc"
}

# harness_cgroup_root: where cgroup v2 is mounted (fails if nowhere).
harness_cgroup_root() {
    local d
    for d in /sys/fs/cgroup/unified /sys/fs/cgroup; do
        if [[ $(stat -f -c %T "$d" 2>/dev/null) == cgroup2fs ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# harness_reap_stale: what runs killed with SIGKILL left behind, i.e. what is
# named after a PID that no longer runs: namespaces of the e2e tests
# (sfhost, sfsend) and of the mail lab (sfmail-ROLE; sflab-ROLE of older
# versions), pin dirs, cgroups and temporary directories.
harness_reap_stale() {
    local ns dir root
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        [[ $ns =~ ^(sfhost|sfsend|sfmail-[a-z]+|sflab-[a-z]+)-([0-9]+)$ ]] || continue
        kill -0 "${BASH_REMATCH[2]}" 2>/dev/null && continue
        harness_ns_delete "$ns" && harness_log "removed stale namespace $ns"
    done
    for dir in /sys/fs/bpf/smtpfence-{e2e,mta,lab}-*; do
        [[ -d $dir && $dir =~ -([0-9]+)$ ]] || continue
        kill -0 "${BASH_REMATCH[1]}" 2>/dev/null && continue
        rm -rf -- "$dir" && harness_log "removed stale pin dir $dir"
    done
    if root=$(harness_cgroup_root); then
        for dir in "$root"/smtpfence-mta-*; do
            [[ -d $dir && $dir =~ -([0-9]+)$ ]] || continue
            kill -0 "${BASH_REMATCH[1]}" 2>/dev/null && continue
            find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    fi
    for dir in /tmp/smtpfence-{e2e,mta}-*.*; do
        [[ -d $dir && $dir =~ ^/tmp/smtpfence-[a-z0-9]+-([0-9]+)\. ]] || continue
        kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || rm -rf -- "$dir"
    done
}
