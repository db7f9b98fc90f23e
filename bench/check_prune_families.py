"""One row of bench/check_prune_families.sh: reads a run of workflows/prune.yaml and checks its pruned
model in Python (needs torch: Debian's /usr/bin/python3 with python3-torch).

What is compared (the run's `final` evaluation has no dataset, so its only C++ output figures are the
agreement with the original on random inputs: `final.agreement` {max_abs_diff, top1, samples, seed}):
  * Python vs C++: the pruned model file (stages/prune/outputs/model/model.pt) and the original
    (stages/acquire/outputs/model/model.pt) are loaded with torch.jit.load and run on the same random
    inputs as the C++ evaluation (torch.randn from a generator seeded like torch_tk::make_inputs: seed
    `agreement.seed + b` per batch of 256, forwards of batch 1); Python's max|pruned - original| and
    top-1 agreement must equal the C++ figures (max_abs_diff within 1e-4 of max|original output|,
    top-1 within one sample). A mismatch means Python reads a different model than C++ ran.
  * output shape kept: Python's output shape of the pruned model equals the original's.
  * rel. diff: max|pruned - original| / max|original| over those inputs, a sanity figure only (with
    random weights, pruning 30% of the channels changes the outputs completely).
  * original max|y|, spread: the original's largest output and max_i |y_i - y_0| / max|y| over the
    inputs. A spread near 0 means torchvision's random init gives an output that does not depend on
    the input (the features vanish and the classifier's bias is all that is left, e.g. googlenet):
    then the two checks above cannot see what pruning did, and the row says so ("blind").

  check_prune_families.py header
  check_prune_families.py row RUN_DIR MODEL EXPORT RUN_SECONDS RUN_EXIT LOG ANCHORS_MD
Prints one Markdown row; exit 0 when the row is "pruned" with the output shape kept and Python agrees
with C++, 1 otherwise.
"""
import json
import os
import re
import sys
import time

EVALUATION_BATCH_SIZE = 256  # the evaluation agent's default batch_size (agents/evaluation/evaluation_options.hpp)

COLUMNS = ["model", "export", "outcome", "params before → after", "MACs before → after", "MAC −%",
           "Torch-Pruning 1.6.1 MACs", "output shape kept", "Python vs C++ (max\\|diff\\|, top-1)",
           "rel. diff pruned vs original", "original max\\|y\\|, spread", "run s", "check s",
           "largest frozen group besides the model output"]


def cell(text, limit=300):
    text = str(text).replace("\n", " ⏎ ").replace("|", "\\|")
    return text if len(text) <= limit else text[:limit] + " …"


def millions(n):
    return f"{n / 1e6:.2f} M"


def giga(n):
    return f"{n / 1e9:.2f} G"


def anchor_macs(path, model):
    """Torch-Pruning's MACs for `model` from the anchors file's table, or its outcome when it failed."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        return "-"
    for line in lines:
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) >= 4 and parts[0] == model:
            if parts[1] != "ok":
                return parts[1].replace("**", "")
            match = re.match(r"([\d.]+)\s*→\s*([\d.]+)\s*G", parts[3])
            if not match:
                return parts[3]
            before, after = float(match.group(1)), float(match.group(2))
            return f"{parts[3]} (−{100 * (1 - after / before):.0f}%)"
    return "-"


def first_tensor(value):
    """The output C++ compares (torch_tk::select_output with no `output` set): a tensor, else the first
    tensor member of a tuple or list (GoogLeNetOutputs, InceptionOutputs), else dict's out / logits."""
    import torch
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        for key in ("out", "logits"):
            if isinstance(value.get(key), torch.Tensor):
                return value[key]
        value = list(value.values())
    for member in value:
        if isinstance(member, torch.Tensor):
            return member
    raise ValueError(f"the forward returned {type(value).__name__} with no tensor")


