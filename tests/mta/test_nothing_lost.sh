#!/usr/bin/env bash
# Mail lab, scenario "nothing lost" (scripts/lab/scenarios.sh): the relay
# (its own Postfix, short retry timers) is blocked with `smtpfence block
# 198.51.100.16/28` while it has 50 messages queued, until every message was
# tried twice (the first try and the first retry: 100 deferrals logged). Then
# all 50 are in the relay's deferred queue (postqueue -j), none bounced, none
# delivered, no relay session reached the receiver; after `remove` and a
# flush all 50 arrive, each exactly once, and the relay's queue is empty.
#
# Needs root, Postfix and swaks (else exit 77). Run:
#   sudo SMTPFENCE=build/userspace/smtpfence TCPPROBE=build/tests/tcpprobe bash tests/mta/test_nothing_lost.sh
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"

ml_require
ml_setup
ml_scenario_nothing_lost 50
ml_scenario end
ml_check_etc_postfix
ml_finish
