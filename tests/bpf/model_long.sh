#!/usr/bin/env bash
# The model test (tests/bpf/test_model.cpp) for longer than CTest's smoke run:
# RUNS runs of FRAMES frames each, every run with a random seed. A
# disagreement prints the seed, the rule set and the frame as hex, and the
# command that replays it; the script then stops with status 1.
#
#   sudo tests/bpf/model_long.sh [FRAMES] [RUNS]     # defaults: 2000000 frames, 1 run
#
# BPF_TESTS names the test binary (default build/tests/bpf_tests). Needs root.
set -euo pipefail

frames=${1:-2000000}
runs=${2:-1}
bin=${BPF_TESTS:-build/tests/bpf_tests}

if [[ ! -x $bin ]]; then
  echo "model_long: no test binary at $bin: build first (cmake --build build), or set BPF_TESTS" >&2
  exit 2
fi

for ((run = 1; run <= runs; run++)); do
  seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
  echo "model_long: run $run of $runs, seed $seed, $frames frames"
  if ! SMTPFENCE_MODEL_SEED=$seed SMTPFENCE_MODEL_FRAMES=$frames "$bin" --gtest_filter='Model.*' --gtest_brief=1; then
    echo "model_long: the program and the model disagree; replay with" >&2
    echo "  SMTPFENCE_MODEL_SEED=$seed SMTPFENCE_MODEL_FRAMES=$frames $bin --gtest_filter='Model.*'" >&2
    exit 1
  fi
done