def python_check(run_dir, report, stages):
    """Returns (shape_kept, python_vs_cpp, rel_diff, original, agrees) as cells; agrees is True/False."""
    import torch
    pruned_path = os.path.join(run_dir, "stages/prune/outputs/model/model.pt")
    original_path = os.path.join(run_dir, "stages/acquire/outputs/model/model.pt")
    if not os.path.exists(pruned_path):
        return "- (no pruned model)", "-", "-", "-", False
    spec = stages.get("shapes", {}).get("outputs", {}).get("spec", {})
    inputs = spec.get("inputs", [])
    if len(inputs) != 1:
        return "-", f"- ({len(inputs)} inputs: not handled)", "-", "-", False
    shape = inputs[0]["shape"]
    agreement = stages.get("final", {}).get("outputs", {}).get("metrics", {}).get("agreement")
    seed = agreement["seed"] if agreement else 1
    samples = agreement["samples"] if agreement else 8
    try:
        pruned = torch.jit.load(pruned_path).eval()
        original = torch.jit.load(original_path).eval()
    except Exception as error:  # noqa: BLE001 - the message is the result
        return f"no (torch.jit.load failed: {cell(error, 200)})", "-", "-", "-", False
    max_diff, max_ref, same_top1, shape_kept = 0.0, 0.0, 0, True
    first_ref, spread = None, 0.0
    shapes = ""
    with torch.no_grad():
        for b in range(0, samples, EVALUATION_BATCH_SIZE):
            size = min(EVALUATION_BATCH_SIZE, samples - b)
            generator = torch.Generator().manual_seed(seed + b // EVALUATION_BATCH_SIZE)
            batch = torch.randn([size] + list(shape[1:]), generator=generator, dtype=torch.float32)
            for i in range(size):
                x = batch[i:i + 1]
                try:
                    a = first_tensor(pruned(x)).float()
                except Exception as error:  # noqa: BLE001
                    return f"no (forward failed: {cell(error, 200)})", "-", "-", "-", False
                r = first_tensor(original(x)).float()
                if a.shape != r.shape:
                    shape_kept = False
                    shapes = f"{list(a.shape)} vs {list(r.shape)}"
                    break
                max_diff = max(max_diff, (a - r).abs().max().item())
                max_ref = max(max_ref, r.abs().max().item())
                if first_ref is None:
                    first_ref = r
                spread = max(spread, (r - first_ref).abs().max().item())
                if a.dim() >= 2:
                    same_top1 += a.argmax(1).eq(r.argmax(1)).double().mean().item()
            if not shape_kept:
                break
    if not shape_kept:
        return f"no ({shapes})", "-", "-", "-", False
    kept = f"yes ({'x'.join(str(d) for d in r.shape)})"
    rel = f"{max_diff / max_ref:.3g}" if max_ref > 0 else "-"
    blind = max_ref == 0 or spread <= 1e-6 * max_ref
    original = f"{max_ref:.3g}, {spread / max_ref if max_ref > 0 else 0:.2g}" + (" (blind)" if blind else "")
    if not agreement:
        return kept, "- (no C++ agreement: the final evaluation did not run)", rel, original, False
    top1 = same_top1 / samples
    cpp_diff, cpp_top1 = agreement["max_abs_diff"], agreement.get("top1", top1)
    agrees = abs(max_diff - cpp_diff) <= 1e-4 * max(max_ref, 1e-30) and abs(top1 - cpp_top1) <= 1.0 / samples + 1e-9
    verdict = "agrees" if agrees else "DIFFERS"
    figures = f"{verdict}: {max_diff:.6g} vs {cpp_diff:.6g}, {100 * top1:.0f}% vs {100 * cpp_top1:.0f}% ({samples} inputs)"
    return kept, figures, rel, original, agrees


def row(run_dir, model, export, run_seconds, run_exit, log_path, anchors):
    started = time.monotonic()
    try:
        report = json.load(open(os.path.join(run_dir, "report.json")))
    except (OSError, ValueError):
        tail = ""
        try:
            tail = open(log_path, encoding="utf-8", errors="replace").read().strip().splitlines()[-1]
        except (OSError, IndexError):
            pass
        outcome = f"failed: no report.json (exit {run_exit}) {tail}"
        print("| " + " | ".join([model, export, cell(outcome), "-", "-", "-", anchor_macs(anchors, model),
                                 "-", "-", "-", "-", f"{run_seconds:.1f}", "-", "-"]) + " |")
        return 1
    stages = {s["id"]: s for s in report.get("stages", [])}
    # report.json holds a compact history when the full one is large (summary_truncated): read the file.
    try:
        history = json.load(open(os.path.join(run_dir, "stages/prune/outputs/history/data.json"))).get("result", {})
    except (OSError, ValueError):
        history = stages.get("prune", {}).get("outputs", {}).get("history", {}).get("result", {})
    pruning = stages.get("prune", {}).get("outputs", {}).get("model", {}).get("pruning", {})
    figures = history if "macs_after" in history else pruning
    if report.get("status") == "completed":
        outcome = f"pruned ({history.get('pruned_groups', '?')}/{history.get('groups', '?')} groups"
        warnings = history.get("warnings", [])
        outcome += f", {len(warnings)} warnings: {'; '.join(str(w) for w in warnings)})" if warnings else ")"
    else:
        failed = [s for s in report.get("stages", []) if s.get("status") != "completed"]
        where = failed[0]["id"] if failed else "run"
        error = (failed[0].get("error") if failed else None) or report.get("error") or report.get("status", "?")
        # The prune stage's own error is the engine declining the model; any other stage's is a failure.
        outcome = f"{'refused' if where == 'prune' else 'failed'} ({where}): {error}"
    if "macs_after" in figures:
        pb, pa, mb, ma = (figures[k] for k in ("params_before", "params_after", "macs_before", "macs_after"))
        params = f"{millions(pb)} → {millions(pa)}"
        macs = f"{giga(mb)} → {giga(ma)}"
        reduction = f"{100 * (1 - ma / mb):.1f}" if mb else "-"
    else:
        params = macs = reduction = "-"
    frozen = [f for f in history.get("frozen", []) if f.get("reason") != "model output"]
    frozen = max(frozen, key=lambda f: f.get("units", 0), default=None)
    frozen = cell(f"{frozen['units']} units: {frozen['reason']}", 160) if frozen else "-"
    kept, vs_cpp, rel, original, agrees = python_check(run_dir, report, stages)
    check_seconds = time.monotonic() - started
    print("| " + " | ".join([model, export, cell(outcome), params, macs, reduction, anchor_macs(anchors, model),
                             cell(kept), cell(vs_cpp), rel, original, f"{run_seconds:.1f}", f"{check_seconds:.1f}", frozen]) + " |",
          flush=True)
    ok = outcome.startswith("pruned") and kept.startswith("yes") and agrees
    return 0 if ok else 1


def main(argv):
    if argv[1:2] == ["header"]:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        return 0
    if argv[1:2] == ["row"] and len(argv) == 9:
        run_dir, model, export, run_seconds, run_exit, log_path, anchors = argv[2:9]
        import torch
        torch.set_num_threads(int(os.environ.get("PROFAGENT_CHECK_THREADS", "2")))
        return row(run_dir, model, export, float(run_seconds), run_exit, log_path, anchors)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
