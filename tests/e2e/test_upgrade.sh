#!/usr/bin/env bash
# Upgrade without a gap: with 1,000 rules in force, re-attaching (what
# installing a newer build and running `attach` does) swaps the program
# atomically while a sender from a blocked range keeps trying: not one of its
# connections succeeds, a legitimate sender is never cut off, and every rule
# and counter is still there. Atomically means the kernel's XDP link stays
# the same (bpf_link_update); a detach and attach would make a new one. A pin dir whose maps have another layout is
# refused with both versions and the migration, and left untouched.
set -u
source "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_require_tools bpftool
e2e_setup_topology
start_listener 25

check "attach" fence attach "$HOST_IF"
# 1,000 rules: the blocked range and 999 IPv6 /64s.
mapfile -t v6 < <(for i in $(seq 0 998); do printf '2001:db8:100:%x::/64\n' "$i"; done)
check "add 1,000 rules in one run" fence block 203.0.113.0/24 "${v6[@]}" --reason "upgrade test"
check_eq "1,000 rules in force" 1000 "$(fence list --json | jq '.rules | length')"
expect_blocked 203.0.113.10 198.51.100.1 25
matched_before=$(rule_field 203.0.113.0/24 matched)
prog_before=$(status_field .program_id)
link_before=$(status_field '.interfaces[0].link_id')
# link_runs LINK PROG: the kernel's own view: LINK is an XDP link running
# PROG, and PROG is the XDP program of the host's interface.
link_runs() {
    bpftool -j link show id "$1" | jq -e --argjson p "$2" '.type == "xdp" and .prog_id == $p' >/dev/null &&
        [[ $(ip -n "$HOST_NS" -j -d link show dev "$HOST_IF" | jq '.[0].xdp.prog.id') == "$2" ]]
}
check "the interface's XDP link $link_before runs program $prog_before" link_runs "$link_before" "$prog_before"

e2e_log "re-attach 5 times while 203.0.113.10 (blocked) and 198.51.100.10 (not) keep connecting"
# Both senders try every 20 ms until stopped (SIGTERM: tcpprobe then counts
# the attempts it made), so every swap happens inside their windows.
ip netns exec "$SENDER_NS" "$TCPPROBE" count --src 203.0.113.10 --timeout-ms 300 --attempts 100000 \
    --interval-ms 20 198.51.100.1 25 >"$E2E_TMP/blocked.out" 2>&1 &
blocked_pid=$!
ip netns exec "$SENDER_NS" "$TCPPROBE" count --src 198.51.100.10 --timeout-ms 900 --attempts 100000 \
    --interval-ms 20 198.51.100.1 25 >"$E2E_TMP/legit.out" 2>&1 &
legit_pid=$!
E2E_PIDS+=("$blocked_pid" "$legit_pid")
sleep 0.5
reattached=0 links=
for _ in 1 2 3 4 5; do
    out=$(fence attach "$HOST_IF" 2>&1) && [[ $out == *"replaced the previous program atomically"* ]] &&
        reattached=$((reattached + 1))
    links+=" $(status_field '.interfaces[0].link_id')"
done
sleep 0.5
probes_running=0
kill -0 "$blocked_pid" 2>/dev/null && kill -0 "$legit_pid" 2>/dev/null && probes_running=1
kill -TERM "$blocked_pid" "$legit_pid"
wait "$blocked_pid"
wait "$legit_pid"
check_eq "5 re-attaches each swapped the program atomically" 5 "$reattached"
check_eq "the XDP link stayed the same through every swap" "$(printf " $link_before%.0s" 1 2 3 4 5)" "$links"
check_eq "both senders were still connecting when the last swap was done" 1 "$probes_running"
read -r b_ok b_fail < <(sed -n 's/^ok=\([0-9]*\) fail=\([0-9]*\) .*/\1 \2/p' "$E2E_TMP/blocked.out")
read -r l_ok l_fail < <(sed -n 's/^ok=\([0-9]*\) fail=\([0-9]*\) .*/\1 \2/p' "$E2E_TMP/legit.out")
attempts=$((b_fail + b_ok))
check_match "the blocked sender: zero successful connections (of $attempts)" '^0 [1-9][0-9]+$' "${b_ok-} ${b_fail-}"
check_match "the legitimate sender: every connection succeeded (of $((l_ok + l_fail)))" '^[1-9][0-9]+ 0$' \
    "${l_ok-} ${l_fail-}"
