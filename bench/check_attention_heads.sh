#!/usr/bin/env bash
# Issue 10 item 3: the shipped pruning workflow on torchvision transformers, exported `script` and
# `trace`, run as a user runs it (the workflow's defaults: whole heads, the embedding width kept):
#   profagent-run workflows/prune.yaml --set model='torchvision:NAME?export=KIND' --set ratio=0.3 \
#     --set 'dataset={}' --set 'input_shape=[1,3,224,224]' --set repeats=3 --set limit=8
# then bench/check_attention_heads.py reads the original and pruned model files in Python: heads per
# block before → after, the embedding width, the output shape, and the MACs of the prune history.
#
#   bench/check_attention_heads.sh [BUILD_DIR] [MODEL ...]      (default: vit_b_16 swin_t swin_b)
#
# Exports are cached like bench/check_prune_families.sh's (BUILD_DIR/prune-families-cache, or
# PROFAGENT_BENCH_CACHE). Exit status 1 when a row does not have heads removed in every block with
# the width and output shape kept, or when no row was printed.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build"
if [ $# -gt 0 ] && [ -d "$1" ]; then build=$1; shift; fi
build=$(cd "$build" && pwd) || exit 2
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(vit_b_16 swin_t swin_b)
runner="$build/bin/profagent-run"
python=/usr/bin/python3
cache_home="${PROFAGENT_BENCH_CACHE:-$build/prune-families-cache}"
[ -x "$runner" ] || { echo "no $runner: build the runtime target" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rows=0
failures=0
"$python" "$repo/bench/check_attention_heads.py" header
for model in "${models[@]}"; do
  for export in script trace; do
    out="$work/run"
    rm -rf "$out"
    started=$(date +%s)
    (cd "$repo" && XDG_CACHE_HOME="$cache_home" "$runner" workflows/prune.yaml \
       --set "model=torchvision:$model?export=$export" --set ratio=0.3 --set 'dataset={}' \
       --set 'input_shape=[1,3,224,224]' --set repeats=3 --set limit=8 --output-dir "$out" >"$work/log" 2>&1)
    rc=$?
    "$python" "$repo/bench/check_attention_heads.py" row "$out" "$model" "$export" "$(( $(date +%s) - started ))" "$rc" \
      || failures=$((failures + 1))
    [ $rc -eq 0 ] || tail -n 5 "$work/log" >&2
    rows=$((rows + 1))
    rm -rf "$out"
  done
done
[ $rows -gt 0 ] || { echo "no rows" >&2; exit 1; }
exit $(( failures > 0 ))
