#!/usr/bin/env bash
# Configures and builds profagent in ./build (or $PROFAGENT_BUILD_DIR). Re-running is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${PROFAGENT_BUILD_DIR:-build}"
JOBS="${PROFAGENT_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" "$@"
cmake --build "$BUILD_DIR" -j "$JOBS"
