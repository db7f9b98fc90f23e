#!/usr/bin/env bash
# Offline analyze.yaml (embedded planner) on the fixture ResNet and ViT and on torchvision resnet50 and
# vit_b_16 (issue 12 acceptance): each run must give a valid plan (no fallback, every group named) and
# a pruned model at the MAC target. Prints one Markdown row per model: groups offered / pruned, the
# plan's ratio range, MACs before → after, the target and what was reached, seconds. Exit 1 when a run
# fails, falls back, or misses the target.
#
#   bench/check_analyze_models.sh [BUILD_DIR] [MODEL ...]   (default: resnet vit resnet50 vit_b_16)
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd) || exit 2
shift $(( $# > 0 ? 1 : 0 ))
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(resnet vit resnet50 vit_b_16)
runner="$build/bin/profagent-run"
[ -x "$runner" ] || { echo "no $runner: build the runtime target" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$repo" || exit 2
target=0.3

echo "| model | groups offered | groups pruned | ratios | MACs before → after | target | reached | fallback | s |"
echo "|---|---|---|---|---|---|---|---|---|"
status=0
for model in "${models[@]}"; do
  case "$model" in
    resnet) args=(--set model=tests/fixtures/models/resnet_fmnist.pt --set limit=1000) ;;
    vit) args=(--set model=tests/fixtures/models/vit_fmnist.pt --set channels=3 --set 'mean=[0.2860,0.2860,0.2860]'
               --set 'std=[0.3530,0.3530,0.3530]' --set limit=1000) ;;
    *) args=(--set "model=torchvision:$model" --set 'input_shape=[1,3,224,224]' --set dataset={} --set calibration={}) ;;
  esac
  out="$work/$model"
  start=$(date +%s)
  if ! "$runner" workflows/analyze.yaml "${args[@]}" --set macs_reduction=$target --set repeats=5 \
      --output-dir "$out" >"$out.log" 2>&1; then
    echo "| $model | run failed: $(tail -1 "$out.log") |"
    status=1
    continue
  fi
  seconds=$(( $(date +%s) - start ))
  python3 - "$out" "$model" "$target" "$seconds" <<'PY' || status=1
import json, sys
out, model, target, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
plan = json.load(open(f"{out}/outputs/plan/data.json"))
history = json.load(open(f"{out}/outputs/history/data.json"))
evidence = json.load(open(f"{out}/stages/analyse/work/evidence.json"))
ratios = [v["ratio"] for v in plan["pruning"]["layers"].values()]
pruned = sum(1 for g in history["groups"] if g["removed"])
result = history["result"]
fallback = plan["planner"]["fallback"]
print(f"| {model} | {len(evidence['groups'])} | {pruned} | {min(ratios):.2f}–{max(ratios):.2f} | "
      f"{result['macs_before'] / 1e6:.1f} M → {result['macs_after'] / 1e6:.1f} M | {target:.2f} | "
      f"{result['macs_reduction']:.3f} | {fallback} | {seconds} |")
ok = (not fallback and len(ratios) == len(evidence["groups"]) and result["macs_reduction"] >= target - 0.01)
sys.exit(0 if ok else 1)
PY
done
exit $status
