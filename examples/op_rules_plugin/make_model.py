#!/usr/bin/python3
"""Writes the example's model: a small CNN whose forward uses F.softshrink (aten::softshrink) between
two convs, scripted, with its input shape stored in the archive (profagent_meta.json).

    /usr/bin/python3 make_model.py --output shrink_net.pt

stem conv 3→16 (+BN, ReLU; the input layer, which pruning leaves alone) → conv1 16→32 + BN →
softshrink → conv2 32→32 stride 2 + BN + ReLU → global pool → fc 32→10. Input [1, 3, 16, 16].
conv1's 32 channels reach conv2 only through softshrink.
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch import nn

META = {"input_shapes": [[1, 3, 16, 16]], "dtype": "float32", "made_by": "examples/op_rules_plugin/make_model.py"}


class ShrinkNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(16)
        self.conv1 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.stem(x)))
        x = F.softshrink(self.bn1(self.conv1(x)), 0.5)
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="shrink_net.pt")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ShrinkNet().eval()
    scripted = torch.jit.script(model)
    assert "aten::softshrink" in str(scripted.inlined_graph)
    example = torch.randn(*META["input_shapes"][0])
    assert scripted(example).shape == (1, 10)
    scripted.save(args.output, _extra_files={"profagent_meta.json": json.dumps(META, sort_keys=True)})
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
