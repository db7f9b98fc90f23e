#!/usr/bin/env bash
# Configures ./build (or $PROFAGENT_BUILD_DIR) and builds what the main job needs: profagent-run, the
# SDK libraries and every first-party plugin (target `runtime`). Re-running is incremental.
#   scripts/build.sh            the runtime only
#   scripts/build.sh --all      everything: also the tests and the benchmarks (scripts/test.sh uses it)
# Extra CMake options: PROFAGENT_CMAKE_ARGS="-DPROFAGENT_WERROR=ON" (CI sets it); parallelism:
# PROFAGENT_JOBS (default: the number of cores). Build type: CMAKE_BUILD_TYPE (default Release: no debug
# information, which costs a fifth of the build time; RelWithDebInfo for a debugger).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${PROFAGENT_BUILD_DIR:-build}"
JOBS="${PROFAGENT_JOBS:-$(nproc)}"
TARGET=runtime
if [ "${1:-}" = "--all" ]; then TARGET=all; shift; fi
# ccache (when installed) may reuse objects built with the LibTorch precompiled header.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
# Ninja when installed (scripts/setup.sh installs it): it compiles a library's sources while the
# libraries it links are still building, where Make waits, which keeps both cores busy. An existing
# build directory keeps the generator it was configured with.
GENERATOR=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" ${PROFAGENT_CMAKE_ARGS:-} "$@"
cmake --build "$BUILD_DIR" -j "$JOBS" --target "$TARGET"
