#!/usr/bin/env bash
# Acceptance check of structured pruning on torchvision CNNs: each model, scripted and traced, pruned
# at ratio 0.3 (L1, stem ignored) on a 1x3xSIDExSIDE input, after random BatchNorm statistics and affine
# parameters (tests/support/random_batch_norm.hpp: torchvision's are identical per channel, which hides a
# BN sliced with wrong indices): forward after save/load with the same output shape, params and MACs
# lower, Python torch.jit.load gives the same outputs, and zero-weight exactness (units chosen by L1,
# their producing weights zeroed, then removed: outputs unchanged). Differences are relative:
# max|a-b| / max|b| (the table prints max|y|, the original's largest output, beside them). It runs the
# unit test case "prune apply: torchvision CNNs..." on the list and prints its rows as a Markdown table.
#
#   bench/check_prune_models.sh [BUILD_DIR] [MODEL ...]
#
# BUILD_DIR defaults to ./build (needs the profagent_torch_tests target); SIDE is $PROFAGENT_PRUNE_INPUT
# (default 224). Exports are cached in BUILD_DIR/tests/torchvision_cache. Exit status: the test's, and
# 1 when the table has no row at all or a model has none (a test that matched nothing must not pass).
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd) || exit 2
shift $(( $# > 0 ? 1 : 0 ))
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(resnet18 resnet50 resnet101 mobilenet_v2 mobilenet_v3_small densenet121 efficientnet_b0)
fi
tests="$build/bin/profagent_torch_tests"
[ -x "$tests" ] || { echo "no $tests: build the profagent_torch_tests target" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
PROFAGENT_PRUNE_MODELS="${models[*]}" PROFAGENT_PRUNE_INPUT="${PROFAGENT_PRUNE_INPUT:-224}" \
  "$tests" -tc='prune apply: torchvision CNNs*' >"$log" 2>&1
status=$?
echo "| model | export | pruned groups | params | MACs | graph s | prune s | BNs randomised | max \|y\| | zero-weight units | zero-weight rel. diff | python rel. diff | warnings | frozen (top 3) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
grep -o 'ROW | .*' "$log" | sed 's/^ROW //'
if ! grep -q 'ROW | ' "$log"; then
  echo "no rows: the test case printed none" >&2
  [ $status -ne 0 ] || status=1
fi
for model in "${models[@]}"; do
  if ! grep -q "ROW | $model |" "$log"; then
    echo "no row for $model: the test case did not run it" >&2
    [ $status -ne 0 ] || status=1
  fi
done
if [ $status -ne 0 ]; then
  echo
  echo "FAILED (exit $status):"
  grep -E "ERROR|FATAL|values|logged|pruning " "$log" | head -40
fi
exit $status
