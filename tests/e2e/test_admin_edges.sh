#!/usr/bin/env bash
# The sharp edges an admin in a hurry meets, each with the message that says
# what to do and the documented exit status: a change stuck holding the lock
# (the wait names the holder and gives up; reads do not wait), text that is not
# UTF-8 (refused; an old file's bytes do not blind the JSON), re-running a
# command on a live rule (says what changes; no silent dry run), fencing ssh's
# port, and a state directory on a read-only disk (exit 3: in force, not saved).
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools flock unshare curl
e2e_setup_topology

check "attach" fence attach "$HOST_IF"
check "block 198.51.100.0/24 --for 2h" fence block 198.51.100.0/24 --for 2h --reason "notifier storm"

# now_ms: a clock for the waits below.
now_ms() { date +%s%3N; }

e2e_log "a change stuck holding the lock (a suspended terminal)"
# flock(1) holds the lock; -o: its command (which it waits for) does not.
flock -o "$SMTPFENCE_PIN_DIR" sleep 300 &
HOLDER=$!
E2E_PIDS+=("$HOLDER")
wait_until 5 grep -q "FLOCK .* $HOLDER " /proc/locks || e2e_die "flock did not take the lock"
wait_until 5 pgrep -P "$HOLDER" >/dev/null || e2e_die "flock did not start its command"
SLEEPER=$(pgrep -P "$HOLDER")
E2E_PIDS+=("$SLEEPER")
kill -STOP "$HOLDER"
start=$(now_ms)
expect_exit 1 "block gives up after --lock-timeout 2s" fence --lock-timeout 2s block 203.0.113.0/24
waited=$(($(now_ms) - start))
check_match "it gave up after 2 s, not before, not much later (${waited} ms)" '^[234][0-9]{3}$' "$waited"
check_eq "it said once who holds the lock, and gave up naming it and the fix" \
    "smtpfence: waiting for pid $HOLDER (flock -o $SMTPFENCE_PIN_DIR sleep 300), which holds the lock on $SMTPFENCE_PIN_DIR (giving up after 2 s)
