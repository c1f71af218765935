#!/usr/bin/env bash
# Mail lab, scenario "unclogged upstream" (scripts/lab/scenarios.sh): the
# upstream relay (its own Postfix) holds a backlog and is released while
# `smtpfence limit 198.51.100.16/28 --rate 5/s --per rule` is in force.
#   1. Postfix defaults (sessions reused): 300 messages;
#   2. one message per connection (smtp_connection_cache_on_demand = no): 60.
# Each time: every message arrives at the receiver exactly once (Message-IDs
# counted in its maildir), none bounces, the relay's queue ends empty; the new
# connections the receiver saw (smtpd "connect from") and the SYNs the rule
# admitted stay within the GCRA bound burst + rate x elapsed; with one message
# per connection, the drain cannot beat (N - burst)/rate.
#
# Needs root, Postfix and swaks (else exit 77). Run:
#   sudo SMTPFENCE=build/userspace/smtpfence TCPPROBE=build/tests/tcpprobe bash tests/mta/test_upstream_limit.sh
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"

ml_require
ml_setup
ml_scenario_upstream 300 5 yes
ml_scenario_upstream 60 5 no
ml_scenario end
ml_check_etc_postfix
ml_finish
