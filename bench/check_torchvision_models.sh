#!/usr/bin/env bash
# Acceptance check of the `torchvision:` source and the shape resolver, through profagent-run as a user
# runs it: each model is exported (script and trace), loaded, and its input shape found by probing with
# the stored metadata ignored (use_metadata: false); the demo CNN is checked both ways. One workflow
# run per row (bench/check_torchvision_models.yaml); prints a Markdown table.
#
#   bench/check_torchvision_models.sh [BUILD_DIR] [MODEL ...]
#
# BUILD_DIR defaults to ./build; exports are cached in BUILD_DIR/torchvision-cache (set
# PROFAGENT_BENCH_CACHE to move it; delete it to time cold exports again). A row that fails shows the
# error from the run's report.json. Exit status: 0 when every row passed, 1 otherwise.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd) || exit 2
shift $(( $# > 0 ? 1 : 0 ))
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(resnet18 resnet50 resnet101 mobilenet_v2 densenet121 efficientnet_b0 vit_b_16 swin_t swin_b)
fi
runner="$build/bin/profagent-run"
workflow="$repo/bench/check_torchvision_models.yaml"
cache="${PROFAGENT_BENCH_CACHE:-$build/torchvision-cache}"
[ -x "$runner" ] || { echo "no $runner: build the profagent-run, acquisition and shape_resolver targets" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Reads one run's report.json and prints a table row (only the json module: any python3 will do).
summarize() {
  python3 - "$@" <<'PY'
import json, sys
report_path, label, export, wall = sys.argv[1:5]
try:
    report = json.load(open(report_path))
except OSError:
    print(f"| {label} | {export} | - | - | - | - | - | no report.json | run did not start |")
    sys.exit(1)
stages = {s["id"]: s for s in report.get("stages", [])}
model = stages.get("acquire", {}).get("outputs", {}).get("model", {})
spec = stages.get("shapes", {}).get("outputs", {}).get("spec", {})
if model.get("cached") is None:
    exported = "-"
else:
    exported = "cached" if model["cached"] else f"{model.get('export_seconds', 0):.1f} s"
load_ms = f"{model['loaded_in_ms']:.0f}" if "loaded_in_ms" in model else "-"
params = "-"
if "params" in model:
    params = f"{model['params'] / 1e6:.2f} M" if model["params"] >= 10000 else str(model["params"])
if spec:
    shape = "x".join(str(d) for d in spec["inputs"][0]["shape"])
    ok = [t for t in spec.get("tried", []) if t.get("ok")]
    outputs = "x".join(str(d) for d in spec.get("outputs", [{}])[0].get("shape", []))
    forward = f"yes, {ok[-1]['ms']:.0f} ms → {outputs}" if ok else "not run"
    found = f"{shape} ({spec['source']}, {len(spec.get('tried', []))} tried)"
else:
    found, forward = "-", "-"
error = ""
if report.get("status") != "completed":
    failed = [s for s in report.get("stages", []) if s.get("status") == "failed"]
    error = (failed[0].get("error") if failed else report.get("error")) or report.get("status", "?")
    error = error.replace("\n", " ⏎ ").replace("|", "\\|")
    if len(error) > 400:
        error = error[:400] + " …"
status = "ok" if report.get("status") == "completed" else f"FAILED: {error}"
print(f"| {label} | {export} | {params} | {exported} | {load_ms} | {found} | {forward} | {float(wall):.1f} | {status} |")
sys.exit(0 if report.get("status") == "completed" else 1)
PY
}

run_row() {  # label export source use_metadata
  local label=$1 export=$2 source=$3 use_metadata=$4 out="$work/run-$RANDOM$RANDOM"
  local started ended
  started=$(date +%s%N)
  (cd "$repo" && "$runner" "$workflow" --set "source=$source" --set "use_metadata=$use_metadata" \
     --set "cache_dir=$cache" --output-dir "$out" >"$out.log" 2>&1)
  ended=$(date +%s%N)
  summarize "$out/report.json" "$label" "$export" "$(( (ended - started) / 1000000 ))e-3" || failures=$((failures + 1))
  rm -rf "$out"  # each run keeps a copy of the model (up to 350 MB)
}

failures=0
echo "| model | export | params | export time | load ms | resolved input | forward | run s | status |"
echo "|---|---|---|---|---|---|---|---|---|"
for model in "${models[@]}"; do
  for export in script trace; do
    run_row "$model" "$export" "torchvision:$model?export=$export" false
  done
done
run_row "demo_cnn.pt" "file (metadata ignored)" "examples/models/demo_cnn.pt" false
run_row "demo_cnn.pt" "file (metadata used)" "examples/models/demo_cnn.pt" true
exit $(( failures > 0 ))
