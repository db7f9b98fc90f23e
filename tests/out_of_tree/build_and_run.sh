#!/usr/bin/env bash
# build_and_run.sh BUILD_DIR EXAMPLE_DIR WORK_DIR
set -euo pipefail
build_dir="$1"; example_dir="$2"; work="$3"
rm -rf "$work"
mkdir -p "$work"
stage="$work/stage"

cmake --install "$build_dir" --prefix "$stage" > "$work/install.log"
test -f "$stage/lib/cmake/profagent/profagentConfig.cmake"
test -x "$stage/bin/profagent-run"

# A stand-alone project: nothing from the profagent source tree but the installed package.
cmake -S "$example_dir" -B "$work/example-build" -DCMAKE_PREFIX_PATH="$stage" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/example-build" -j 2 > "$work/build.log"
test -f "$work/example-build/plugins/libgreeting.so"

cd "$work"
"$stage/bin/profagent-run" --list-plugins --plugin-path "$work/example-build/plugins" | tee list.txt
grep -q "greeting" list.txt
"$stage/bin/profagent-run" "$example_dir/workflow.yaml" --plugin-path "$work/example-build/plugins" \
  --output-dir "$work/run" --set name=profagent
grep -q '"HELLO, PROFAGENT! HELLO, PROFAGENT!"' "$work/run/outputs/loud/data.json"
echo "out-of-tree plugin: built against $stage and ran"
