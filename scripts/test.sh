#!/usr/bin/env bash
# Runs every test: unit (no privileges), BPF program (bpf_prog_test_run) and
# end-to-end (network namespaces, the real program attached). Needs root for
# the last two. Installs missing Debian packages and builds from a clean
# build directory first, so it works on a fresh Debian 12 machine.
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure "$@"
