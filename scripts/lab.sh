#!/usr/bin/env bash
# The smtpfence mail lab: the project's main demonstration, on one machine.
#
# It builds a small mail system in network namespaces from Debian packages
# and proves smtpfence's promise with real MTAs: "block or slow any source at
# once, and no mail is lost: it waits in the sender's queue".
#
#   client 198.51.100.10 (swaks)           ─┐
#   relay  198.51.100.20 (its own Postfix) ─┤ bridge ├─ mail host 198.51.100.1
#   storm  203.0.113.10-.59 (+ an alerting  ─┘          203.0.113.1: Postfix on
#          Postfix on .10)                              25 and 587, a listener
#                                                       on 22, smtpfence on eth0
#
# Scenarios (scripts/lab/scenarios.sh; the same code runs as the tests in
# tests/mta, CTest label `mta`):
#   storm           50 sources flood the mail host; `block` stops them at once;
#                   the client's mail is accepted every time (latency shown),
#                   the storm's ssh still connects, the storm host's queued
#                   alerts drain after `remove`;
#   upstream        the relay releases a backlog (300 messages with Postfix's
#                   session reuse, 100 with one connection per message) under
#                   `limit 198.51.100.16/28 --rate 5/s --per rule`: all
#                   delivered once, none bounced, new connections within the
#                   bucket's bound; drain time vs the theoretical minimum;
#   nothing-lost    the relay is blocked with 50 messages queued, longer than
#                   its first retry: deferred (postqueue -j), not bounced;
#                   after the unblock all arrive, each once;
#   mta-cost        the same 2000-connection flood against Postfix with anvil
#                   only, then behind smtpfence: CPU time and smtpd processes;
#   pace            the relay releases 200 messages under `limit
#                   198.51.100.16/28 --messages 5/s`: Postfix (sessions
#                   reused), then Exim with STARTTLS: all delivered once, at
#                   5 messages a second, a second sender unaffected; then a
#                   block handed over to the pace in one command;
#   fleet           four mail hosts (mx1: mx, sub1 and sub2: submission on
#                   587, central1: central), each with Postfix and `smtpfence
#                   agent`, and a 3-member etcd cluster (TLS, auth) on a LAN
#                   of their own (203.0.113.0/24, etcd on 22379/22380); a
#                   monitoring system's Postfix storms them all; `smtpfence
#                   fleet block --role submission` stops it on sub1 and sub2
#                   only (its mail waits in its queue), `fleet status` shows
#                   every host; all of etcd stopped: the blocks hold; etcd
#                   back: `fleet remove` converges and the queue drains.
#
# Postfix runs as private instances (`postfix -c DIR`, own config, queue and
# log in a temporary directory); the system's /etc/postfix is never written
# (its checksum is verified at the end). Rules are pinned in a private
# directory, /sys/fs/bpf/smtpfence-mta-PID. Everything is removed at exit,
# also on failure or Ctrl-C. Only documentation addresses are used, and no
# namespace has a route out.
#
# Run as root from anywhere:  sudo scripts/lab.sh [SCENARIO...]
#   SCENARIO: storm upstream nothing-lost mta-cost pace fleet (default: all, ~6-7
#   minutes; fleet alone 1.5-2 minutes, 70-100 s of it the scenario)
# If build/userspace/smtpfence is missing it installs the dependencies and builds first.
# Exit status: 0 when every check passed, 1 otherwise.
set -u

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$LAB_ROOT" || exit 1

SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(storm upstream nothing-lost mta-cost pace fleet)
for s in "${SCENARIOS[@]}"; do
    case $s in
    storm | upstream | nothing-lost | mta-cost | pace | fleet) ;;
    -h | --help)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "lab: unknown scenario '$s' (storm, upstream, nothing-lost, mta-cost, pace, fleet)" >&2
        exit 2
        ;;
    esac
done

if [[ $(id -u) -ne 0 ]]; then
    echo "lab.sh needs root (network namespaces, XDP, bpffs, Postfix instances): sudo $0" >&2
    exit 1
fi

# ------------------------------------------------------------ build

SMTPFENCE=${SMTPFENCE:-$LAB_ROOT/build/userspace/smtpfence}
TCPPROBE=${TCPPROBE:-$LAB_ROOT/build/tests/tcpprobe}
export SMTPFENCE TCPPROBE

