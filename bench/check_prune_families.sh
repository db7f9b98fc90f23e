#!/usr/bin/env bash
# Issue 10 item 4: the shipped pruning workflow on the smallest model of every torchvision 0.14
# classification family, exported both `script` and `trace`, run as a user runs it:
#   profagent-run workflows/prune.yaml --set model='torchvision:NAME?export=KIND' --set ratio=0.3 \
#     --set 'dataset={}' --set 'input_shape=[1,3,224,224]' --set repeats=3 --set limit=8
# (L1, the workflow's defaults otherwise: the layer reading the input is not pruned, unlike
# Torch-Pruning's anchor run; no dataset, so `final` measures agreement with the original on 8 random
# inputs; 3 latency repeats, the latency is not reported here). One Markdown row per (model, export):
# outcome (pruned / refused: the prune stage's error / failed: another stage's error), params and MACs
# before → after (the prune stage's history), the MAC reduction, Torch-Pruning 1.6.1's MACs at ratio 0.3
# from $PROFAGENT_ANCHOR_FIGURES (default /work/shared/ANCHOR_FIGURES.md; "-" where it lacks the model),
# and the Python checks of bench/check_prune_families.py: the pruned model file loaded by
# torch.jit.load gives the original's output shape, and on the C++ evaluation's own random inputs
# (same seed, same generator) Python's max|pruned - original| and top-1 agreement equal the C++
# `final.agreement` figures in report.json; "rel. diff" is max|pruned - original| / max|original|, a
# sanity figure only (random weights: pruning changes the outputs completely); "original max|y|,
# spread" shows whether the original's output depends on the input at all (torchvision's init makes
# some outputs constant, e.g. googlenet's: then these checks are marked "blind"). "run s" is the wall
# time of profagent-run (including the export on first use), "check s" that of the Python check; the
# last column is the largest group the engine left whole besides the model output, and why.
#
#   bench/check_prune_families.sh [BUILD_DIR] [MODEL ...]
#
# BUILD_DIR (taken as such when the first argument is a directory) defaults to ./build and needs the
# `runtime` target. Exports are cached in BUILD_DIR/prune-families-cache/profagent/torchvision (the
# workflow has no cache var, so XDG_CACHE_HOME points there; PROFAGENT_BENCH_CACHE replaces
# BUILD_DIR/prune-families-cache). Runs go to a temporary directory, removed row by row.
# PROFAGENT_ROW_TIMEOUT (seconds, default 1800) bounds one run. Exit status: 1 when any row is not
# "pruned" with the output shape kept and Python agreeing with C++, or when no row was printed; else 0.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build"
if [ $# -gt 0 ] && [ -d "$1" ]; then build=$1; shift; fi
build=$(cd "$build" && pwd) || exit 2
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(alexnet convnext_tiny densenet121 efficientnet_b0 efficientnet_v2_s googlenet inception_v3
          mnasnet0_5 mobilenet_v2 mobilenet_v3_small regnet_x_400mf regnet_y_400mf resnet18 resnext50_32x4d
          shufflenet_v2_x0_5 squeezenet1_1 swin_t vgg11_bn vit_b_16 wide_resnet50_2)
fi
runner="$build/bin/profagent-run"
python=/usr/bin/python3  # Debian's, with python3-torch and python3-torchvision
helper="$repo/bench/check_prune_families.py"
anchors="${PROFAGENT_ANCHOR_FIGURES:-/work/shared/ANCHOR_FIGURES.md}"
cache_home="${PROFAGENT_BENCH_CACHE:-$build/prune-families-cache}"
row_timeout="${PROFAGENT_ROW_TIMEOUT:-1800}"
[ -x "$runner" ] || { echo "no $runner: build the runtime target" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null || { echo "$python cannot import torch (apt install python3-torch)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rows=0
failures=0
run_row() {  # model export
  local model=$1 export=$2 out="$work/run" started ended rc
  rm -rf "$out"
  started=$(date +%s%N)
  (cd "$repo" && XDG_CACHE_HOME="$cache_home" timeout "$row_timeout" "$runner" workflows/prune.yaml \
     --set "model=torchvision:$model?export=$export" --set ratio=0.3 --set 'dataset={}' \
     --set 'input_shape=[1,3,224,224]' --set repeats=3 --set limit=8 --output-dir "$out" >"$work/log" 2>&1)
  rc=$?
  ended=$(date +%s%N)
  "$python" "$helper" row "$out" "$model" "$export" "$(( (ended - started) / 1000000 ))e-3" "$rc" "$work/log" "$anchors" \
    2>"$work/check.err"
  case $? in
    0) ;;
    1) failures=$((failures + 1)) ;;
    *) failures=$((failures + 1))  # the helper itself broke: still a row, so the table stays whole
       echo "| $model | $export | check failed: $(tail -n 1 "$work/check.err" | tr '|' '/') (run exit $rc) | - | - | - | - | - | - | - | - | - | - | - |" ;;
  esac
  rows=$((rows + 1))
  rm -rf "$out"  # each run holds up to three copies of the model
}

"$python" "$helper" header
for model in "${models[@]}"; do
  for export in script trace; do
    run_row "$model" "$export"
  done
done
if [ $rows -eq 0 ]; then echo "no rows" >&2; exit 1; fi
exit $(( failures > 0 ))
