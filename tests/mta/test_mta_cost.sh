#!/usr/bin/env bash
# Mail lab, scenario "MTA cost" (scripts/lab/scenarios.sh): 2000 connection
# attempts in 10 s from 40 storm addresses, first against Postfix protected
# only by anvil (smtpd_client_connection_rate_limit = 10/min), then against
# the same Postfix behind `smtpfence block 203.0.113.0/24`, the receiving
# instance restarted fresh for each case. Prints the receiving instance's CPU
# time (its cgroup v2) and smtpd process count (max, average) for both, and
# their ratios. Asserts only what is robust: in case A the flood reaches
# Postfix; in case B no storm connection gets through and no smtpd session
# is started for the storm; B's smtpd process maximum is at most A's.
#
# Needs root, Postfix and swaks (else exit 77). Run:
#   sudo SMTPFENCE=build/userspace/smtpfence TCPPROBE=build/tests/tcpprobe bash tests/mta/test_mta_cost.sh
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"

ml_require
ml_setup
ml_scenario_mta_cost 50 200 40
ml_scenario end
ml_check_etc_postfix
ml_finish
