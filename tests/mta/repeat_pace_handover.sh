#!/usr/bin/env bash
# The block -> pace hand-over (scenario "pace/handover" of the mail lab)
# run ROUNDS times in a row on one lab: a blocked Postfix relay with N
# messages queued, then `limit RELAY_NET --messages RATE/s --per rule` in
# place of the block. Every round must deliver every message once, bounce
# none, and have no second above 2 x RATE at the receiver. Repeating on one
# lab is the point: the relay reuses its source ports, which is what let a
# whole session through unpaced before pace flows remembered their rule.
#
# Not a CTest test (about 30 s a round): run it as
#   sudo SMTPFENCE=build/userspace/smtpfence TCPPROBE=build/tests/tcpprobe \
#     bash tests/mta/repeat_pace_handover.sh [ROUNDS [N [RATE]]]
# Prints one line per round and a summary; exit 1 if any round failed.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"

ROUNDS=${1:-20}
N=${2:-100}
RATE=${3:-5}
ml_require
ml_setup
rows=()
worst=0
for ((r = 1; r <= ROUNDS; r++)); do
    failed_before=$ML_FAILED
    ml_scenario_pace_handover "$N" "$RATE" "handover$r"
    verdict=ok
    ((ML_FAILED == failed_before)) || verdict=FAIL
    ((ML_HANDOVER_MAX > worst)) && worst=$ML_HANDOVER_MAX
    rows+=("$(printf 'round %2d: busiest second %2d (bound %d), %s; per second: %s' \
        "$r" "$ML_HANDOVER_MAX" $((2 * RATE)) "$verdict" "$ML_HANDOVER_PROFILE")")
done
ml_scenario end
printf '\nhand-over repeated %d times, %d messages each, limit --messages %d/s:\n' "$ROUNDS" "$N" "$RATE"
printf '  %s\n' "${rows[@]}"
printf '  busiest second over all rounds: %d (bound %d)\n' "$worst" $((2 * RATE))
ml_finish