need_deps=0
for tool in ip nsenter jq postfix swaks tc; do command -v "$tool" >/dev/null 2>&1 || need_deps=1; done
[[ -u /var/cache/smtpfence-deps/exim/usr/sbin/exim4 ]] || need_deps=1 # the Exim relay (pace)
if [[ " ${SCENARIOS[*]} " == *" fleet "* ]]; then # the etcd cluster (fleet)
    for tool in etcd etcdctl openssl setpriv curl; do command -v "$tool" >/dev/null 2>&1 || need_deps=1; done
fi
if [[ ! -x $SMTPFENCE ]] || ((need_deps)); then
    echo "== installing dependencies (scripts/install-deps.sh)"
    scripts/install-deps.sh || { echo "lab: installing dependencies failed" >&2; exit 1; }
fi
if [[ ! -x $SMTPFENCE ]]; then
    echo "== building smtpfence into build/"
    { cmake -S . -B build && cmake --build build -j2; } || { echo "lab: the build failed" >&2; exit 1; }
fi
if [[ ! -x $TCPPROBE ]]; then
    echo "== building tcpprobe (the lab's flood and probe tool)"
    if ! { [[ -f build/CMakeCache.txt ]] || cmake -S . -B build; } ||
        ! cmake --build build --target tcpprobe -j2; then
        echo "lab: building tcpprobe failed" >&2
        exit 1
    fi
fi

# ------------------------------------------------------------ the lab

# First: it sources tests/harness.sh too, which mail.sh then sources again
# before anything is registered with it.
# shellcheck source=SCRIPTDIR/../tests/fleet/etcd.sh
source "$LAB_ROOT/tests/fleet/etcd.sh"
# shellcheck source=SCRIPTDIR/lab/mail.sh
source "$LAB_ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/lab/scenarios.sh
source "$LAB_ROOT/scripts/lab/scenarios.sh"
# shellcheck source=SCRIPTDIR/lab/exim.sh
source "$LAB_ROOT/scripts/lab/exim.sh"
# shellcheck source=SCRIPTDIR/lab/fleet.sh
source "$LAB_ROOT/scripts/lab/fleet.sh"

ml_require # exits 77 without Postfix/swaks, which install-deps.sh provides
ml_exim_require
[[ " ${SCENARIOS[*]} " == *" fleet "* ]] && ml_fl_require
started=$SECONDS
printf '%sThe smtpfence mail lab%s: %s\n' "$HARNESS_C_B" "$HARNESS_C_OFF" "${SCENARIOS[*]}"
ml_setup
ml_say "receiving mail host: Postfix 25+587 on $ML_MX and $ML_MX_B ($ML_NS_MX), logs in $(ml_pf_log mx)"
ml_say "smtpfence: $SMTPFENCE, pin dir $SMTPFENCE_PIN_DIR"

for s in "${SCENARIOS[@]}"; do
    case $s in
    storm) ml_scenario_storm ;;
    upstream)
        ml_scenario_upstream 300 5 yes
        ml_scenario_upstream 100 5 no
        ;;
    nothing-lost) ml_scenario_nothing_lost 50 ;;
    mta-cost) ml_scenario_mta_cost 50 200 40 ;;
    pace)
        ml_scenario_pace postfix plain 200 5
        ml_pf_tls mx
        ml_scenario_pace exim tls 200 5
        ml_scenario_pace_handover 100 5
        ;;
    fleet) ml_scenario_fleet ;;
    esac
done

ml_scenario end
printf '\n%s== the end%s\n' "$HARNESS_C_B" "$HARNESS_C_OFF"
ml_fence_shown status
rc=$?
ml_check "smtpfence status" "exit 0" "exit $rc" $((rc == 0))
ml_fence_shown detach eth0
rc=$?
ml_check "smtpfence detach eth0" "exit 0" "exit $rc" $((rc == 0))
ml_check_etc_postfix

ml_summary
echo "lab: $ML_PASSED passed, $ML_FAILED failed ($((SECONDS - started)) s); the lab's namespaces, Postfix instances and pins are removed now"
((ML_FAILED == 0))
