#!/usr/bin/env bash
# The embedded planner vs uniform L1 at 20% and 40% fewer MACs on both Fashion-MNIST fixtures
# (issue 12 acceptance): runs bench/planner_vs_uniform.yaml per (model, target) and prints one
# Markdown row each: MACs removed, accuracy without fine-tuning, latency p50 (the median of three
# alternating measurements) and its fall against the original. Exit 1 when the planner's accuracy
# is not higher than uniform's, when at 40% its latency does not fall more, or when a run fails.
#
#   bench/planner_vs_uniform.sh [BUILD_DIR]        (hold /tmp/profagent-build.lock on a shared machine)
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd) || exit 2
runner="$build/bin/profagent-run"
[ -x "$runner" ] || { echo "no $runner: build the runtime target" >&2; exit 2; }
work=$(mktemp -d)
trap '[ -n "${KEEP_RUNS:-}" ] && cp -r "$work" "$KEEP_RUNS"; rm -rf "$work"' EXIT  # KEEP_RUNS=DIR keeps the runs
cd "$repo" || exit 2
vit_rgb=(--set channels=3 --set 'mean=[0.2860,0.2860,0.2860]' --set 'std=[0.3530,0.3530,0.3530]')

echo "| model | target | side | MACs removed | accuracy | latency p50 ms (median of 3) | latency fall |"
echo "|---|---|---|---|---|---|---|"
status=0
for model in resnet vit; do
  extra=()
  # Both sides keep the group reading the input (the pruning default). For the fixture ViT that is its
  # width (patch embedding), which leaves its 4 MLP groups: at 40% every one of them is at the 0.95 cap
  # and both sides are the same model (bench/results/2026-12-03-planner-vs-uniform.md). With
  # --set ignore_input_layer=false the width group's MACs are mis-estimated by the search (attention)
  # and neither side lands on the target, so that is no equal-MAC comparison either.
  [ "$model" = vit ] && extra=("${vit_rgb[@]}")
  for target in 0.2 0.4; do
    out="$work/$model-$target"
    if ! "$runner" bench/planner_vs_uniform.yaml --set "model=tests/fixtures/models/${model}_fmnist.pt" \
        --set "macs_reduction=$target" "${extra[@]}" --output-dir "$out" >"$out.log" 2>&1; then
      echo "run $model $target failed: $out.log" >&2
      tail -5 "$out.log" >&2
      status=1
      continue
    fi
    python3 - "$out" "$model" "$target" <<'PY' || status=1
import json, sys
out, model, target = sys.argv[1], sys.argv[2], float(sys.argv[3])
def summary(stage, port):
    return json.load(open(f"{out}/stages/{stage}/outputs/{port}/artifact.json"))["summary"]
original = summary("latency_original", "metrics")["latency_ms"]["p50"]
rows = {}
for side in ("plan", "uniform"):
    history = summary(f"prune_{side}", "history")
    accuracy = summary(f"accuracy_{side}", "metrics")["accuracy"]
    latency = sorted(summary(f"latency_{side}_{i}", "metrics")["latency_ms"]["p50"] for i in (1, 2, 3))[1]
    rows[side] = (history["result"]["macs_reduction"], accuracy, latency)
    print(f"| {model} | {target:.0%} | {side} | {rows[side][0]:.3f} | {accuracy:.4f} | {latency:.3f} | "
          f"{1 - latency / original:.3f} |")
base = summary("latency_original", "metrics")
print(f"| {model} | {target:.0%} | original | 0 | {base['accuracy']:.4f} | {original:.3f} | 0 |")
failed = rows["plan"][1] <= rows["uniform"][1] or (target >= 0.4 and rows["plan"][2] >= rows["uniform"][2])
sys.exit(1 if failed else 0)
PY
  done
done
exit $status
