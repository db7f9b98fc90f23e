#!/usr/bin/env bash
# tutorial.sh BUILD_DIR REPO_DIR WORK_DIR
#
# Follows docs/plugins.md's tutorial as an author would, with the installed package only: installs the
# `sdk` component alone to a staging prefix, builds examples/tutorial_plugin (an agent that reads a
# model, and an importance criterion) against it, runs its doctests, then installs the runner and the
# first-party plugins and runs the plugin's agent in its workflow and its criterion in the shipped
# workflows/prune.yaml. The parameter count is checked against Python's torch.jit.load; --validate
# must catch a misspelt criterion id and a bad criterion_config. Prints how long a one-line edit of
# the criterion takes to rebuild (bench/results records it).
set -euo pipefail
build_dir="$1"; repo="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
stage="$work/stage"
src="$work/tutorial"                      # a copy: the rebuild step edits a source file
cp -r "$repo/examples/tutorial_plugin" "$src"

cmake --install "$build_dir" --prefix "$stage" --component sdk > "$work/install-sdk.log"
if [ -e "$stage/bin/profagent-run" ]; then echo "the sdk component installed the runner" >&2; exit 1; fi
cmake -S "$src" -B "$work/build" -DCMAKE_PREFIX_PATH="$stage" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/build" -j 2 > "$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
test -f "$work/build/plugins/libtutorial.so"
ctest --test-dir "$work/build" --output-on-failure > "$work/unit-tests.log" || { cat "$work/unit-tests.log" >&2; exit 1; }
grep -q "100% tests passed" "$work/unit-tests.log"

cmake --install "$build_dir" --prefix "$stage" --component runtime > "$work/install-runtime.log"
cmake --install "$build_dir" --prefix "$stage" --component plugins > "$work/install-plugins.log"
run="$stage/bin/profagent-run"
plugins="$work/build/plugins"
cd "$repo"   # the workflows name fixtures relative to the repository root

"$run" --list-plugins --plugin-path "$plugins" > "$work/list.txt"
grep -q "agent:layer_census" "$work/list.txt"
grep -q "provider:importance/geometric_median" "$work/list.txt"

# The agent in its workflow, checked against Python's own count of the model's parameters.
model=tests/fixtures/models/resnet_fmnist.pt
"$run" examples/tutorial_plugin/workflow.yaml --plugin-path "$plugins" --output-dir "$work/census-run" \
  --set model="$model" > "$work/census.log" 2>&1 || { cat "$work/census.log" >&2; exit 1; }
census="$work/census-run/outputs/census/data.json"
expected=$(/usr/bin/python3 -c "import torch; m = torch.jit.load('$model'); print(sum(p.numel() for p in m.parameters()))")
actual=$(/usr/bin/python3 -c "import json; print(json.load(open('$census'))['params'])")
if [ "$expected" != "$actual" ]; then echo "census counts $actual parameters, torch.jit.load $expected" >&2; exit 1; fi
echo "layer_census: $actual parameters, as torch.jit.load counts"

# The criterion in the shipped pruning workflow (no dataset: the metrics without accuracy).
"$run" workflows/prune.yaml --plugin-path "$plugins" --output-dir "$work/prune-run" \
  --set criterion=geometric_median --set 'criterion_config={normalize: max}' --set 'dataset={}' \
  --set repeats=3 > "$work/prune.log" 2>&1 || { cat "$work/prune.log" >&2; exit 1; }
/usr/bin/python3 - "$work/prune-run/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
text = json.dumps(report)
assert "geometric_median" in text, "the report does not name the criterion"
base, final = report["baseline"]["params"], report["final"]["params"]
assert final < base, f"pruning with geometric_median removed nothing: {base} -> {final}"
print(f"prune.yaml with geometric_median: {base} -> {final} parameters")
PY

# --validate catches a misspelt criterion and a bad criterion_config before anything runs.
set +e
"$run" workflows/prune.yaml --plugin-path "$plugins" --validate --set criterion=geometric_medain > "$work/validate-id.log" 2>&1
rc_id=$?
"$run" workflows/prune.yaml --plugin-path "$plugins" --validate --set criterion=geometric_median \
  --set 'criterion_config={normalize: median}' > "$work/validate-config.log" 2>&1
rc_config=$?
set -e
[ "$rc_id" -eq 2 ] && grep -q "geometric_median" "$work/validate-id.log" || { cat "$work/validate-id.log" >&2; exit 1; }
[ "$rc_config" -eq 2 ] && grep -q "median" "$work/validate-config.log" || { cat "$work/validate-config.log" >&2; exit 1; }

# One line of the criterion edited, rebuilt: the figure docs/plugins.md quotes.
sed -i 's/return distances.sum(1);/return distances.sum(1);  \/\/ edited/' "$src/geometric_median.cpp"
start=$(date +%s.%N)
cmake --build "$work/build" -j 2 --target tutorial > "$work/rebuild.log"
end=$(date +%s.%N)
echo "one-line edit of geometric_median.cpp rebuilt the plugin in $(/usr/bin/python3 -c "print(round($end - $start, 1))") s"
