#!/usr/bin/env bash
# BENCHMARK, NOT A TEST: measures the per-packet cost of the smtpfence XDP
# program against a parse-only baseline (bench/baseline.bpf.c) with
# BPF_PROG_TEST_RUN, for 0, 1000 and 100000 rules per family, and prints a
# markdown table: block/unlisted/established/non-SMTP packets, a spoofed flood
# (random never-seen sources, blocked and unlisted), and the `limit` paths
# (bucket hit, dropped by rate, key creation with the limiter map far from
# full and full). It asserts only that the verdicts (and, for `limit`, the
# rule counters and limiter keys) are right; it never fails on speed.
# Numbers depend on the machine and its load: compare runs made on the same,
# quiet machine.
#
#   scripts/bench.sh                   the whole benchmark, about 4 minutes
#   scripts/bench.sh --reference REV   the spoofed flood and the repeated
#                                      blocked SYN, REV against this tree
#
# --reference builds REV's program and loader, with this tree's benchmark
# copied over it, in a git worktree under /tmp (removed when done), then runs
# `bench_xdp --spoofed` of REV and of this tree alternately, ROUNDS times each
# (default 2), and prints each row's median fence ns for both and their
# ratio. Absolute times on a shared VM drift by ±30 % between runs: only the
# ratios of one such run count.
#
# Needs root (loads BPF programs, pins maps in a private directory under
# /sys/fs/bpf that it removes when done); builds as the invoking user and runs
# the benchmark through sudo when not root. Attaches nothing to any interface.
# BUILD_DIR selects the build directory (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."

reference=
if [[ $# -gt 0 ]]; then
  if [[ $1 != --reference || $# -ne 2 ]]; then
    echo "usage: scripts/bench.sh [--reference REV]" >&2
    exit 2
  fi
  reference=$2
fi

build=${BUILD_DIR:-build}
cmake -S . -B "$build"
cmake --build "$build" -j2 --target bench_xdp

as_root=()
if [[ $EUID -ne 0 ]]; then
  as_root=(sudo)
fi
if [[ -z $reference ]]; then
  exec "${as_root[@]}" "$build/bench/bench_xdp"
fi

rev=$(git rev-parse --short "$reference^{commit}")
ref_dir=$(mktemp -d /tmp/smtpfence-bench-ref.XXXXXX)
cleanup() {
  git worktree remove --force "$ref_dir/src" 2>/dev/null || true
  rm -rf "$ref_dir"
  git worktree prune
}
trap cleanup EXIT
git worktree add --detach "$ref_dir/src" "$rev" >/dev/null
# The benchmark is this tree's: both programs meet the same frames and rules.
rm -rf "$ref_dir/src/bench"
cp -r bench "$ref_dir/src/bench"
cmake -S "$ref_dir/src" -B "$ref_dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ref_dir/build" -j2 --target bench_xdp >/dev/null

# Table rows of one run, as "label|rules|packet|fence ns|baseline ns".
rows() {
  "${as_root[@]}" "$2" --spoofed | awk -F'|' -v label="$1" '/^\| [0-9]/ {
    for (i = 2; i <= 5; i++) gsub(/^ +| +$/, "", $i)
    print label "|" $2 "|" $3 "|" $4 "|" $5
  }'
}

results=$ref_dir/rows
for ((round = 0; round < ${ROUNDS:-2}; round++)); do
  echo "bench: round $((round + 1)): $rev" >&2
  rows ref "$ref_dir/build/bench/bench_xdp" >>"$results"
  echo "bench: round $((round + 1)): this tree" >&2
  rows new "$build/bench/bench_xdp" >>"$results"
done

echo
echo "smtpfence XDP, $rev against this tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ', modified')),"
echo "bench_xdp --spoofed of each run alternately ${ROUNDS:-2} times; ns = median over the runs of each run's median"
echo
awk -F'|' -v rev="$rev" '
  function median(list,   n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  {
    key = $2 "|" $3
    if (!(key in seen)) { seen[key] = 1; order[++count] = key }
    fence[$1, key] = fence[$1, key] " " $4
    base[$1, key] = base[$1, key] " " $5
  }
  END {
    print "| rules/family | packet | " rev " fence ns | this tree fence ns | " rev " / this tree | " rev " Δ ns | this tree Δ ns |"
    print "|---:|---|---:|---:|---:|---:|---:|"
    for (i = 1; i <= count; i++) {
      key = order[i]
      split(key, k, "|")
      r = median(fence["ref", key]); n = median(fence["new", key])
      rb = median(base["ref", key]); nb = median(base["new", key])
      printf "| %s | %s | %d | %d | %.1f | %+d | %+d |\n", k[1], k[2], r, n, n ? r / n : 0, r - rb, n - nb
    }
  }' "$results"
