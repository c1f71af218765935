#!/usr/bin/env bash
# Mail lab, scenario "message pace" (scripts/lab/scenarios.sh): an upstream
# relay unclogs 200 messages under `smtpfence limit RELAY_NET --messages 5/s`,
#   1. Postfix 3.7 with its defaults (sessions reused, PIPELINING), plain;
#   2. Exim 4.96 (Debian's exim4-daemon-light), plain;
#   3. and 4. the same two with STARTTLS (the receiver offers it with a
#      self-signed certificate; Postfix: smtp_tls_security_level = may, Exim:
#      its default);
#   5. a blocked relay whose block becomes the pace in one command.
# Each: every message arrives exactly once, none bounces, the drain takes
# 0.8-1.25 x 200/5 s, no second exceeds 2 x the pace, and a second sender's
# transactions keep within 2 x their unpaced latency.
#
# Needs root, Postfix, swaks and the unpacked Exim (scripts/install-deps.sh)
# (else exit 77). Run:
#   sudo SMTPFENCE=build/userspace/smtpfence TCPPROBE=build/tests/tcpprobe bash tests/mta/test_pace.sh
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/exim.sh
source "$ROOT/scripts/lab/exim.sh"

N=${PACE_MESSAGES:-200}
RATE=${PACE_RATE:-5}
ml_require
ml_exim_require
ml_setup
ml_scenario_pace postfix plain "$N" "$RATE"
ml_scenario_pace exim plain "$N" "$RATE"
ml_pf_tls mx
ml_scenario_pace postfix tls "$N" "$RATE"
ml_scenario_pace exim tls "$N" "$RATE"
ml_scenario_pace_handover 100 "$RATE"
ml_scenario end
ml_check_etc_postfix
ml_finish
