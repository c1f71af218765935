#!/usr/bin/env bash
# Runs every test: unit (no privileges), BPF program (bpf_prog_test_run) and
# end-to-end (network namespaces, the real program attached). Needs root for
# the last two. Installs missing Debian packages and builds from a clean
# build directory first, so it works on a fresh Debian 12 machine.
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`; a selection
# that matches no test is an error.
# Strict mode (SMTPFENCE_TESTS_STRICT=1; the default when CI=true, as .ci/run
# sets it): every test that would skip (exit 77, GTEST_SKIP) fails instead,
# and a run in which CTest still reports a skipped test fails, so a tier
# cannot go unrun while the suite stays green.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${CI:-} == true ]]; then
    export SMTPFENCE_TESTS_STRICT=${SMTPFENCE_TESTS_STRICT:-1}
fi
scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON
cmake --build "$build" -j"$(nproc)"
cd "$build"
if [[ ${SMTPFENCE_TESTS_STRICT:-} != 1 ]]; then
    exec ctest --no-tests=error --output-on-failure "$@"
fi
log=$(mktemp /tmp/smtpfence-ctest.XXXXXX)
trap 'rm -f "$log"' EXIT
rc=0
ctest --no-tests=error --output-on-failure "$@" | tee "$log" || rc=$?
# CTest's per-test result is "***Skipped" (exit 77, a GTEST_SKIP) or
# "***Not Run" (nothing to run); its exit status is 0 for either.
if grep -E '\*\*\*(Skipped|Not Run)' "$log" >/dev/null; then
    echo "strict mode (SMTPFENCE_TESTS_STRICT=1): these tests did not run:" >&2
    grep -E '\*\*\*(Skipped|Not Run)' "$log" >&2
    ((rc != 0)) || rc=1
fi
exit "$rc"
