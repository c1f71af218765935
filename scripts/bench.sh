#!/usr/bin/env bash
# BENCHMARK, NOT A TEST: measures the per-packet cost of the smtpfence XDP
# program against a parse-only baseline (bench/baseline.bpf.c) with
# BPF_PROG_TEST_RUN, for 0, 1000 and 100000 rules per family, and prints a
# markdown table: block/unlisted/established/non-SMTP packets, and the `limit`
# paths (bucket hit, dropped by rate, key creation with the limiter map far
# from full and full). It asserts only that the verdicts (and, for `limit`,
# the rule counters and limiter keys) are right; it never fails on speed.
# Numbers depend on the machine and its load: compare runs made on the same,
# quiet machine.
#
# Needs root (loads BPF programs, pins maps in a private directory under
# /sys/fs/bpf that it removes when done); builds as the invoking user and runs
# the benchmark through sudo when not root. Attaches nothing to any interface.
# Takes about 2.5 minutes. BUILD_DIR selects the build directory (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
cmake -S . -B "$build"
cmake --build "$build" -j2 --target bench_xdp

bench=("$build/bench/bench_xdp")
if [[ $EUID -ne 0 ]]; then
  bench=(sudo "${bench[@]}")
fi
exec "${bench[@]}"
