#!/usr/bin/env bash
# build_and_run.sh BUILD_DIR EXAMPLE_DIR WORK_DIR [RULES_EXAMPLE_DIR]
#
# Installs the build into a staging prefix, then, with nothing from the source tree but the installed
# package:
#   1. builds EXAMPLE_DIR (examples/out_of_tree_plugin, JSON only) with find_package(profagent), runs
#      its unit tests (doctest in the SDK's FakeAgentContext) and its workflow with the installed
#      profagent-run, and describes its LLM backend (fixed_policy);
#   2. builds it again with LibTorch hidden from CMake (CMAKE_DISABLE_FIND_PACKAGE_Torch): the package
#      then gives profagent::sdk alone, the plugin links no LibTorch library, and it still loads and runs;
#   3. with RULES_EXAMPLE_DIR (examples/op_rules_plugin): builds it with
#      find_package(profagent COMPONENTS torch prune profile), makes its model (softshrink between two
#      convs) and runs its workflow (acquisition → pruning → profiler) without and with the plugin:
#      without, the channels through softshrink are frozen and softshrink is unrecognized; with, they
#      are pruned by the plugin's rule and softshrink's MACs are counted by its MAC rule.
set -euo pipefail
build_dir="$1"; example_dir="$2"; work="$3"; rules_dir="${4:-}"
rm -rf "$work"
mkdir -p "$work"
stage="$work/stage"

# The `sdk` component alone is what a plugin author needs: headers, libraries, the CMake package.
cmake --install "$build_dir" --prefix "$stage" --component sdk > "$work/install-sdk.log"
test -f "$stage/lib/cmake/profagent/profagentConfig.cmake"
test -f "$stage/include/profagent/testing/fake_agent_context.hpp"
if [ -e "$stage/bin/profagent-run" ] || [ -d "$stage/lib/profagent/plugins" ]; then
  echo "the sdk component installed the runner or first-party plugins" >&2; exit 1
fi

# 1. A stand-alone project: nothing from the profagent source tree but the installed package.
cmake -S "$example_dir" -B "$work/example-build" -DCMAKE_PREFIX_PATH="$stage" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/example-build" -j 2 > "$work/build.log"
test -f "$work/example-build/plugins/libgreeting.so"
# The plugin's own unit tests, in the SDK's fake context (profagent_add_plugin_test).
ctest --test-dir "$work/example-build" --output-on-failure > "$work/unit-tests.log" || { cat "$work/unit-tests.log" >&2; exit 1; }
grep -q "100% tests passed" "$work/unit-tests.log"

# The runner and the first-party plugins, to run workflows.
cmake --install "$build_dir" --prefix "$stage" --component runtime > "$work/install-runtime.log"
cmake --install "$build_dir" --prefix "$stage" --component plugins > "$work/install-plugins.log"
test -x "$stage/bin/profagent-run"
test -d "$stage/lib/profagent/plugins"

cd "$work"
"$stage/bin/profagent-run" --list-plugins --plugin-path "$work/example-build/plugins" | tee list.txt
grep -q "greeting" list.txt
# Its LLM backend (examples/out_of_tree_plugin/fixed_policy_backend.cpp): a provider of interface "llm".
test -f "$work/example-build/plugins/libfixed_policy.so"
"$stage/bin/profagent-run" --describe llm/fixed_policy --plugin-path "$work/example-build/plugins" | tee describe.txt
grep -q "ratio" describe.txt
"$stage/bin/profagent-run" "$example_dir/workflow.yaml" --plugin-path "$work/example-build/plugins" \
  --output-dir "$work/run" --set name=profagent
grep -q '"HELLO, PROFAGENT! HELLO, PROFAGENT!"' "$work/run/outputs/loud/data.json"
echo "out-of-tree plugin: built against $stage and ran"

# 2. The same plugin with LibTorch hidden: profagent::sdk alone.
cmake -S "$example_dir" -B "$work/example-sdk-only" -DCMAKE_PREFIX_PATH="$stage" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON > "$work/configure-sdk-only.log"
if grep -q '^Torch_DIR:PATH=/' "$work/example-sdk-only/CMakeCache.txt"; then
  echo "LibTorch was found although CMAKE_DISABLE_FIND_PACKAGE_Torch=ON" >&2; exit 1