smtpfence: gave up after 2 s waiting for pid $HOLDER (flock -o $SMTPFENCE_PIN_DIR sleep 300), which holds the lock on $SMTPFENCE_PIN_DIR: nothing was changed. If that run is stuck (a suspended terminal: \`fg\` it; or \`kill\` it), end it and run this again; or wait longer with --lock-timeout 5m" \
    "$E2E_OUT"
start=$(now_ms)
expect_exit 1 "SMTPFENCE_LOCK_TIMEOUT=0: remove does not wait" \
    nsenter --net="$NETNS_DIR/$HOST_NS" -- env SMTPFENCE_LOCK_TIMEOUT=0 "$SMTPFENCE" remove 198.51.100.0/24
check_match "without waiting ($(($(now_ms) - start)) ms)" '^[0-9]{1,3}$|^1[0-9]{3}$' "$(($(now_ms) - start))"
# A read that waited for the lock would wait for ever: `timeout` ends it.
for verb in "status" "list --json" "save" "lists" "stats" "ports" "metrics"; do
    start=$(now_ms)
    # shellcheck disable=SC2086 # the verb's words
    expect_exit 0 "$verb answers while the lock is held" timeout 10 \
        nsenter --net="$NETNS_DIR/$HOST_NS" -- "$SMTPFENCE" $verb
    check_match "$verb without waiting ($(($(now_ms) - start)) ms)" '^[0-9]{1,3}$|^[12][0-9]{3}$' \
        "$(($(now_ms) - start))"
done
check_eq "nothing changed: the block is there, no rule for 203.0.113.0/24" "198.51.100.0/24" \
    "$(fence list --json | jq -r '[.rules[].cidr] | join(" ")')"
kill -CONT "$HOLDER"
kill "$HOLDER" "$SLEEPER"
wait "$HOLDER" 2>/dev/null
check "once the holder is gone, the change goes through" fence --lock-timeout 2s block 203.0.113.0/24

e2e_log "text that is not UTF-8"
expect_exit 2 "a Latin-1 --reason is refused" fence block 203.0.113.77 --reason $'caf\xe9 storm'
check_match "naming the byte and the fix" 'reason is not UTF-8 \(byte 0xE9 at position 4\).*iconv' "$E2E_OUT"
expect_exit 2 "60 × ü do not fit" fence block 203.0.113.77 --reason "$(printf 'ü%.0s' {1..60})"
check_match "counted in characters and bytes" '--reason is 60 characters, 120 bytes in UTF-8; at most 119 bytes fit' \
    "$E2E_OUT"
check_eq "nothing was added" "" "$(rule_field 203.0.113.77/32 cidr)"
# A state file written before input was checked: restore takes it as it is.
printf 'block 203.0.113.99/32 --reason "caf\xe9"\n' >"$E2E_TMP/old.rules"
fence save >>"$E2E_TMP/old.rules"
check "restore an older version's file with a Latin-1 reason" fence restore "$E2E_TMP/old.rules"
expect_exit 0 "list --json still answers" fence list --json
check_eq "with U+FFFD for the bad byte" "caf�" \
    "$(jq -r '.rules[] | select(.cidr == "203.0.113.99/32") | .reason' <<<"$E2E_OUT")"
expect_exit 0 "status --json still answers" fence status --json
check_eq "and parses" "true" "$(jq 'has("rules")' <<<"$E2E_OUT")"
start_serve 127.0.0.1:9464
check_eq "serve /rules answers 200" 200 \
    "$(host_exec curl -sS --max-time 10 -o "$E2E_TMP/rules.json" -w '%{http_code}' http://127.0.0.1:9464/rules)"
check_eq "with the rule" "caf�" "$(jq -r '.rules[] | select(.cidr == "203.0.113.99/32") | .reason' "$E2E_TMP/rules.json")"
stop_serve
check "remove it" fence remove 203.0.113.99/32

e2e_log "re-running a command on a live rule"
expires=$(rule_field 198.51.100.0/24 expires_unix)
created=$(rule_field 198.51.100.0/24 created_unix)
expect_exit 0 "block 198.51.100.0/24 again, without --for" fence block 198.51.100.0/24
# (The last line: a warning that the block covers the host's own address comes first.)
check_match "it says nothing changed and that the deadline stays" \
    '^block 198\.51\.100\.0/24 \(until .*, in (1h59m|2h)\): updated in place; unchanged; keeps its deadline \(in (1h59m|2h); --permanent drops it\)$' \
    "${E2E_OUT##*$'\n'}"
check_eq "the deadline and reason are kept" "$expires notifier storm" \
    "$(rule_field 198.51.100.0/24 expires_unix) $(rule_field 198.51.100.0/24 reason)"
expect_exit 2 "--dry-run on the live block is refused" fence block 198.51.100.0/24 --dry-run
check_match "saying why and the fix" 'is live \(it dropped [0-9]+ SYN packets so far\): --dry-run would stop it dropping anything\. If that is what you mean, add --force; nothing was changed' \
    "$E2E_OUT"
check_eq "it is still live" "false" "$(rule_field 198.51.100.0/24 dry_run)"
expect_exit 0 "--dry-run --force" fence block 198.51.100.0/24 --dry-run --force
check_match "says what changes" '; was: live; now: dry run; keeps its deadline' "$E2E_OUT"
expect_exit 0 "--permanent" fence block 198.51.100.0/24 --permanent
check_match "says what changes" '; was: dry run, expires in (1h59m|2h); now: live, permanent$' "$E2E_OUT"
check_eq "permanent and live" "null false" \
    "$(fence list --json | jq -r '.rules[] | select(.cidr == "198.51.100.0/24") | "\(.expires) \(.dry_run)"')"
expect_exit 0 "the block becomes a limit" fence limit 198.51.100.0/24 --rate 5/s
check_match "says what changes" 'replaced the block rule; was: block; now: limit 5/s burst 5 per source$' "$E2E_OUT"
check_eq "the reason and the age are kept" "notifier storm $created" \
    "$(rule_field 198.51.100.0/24 reason) $(rule_field 198.51.100.0/24 created_unix)"
expect_exit 0 "--max-conns on the rate limit" fence limit 198.51.100.0/24 --max-conns 3
check_match "keeps the rate" 'was: limit 5/s burst 5 per source; now: limit 5/s burst 5, at most 3 open per source$' \
    "$E2E_OUT"
check_eq "rate and cap in force" "5/s 3" \
    "$(fence list --json | jq -r '.rules[] | select(.cidr == "198.51.100.0/24") | "\(.limit.rate) \(.limit.max_conns)"')"

e2e_log "ports of other services"
expect_exit 2 "ports 22,25 is refused" fence ports 22,25
check_match "naming ssh and the fix" 'port 22 is ssh, not SMTP: .*locks you out of ssh\. If that is what you mean, add --force' \
    "$E2E_OUT"
check_eq "the ports are unchanged" "25,465,587" "$(fence ports)"

e2e_log "a state directory on a read-only disk"
# A private mount namespace: the read-only tmpfs hides the state directory
# from this one command only.
ro_fence() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare -m -- bash -c 'mount -t tmpfs -o ro,size=1m tmpfs "$1" && shift && exec "$@"' _ \
        "$SMTPFENCE_STATE_DIR" nsenter --net="$NETNS_DIR/$HOST_NS" -- "$SMTPFENCE" "$@"
}
expect_exit 3 "block with a read-only state dir: in force, not saved" ro_fence block 203.0.113.88 --reason ro
check_match "the message says so and what to do" \
    "the change is in force, but the state file was not saved \(create .*Read-only file system\): the rules will not survive a reboot until it is\. Make $SMTPFENCE_STATE_DIR writable .*then save them with \`smtpfence save $(state_file)\`" \
    "$E2E_OUT"
check_eq "the rule is in force" "203.0.113.88/32" "$(rule_field 203.0.113.88/32 cidr)"
check_eq "status says the state file differs" "false" "$(status_field .state_file.matches_kernel)"
check "the fix the message gives" fence save "$(state_file)"
check_eq "the state file is whole again" "true" "$(status_field .state_file.matches_kernel)"

e2e_finish
