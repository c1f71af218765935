#!/usr/bin/env bash
# Mail lab, scenario "storm" (scripts/lab/scenarios.sh): 50 storm addresses
# flood the mail host's Postfix; `smtpfence block 203.0.113.0/24` stops every
# new storm connection (0 of 2000 get through, 0 smtpd sessions) while the
# legitimate client's 10 messages (ports 25 and 587, swaks) are all accepted
# and delivered once; the storm's ssh (22) still connects; the storm host's
# own Postfix keeps its 50 alerts queued (deferred) during the block and
# delivers all of them, each once, none bounced, after `remove`.
#
# Needs root, Postfix and swaks (else exit 77). Run:
#   sudo SMTPFENCE=build/userspace/smtpfence TCPPROBE=build/tests/tcpprobe bash tests/mta/test_storm.sh
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"

ml_require
ml_setup
ml_scenario_storm
ml_scenario end
ml_check_etc_postfix
ml_finish