fi
cmake --build "$work/example-sdk-only" -j 2 > "$work/build-sdk-only.log"
ctest --test-dir "$work/example-sdk-only" --output-on-failure > "$work/unit-tests-sdk-only.log" || { cat "$work/unit-tests-sdk-only.log" >&2; exit 1; }
plugin="$work/example-sdk-only/plugins/libgreeting.so"
test -f "$plugin"
if readelf -d "$plugin" | grep NEEDED | grep -Eq 'torch|c10|profagent_(torch|profile|prune)'; then
  echo "the sdk-only plugin links LibTorch or a torch part of profagent:" >&2
  readelf -d "$plugin" | grep NEEDED >&2; exit 1
fi
readelf -d "$plugin" | grep NEEDED | grep -q 'libprofagent_sdk'
"$stage/bin/profagent-run" "$example_dir/workflow.yaml" --plugin-path "$work/example-sdk-only/plugins" \
  --output-dir "$work/run-sdk-only" --set name=sdk
grep -q '"HELLO, SDK! HELLO, SDK!"' "$work/run-sdk-only/outputs/loud/data.json"
echo "out-of-tree plugin without LibTorch: built against profagent::sdk alone and ran"

[ -n "$rules_dir" ] || exit 0

# 3. Rules for an op no built-in rule knows (aten::softshrink).
cmake -S "$rules_dir" -B "$work/rules-build" -DCMAKE_PREFIX_PATH="$stage" -DCMAKE_BUILD_TYPE=Release > "$work/configure-rules.log"
cmake --build "$work/rules-build" -j 2 > "$work/build-rules.log"
test -f "$work/rules-build/plugins/libsoftshrink_rules.so"
/usr/bin/python3 "$rules_dir/make_model.py" --output "$work/shrink_net.pt"

"$stage/bin/profagent-run" --list-plugins --plugin-path "$work/rules-build/plugins" | tee rules-list.txt
grep -q "extension:profagent.prune.rule/aten::softshrink" rules-list.txt
grep -q "extension:profagent.profile.mac_rule/aten::softshrink" rules-list.txt

"$stage/bin/profagent-run" "$rules_dir/workflow.yaml" --output-dir "$work/rules-without" \
  --set model="$work/shrink_net.pt"
"$stage/bin/profagent-run" "$rules_dir/workflow.yaml" --plugin-path "$work/rules-build/plugins" \
  --output-dir "$work/rules-with" --set model="$work/shrink_net.pt"

/usr/bin/python3 - "$work/rules-without" "$work/rules-with" <<'PY'
import json, sys

def load(run, name):
    with open(f"{run}/outputs/{name}/data.json") as f:
        return json.load(f)

def removed(history, group):
    return sum(len(g["removed"]) for g in history["groups"] if g["name"] == group)

without_run, with_run = sys.argv[1], sys.argv[2]
for run in (without_run, with_run):
    with open(f"{run}/report.json") as f:
        assert json.load(f)["status"] == "completed", run

# Without the plugin: conv1's channels reach conv2 only through softshrink, which has no rule: frozen.
history = load(without_run, "history")
profile = load(without_run, "profile")
assert removed(history, "conv1") == 0, history["groups"]
assert removed(history, "conv2") > 0, history["groups"]  # the rest of the model was pruned
assert any("softshrink" in str(note) for note in history["result"]["frozen"]), history["result"]["frozen"]
assert "shrink" not in profile["kinds"], profile["kinds"]
assert profile["static"]["unrecognized_ops"].get("aten::softshrink") == 1, profile["static"]

# With it: conv1's group loses half its 32 channels through the plugin's pruning rule, and the
# profile counts softshrink's MACs (one per element of its [1, 16, 16, 16] output) by its MAC rule.
history = load(with_run, "history")
profile = load(with_run, "profile")
assert removed(history, "conv1") == 16, history["groups"]
assert not any("softshrink" in str(note) for note in history["result"]["frozen"]), history["result"]["frozen"]
assert profile["kinds"]["shrink"]["macs"] == 16 * 16 * 16, profile["kinds"]
assert "aten::softshrink" not in profile["static"]["unrecognized_ops"], profile["static"]
print("op rules plugin: conv1 pruned through softshrink (16 of 32 channels), softshrink MACs",
      profile["kinds"]["shrink"]["macs"])
PY
echo "op rules plugin: built against $stage with the torch components, pruned and profiled through its rules"
