"""One row of bench/check_attention_heads.sh: reads a run of workflows/prune.yaml on a torchvision
transformer and checks, in Python (Debian's /usr/bin/python3 with python3-torch), what pruning did to
every attention block of the pruned model file against the original one (a block of H heads loses
floor(0.3·H) of them: Swin-T's first stage, 3 heads, loses none at 0.3, and is counted apart):
  * heads: nn.MultiheadAttention's in_proj_weight rows / 3 / head_dim and Swin's qkv.weight rows / 3 /
    head_dim, head_dim being the model's (64 for ViT-B/16, 32 for Swin); the pruned model's own
    `head_dim` / `num_heads` attributes, where it has them, must agree;
  * embedding width: the attention's input width (in_proj_weight / qkv.weight columns) and the
    class token / first LayerNorm, which must be unchanged;
  * the pruned model runs in Python on a random input and gives the original's output shape.
MACs come from the prune stage's history. Prints one Markdown row; exit 0 when every block lost heads,
every width is unchanged and the output shape is kept; 1 otherwise.

  check_attention_heads.py header
  check_attention_heads.py row RUN_DIR MODEL EXPORT RUN_SECONDS RUN_EXIT
"""
import json
import os
import sys

RATIO = 0.3  # the workflow's ratio in bench/check_attention_heads.sh; a block of H heads loses floor(0.3 H)
HEAD_DIM = {"vit_b_16": 64, "vit_b_32": 64, "vit_l_16": 64, "swin_t": 32, "swin_s": 32, "swin_b": 32}


def header():
    print("| model | export | outcome | MACs before → after | blocks with heads removed | heads per block "
          "(before → after) | embedding width | output shape kept | run s |")
    print("|---|---|---|---|---|---|---|---|---|")


def attention_blocks(module):
    """(path, heads weight [3·H·D, E], attention module) of every attention block, in order."""
    blocks = []
    for path, sub in module.named_modules():
        names = dict(sub.named_parameters(recurse=False))
        if "in_proj_weight" in names:
            blocks.append((path, names["in_proj_weight"], sub))
        elif path.endswith(".attn") and hasattr(sub, "qkv"):
            blocks.append((path, sub.qkv.weight, sub))
    return blocks


def giga(value):
    return f"{value / 1e9:.2f} G"


def row(run_dir, model, export, run_seconds, run_exit):
    import torch
    name = f"| {model} | {export} | "
    pruned_file = os.path.join(run_dir, "stages/prune/outputs/model/model.pt")
    original_file = os.path.join(run_dir, "stages/acquire/outputs/model/model.pt")
    if run_exit != 0 or not os.path.exists(pruned_file):
        print(name + f"failed (exit {run_exit}) | - | - | - | - | - | {run_seconds} |")
        return 1
    history_file = os.path.join(run_dir, "stages/prune/outputs/history/data.json")
    history = json.load(open(history_file)).get("result", {}) if os.path.exists(history_file) else {}
    macs = f"{giga(history['macs_before'])} → {giga(history['macs_after'])}" if "macs_after" in history else "-"
    original = torch.jit.load(original_file).eval()
    pruned = torch.jit.load(pruned_file).eval()
    head_dim = HEAD_DIM[model]
    before = attention_blocks(original)
    after = dict((path, (weight, sub)) for path, weight, sub in attention_blocks(pruned))
    removed = 0
    eligible = 0  # blocks where the ratio removes at least one head: floor(0.3 · H) > 0
    heads_before, heads_after, widths_kept, attributes_agree = [], [], True, True
    for path, weight, _ in before:
        pruned_weight, sub = after[path]
        h0 = weight.shape[0] // 3 // head_dim
        h1 = pruned_weight.shape[0] // 3 // head_dim
        heads_before.append(h0)
        heads_after.append(h1)
        removed += h1 < h0
        eligible += int(RATIO * h0) > 0
        widths_kept = widths_kept and pruned_weight.shape[1] == weight.shape[1]
        if hasattr(sub, "num_heads") and isinstance(sub.num_heads, int):
            attributes_agree = attributes_agree and sub.num_heads == h1
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        shape_kept = tuple(original(x).shape) == tuple(pruned(x).shape)
    spread = lambda values: f"{min(values)}–{max(values)}" if min(values) != max(values) else str(values[0])
    ok = removed >= eligible and widths_kept and shape_kept and attributes_agree and len(before) > 0
    outcome = "heads pruned" if ok else "NOT all blocks" if removed < eligible else "check failed"
    if not attributes_agree:
        outcome += " (num_heads attribute disagrees)"
    width = f"{before[0][1].shape[1]} kept" if widths_kept else "CHANGED"
    print(name + f"{outcome} | {macs} | {removed}/{len(before)}{'' if eligible == len(before) else f' ({len(before) - eligible} with ⌊0.3·H⌋ = 0)'} | {spread(heads_before)} → {spread(heads_after)} | "
          f"{width} | {'yes' if shape_kept else 'NO'} | {run_seconds} |")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "header":
        header()
        sys.exit(0)
    sys.exit(row(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])))
