#!/usr/bin/env bash
# Sets up, builds everything and runs every test (the README's test command and what CI runs).
#   scripts/test.sh              ./build, all tests
#   scripts/test.sh --sanitize   ./build-sanitize with AddressSanitizer + UndefinedBehaviorSanitizer,
#                                the unit and CLI tests (not the out-of-tree install test)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
JOBS="${PROFAGENT_JOBS:-$(nproc)}"
if [ "${1:-}" = "--sanitize" ]; then
  export PROFAGENT_BUILD_DIR="${PROFAGENT_BUILD_DIR:-build-sanitize}"
  PROFAGENT_CMAKE_ARGS="${PROFAGENT_CMAKE_ARGS:-} -DPROFAGENT_SANITIZE=ON -DPROFAGENT_BUILD_BENCH=OFF" \
    scripts/build.sh --all
  # Plugin libraries are kept loaded for the whole process on purpose (docs/architecture.md), and
  # LibTorch's own allocations are not ours to fix: leaks are not checked, every other error is.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
  ctest --test-dir "$PROFAGENT_BUILD_DIR" --output-on-failure -j "$JOBS" -E out_of_tree
  exit
fi
scripts/build.sh --all
ctest --test-dir "${PROFAGENT_BUILD_DIR:-build}" --output-on-failure -j "$JOBS"
