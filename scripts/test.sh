#!/usr/bin/env bash
# Sets up, builds and runs every test (the README's test command and what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --test-dir "${PROFAGENT_BUILD_DIR:-build}" --output-on-failure -j "${PROFAGENT_JOBS:-$(nproc)}"
