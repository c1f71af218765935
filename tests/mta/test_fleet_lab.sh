#!/usr/bin/env bash
# Mail lab, scenario "fleet" (scripts/lab/fleet.sh): four mail hosts (mx1,
# sub1 and sub2 on 587, central1), each with Postfix and `smtpfence agent`,
# and a 3-member etcd cluster with TLS and auth; a monitoring system's Postfix
# storms them; `smtpfence fleet block --role submission` stops it on sub1 and
# sub2 only, its alerts for them wait deferred in its queue; with every etcd
# member stopped the blocks hold and the agents record the outage; etcd back,
# `fleet remove` converges on every host and every alert arrives, each once.
#
# Needs root, Postfix, swaks and etcd (Postfix/swaks missing: exit 77). Run:
#   sudo SMTPFENCE=build/userspace/smtpfence TCPPROBE=build/tests/tcpprobe bash tests/mta/test_fleet_lab.sh
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../fleet/etcd.sh
source "$ROOT/tests/fleet/etcd.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/mail.sh
source "$ROOT/scripts/lab/mail.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/scenarios.sh
source "$ROOT/scripts/lab/scenarios.sh"
# shellcheck source=SCRIPTDIR/../../scripts/lab/fleet.sh
source "$ROOT/scripts/lab/fleet.sh"

ml_require
ml_fl_require
ml_setup
ml_scenario_fleet
ml_scenario end
ml_check_etc_postfix
ml_finish
