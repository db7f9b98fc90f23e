#!/usr/bin/python3
"""Builds the demo model the README's main workflow compresses: a small real CNN for 1x28x28 input
(Fashion-MNIST sized), scripted with torch.jit.script and saved with its input shape stored in the
archive as `profagent_meta.json`, so shape resolution needs no help from the workflow.

Run from anywhere with the Debian python that has torch (python3-torch):
    /usr/bin/python3 examples/models/make_demo_model.py [--output PATH]
The weights are random but seeded and the hash seed fixed, so one torch version writes the same bytes.
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

META = {
    "input_shapes": [[1, 1, 28, 28]],
    "dtype": "float32",
    "made_by": "examples/models/make_demo_model.py",
}


class DemoCnn(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


def make_model() -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    model = DemoCnn()
    # Non-trivial BatchNorm statistics, so that folding or pruning them is observable downstream.
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
    model.eval()
    return torch.jit.script(model)


def main() -> None:
    # TorchScript writes a module's constants in Python set order, which string hashing randomizes
    # per process; a fixed hash seed makes the saved file byte-identical from run to run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))

    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(here, "demo_cnn.pt"))
    args = parser.parse_args()

    scripted = make_model()
    example = torch.randn(*META["input_shapes"][0])
    out = scripted(example)
    assert out.shape == (1, 10), out.shape

    scripted.save(args.output, _extra_files={"profagent_meta.json": json.dumps(META, sort_keys=True)})

    # Check that what was written loads back, runs and carries its metadata.
    extra = {"profagent_meta.json": ""}
    loaded = torch.jit.load(args.output, _extra_files=extra)
    assert json.loads(extra["profagent_meta.json"]) == META
    assert torch.allclose(loaded(example), out)
    params = sum(p.numel() for p in scripted.parameters())
    print(f"wrote {args.output}: {os.path.getsize(args.output)} bytes, {params} parameters")


if __name__ == "__main__":
    main()
