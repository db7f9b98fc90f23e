#!/usr/bin/env bash
# Whether a pruned model can be profiled per layer (issue 10 item 2): each model is pruned at 0.3
# through workflows/prune.yaml (no dataset), then the original and the pruned file are profiled through
# workflows/profile.yaml, as a user runs them. Prints one Markdown row per (model, version): layers
# with latency, the share of the latency charged to `(root)` (not to a named layer), the profiled
# p50 of one forward, MACs. Exit status 1 when a pruned model charges more than 5% to `(root)`, a
# run fails, or no row was printed.
#
#   bench/check_pruned_profile.sh [BUILD_DIR] [MODEL ...]     (default: resnet50 vit_b_16)
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd) || exit 2
shift $(( $# > 0 ? 1 : 0 ))
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(resnet50 vit_b_16)
runner="$build/bin/profagent-run"
cache="${PROFAGENT_BENCH_CACHE:-$build/torchvision-cache}"
[ -x "$runner" ] || { echo "no $runner: build the runtime target" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$repo" || exit 2

# One profile's row from its data.json (only the json module: any python3 will do).
row() {
  python3 - "$@" <<'PY'
import json, sys
data_path, model, version = sys.argv[1:4]
data = json.load(open(data_path))
layers = data["layers"]
root = sum(l.get("latency_share", 0.0) for l in layers if l["name"] == "(root)")
timed = sum(1 for l in layers if l.get("latency_ms", 0.0) > 0)
total = data["total"]
print(f"| {model} | {version} | {timed} | {root:.4f} | {1 - root:.4f} | {total['latency_ms']:.2f} | {total['macs'] / 1e9:.2f} G |")
sys.exit(1 if version == "pruned 0.3" and root > 0.05 else 0)
PY
}

echo "| model | version | layers timed | share to (root) | share to named layers | p50 ms | MACs |"
echo "|---|---|---|---|---|---|---|"
status=0 rows=0
for model in "${models[@]}"; do
  source="torchvision:$model"
  if ! "$runner" workflows/prune.yaml -o "$work/$model-prune" --log-level warn \
      --set model="$source" --set dataset={} --set input_shape=[1,3,224,224] --set ratio=0.3 \
      --set repeats=3 >"$work/$model-prune.log" 2>&1; then
    echo "| $model | pruned 0.3 | prune failed: $(tail -1 "$work/$model-prune.log") |"
    status=1
    continue
  fi
  for version in original "pruned 0.3"; do
    file="$source"
    [ "$version" = original ] || file="$work/$model-prune/outputs/model/model.pt"
    out="$work/$model-${version// /-}-profile"
    if ! "$runner" workflows/profile.yaml -o "$out" --log-level warn --set model="$file" \
        --set input_shape=[1,3,224,224] --set repeats=10 >"$out.log" 2>&1; then
      echo "| $model | $version | profile failed: $(tail -1 "$out.log") |"
      status=1
      continue
    fi
    row "$out/outputs/profile/data.json" "$model" "$version" || status=1
    rows=$((rows + 1))
  done
done
[ "$rows" -gt 0 ] || { echo "no rows" >&2; exit 1; }
exit $status