prog_after=$(status_field .program_id)
if [[ $prog_after != "$prog_before" && $(status_field '.interfaces[0].program_id') == "$prog_after" ]]; then
    e2e_pass "the interface runs the new program ($prog_before -> $prog_after)"
else
    e2e_fail "program ids: before $prog_before, after $prog_after, on the interface $(status_field '.interfaces[0].program_id')"
fi
check "the same link $link_before now runs program $prog_after (the kernel's view)" link_runs "$link_before" "$prog_after"
check_eq "all 1,000 rules are still there" 1000 "$(fence list --json | jq '.rules | length')"
check_eq "with their reasons" 1000 "$(fence list --json | jq '[.rules[] | select(.reason == "upgrade test")] | length')"
matched_after=$(rule_field 203.0.113.0/24 matched)
# Exactly one SYN per attempt: the 300 ms timeout is below the first
# retransmission (1 s).
if ((matched_after == matched_before + attempts)); then
    e2e_pass "the block's counter counted every attempt once across the swaps ($matched_before -> $matched_after)"
else
    e2e_fail "the block's counter went from $matched_before to $matched_after over $attempts attempts"
fi
check "the state file matches the kernel" cmp -s "$(state_file)" <(fence save)

e2e_log "maps of another layout are refused, and left as they are"
old=$SMTPFENCE_PIN_DIR/oldlayout
mkdir -p "$old"
# A config map as layout 3 wrote it: magic "smtf", layout_version 3, and
# layout 3's syn_flows (an LRU hash of flows, now a set-associative array).
value_size=$(bpftool -j map show pinned "$SMTPFENCE_PIN_DIR/config" | jq .bytes_value)
bpftool map create "$old/config" type array key 4 value "$value_size" entries 1 name config ||
    e2e_die "cannot create a config map"
# shellcheck disable=SC2046
bpftool map update pinned "$old/config" key 0 0 0 0 value 0x66 0x74 0x6d 0x73 3 0 0 0 \
    $(yes 0 | head -n $((value_size - 8))) || e2e_die "cannot write the config map"
bpftool map create "$old/syn_flows" type lru_hash key 28 value 8 entries 1024 name syn_flows ||
    e2e_die "cannot create a syn_flows map"
expect_exit 1 "attach over layout-3 maps is refused" fence --pin-dir "$old" attach "$HOST_IF"
check_match "the message names both layout versions" "layout version 3.*layout version 4" "$E2E_OUT"
check_match "and the map that differs" "syn_flows \(key 28 / value 8 bytes, this build: 4 / 64\)" "$E2E_OUT"
check_match "and the way to migrate" "save rules\.txt.*detach.*rm -r $old.*attach.*restore rules\.txt" "$E2E_OUT"
check_eq "nothing was added to that pin dir" "config syn_flows" "$(ls "$old" | xargs)"
check_eq "the interface still runs this instance's program" "$prog_after" "$(status_field '.interfaces[0].program_id')"
expect_exit 1 "opening layout-3 maps for a rule change is refused too" fence --pin-dir "$old" block 198.51.100.0/24
check_match "with the migration" "layout version 3.*migrate" "$E2E_OUT"

old2=$SMTPFENCE_PIN_DIR/oldsize
mkdir -p "$old2"
bpftool map create "$old2/rules_v4" type lpm_trie key 8 value 16 entries 16 name rules_v4 flags 1 ||
    e2e_die "cannot create a rules_v4 map"
expect_exit 1 "attach over a rule map of another value size is refused" fence --pin-dir "$old2" attach "$HOST_IF"
check_match "naming the map and both sizes" "rules_v4 \(key 8 / value 16 bytes, this build: 8 / 40\)" "$E2E_OUT"
check_eq "nothing was added to that pin dir" "rules_v4" "$(ls "$old2")"

e2e_finish
