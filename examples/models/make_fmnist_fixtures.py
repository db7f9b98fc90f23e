#!/usr/bin/python3
"""Exports the untrained architectures of the Fashion-MNIST fixture models, and installs them once
trained by workflows/train_fmnist.yaml as tests/fixtures/models/{resnet,vit}_fmnist.pt.

  export:   a CIFAR-style ResNet for 1x28x28 input (3 stages of 16/32/64 channels, basic blocks,
            1x1-conv projection shortcuts where the shape changes) and a small torchvision
            VisionTransformer (the real class) for 3x28x28 input, scripted with torch.jit.script,
            with their input shape stored in the archive as `profagent_meta.json`.
  install:  copies a finished run's output model into tests/fixtures/models/ and puts the metadata
            back (profagent's model artifacts are saved without extra files).

Run with the Debian python that has torch (python3-torch 1.13, python3-torchvision 0.14):
    /usr/bin/python3 examples/models/make_fmnist_fixtures.py export --output-dir runs/fmnist_init
    /usr/bin/python3 examples/models/make_fmnist_fixtures.py install resnet runs/train_resnet
Weights are seeded and the hash seed fixed, so one torch version writes the same bytes.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "models")

# Fashion-MNIST pixel statistics (training set, after scaling to [0, 1]).
MEAN, STD = 0.2860, 0.3530
CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle boot"]


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet-(6n+2): depth 8, 14, 20 for n = 1, 2, 3."""

    def __init__(self, depth: int = 20, in_channels: int = 1, num_classes: int = 10, widths=(16, 32, 64)):
        super().__init__()
        assert (depth - 2) % 6 == 0, "depth must be 6n+2"
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers = []
        channels = widths[0]
        for stage, width in enumerate(widths):
            stage_blocks = []
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                stage_blocks.append(BasicBlock(channels, width, stride))
                channels = width
            layers.append(nn.Sequential(*stage_blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def make_resnet(args) -> nn.Module:
    return CifarResNet(depth=args.resnet_depth)


def make_vit(args) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=28, patch_size=args.vit_patch, num_layers=args.vit_layers,
                             num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10)


def meta_for(name: str, args) -> dict:
    channels = 1 if name == "resnet" else 3
    if name == "resnet":
        architecture = f"CIFAR-style ResNet-{args.resnet_depth} (16/32/64 channels)"
    else:
        architecture = (f"torchvision VisionTransformer(image_size=28, patch_size={args.vit_patch}, "
                        f"num_layers={args.vit_layers}, num_heads=4, hidden_dim=64, mlp_dim=128, "
                        f"num_classes=10)")
    return {
        "architecture": architecture,
        "input_shapes": [[1, channels, 28, 28]],
        "dtype": "float32",
        "dataset": "fashion-mnist",
        "classes": CLASSES,
        # How inputs must be prepared: pixels scaled to [0, 1], the gray channel replicated to
        # `channels`, then normalized.
        "preprocess": {"channels": channels, "mean": [MEAN] * channels, "std": [STD] * channels},
        "made_by": "examples/models/make_fmnist_fixtures.py",
    }


def save_with_meta(module: torch.jit.ScriptModule, path: str, meta: dict) -> None:
    module.save(path, _extra_files={"profagent_meta.json": json.dumps(meta, sort_keys=True)})
    extra = {"profagent_meta.json": ""}
    loaded = torch.jit.load(path, _extra_files=extra)
    assert json.loads(extra["profagent_meta.json"]) == meta
    example = torch.randn(*meta["input_shapes"][0])
    loaded.eval()
    with torch.no_grad():
        assert loaded(example).shape == (1, 10)


def export(args) -> None:
    os.makedirs(args.output_dir, exist_ok=True)
    for name, make in (("resnet", make_resnet), ("vit", make_vit)):
        torch.manual_seed(args.seed)
        model = make(args)
        model.eval()
        scripted = torch.jit.script(model)
        meta = meta_for(name, args)
        path = os.path.join(args.output_dir, f"{name}_fmnist_init.pt")
        save_with_meta(scripted, path, meta)
        params = sum(p.numel() for p in scripted.parameters())
        print(f"wrote {path}: {os.path.getsize(path)} bytes, {params} parameters")


def install(args) -> None:
    source = os.path.join(args.run_dir, "outputs", "model", "model.pt")
    if not os.path.exists(source):
        sys.exit(f"{source} not found: is {args.run_dir} a completed train_fmnist run?")
    # The metadata comes from the untrained export the run started from.
    extra = {"profagent_meta.json": ""}
    torch.jit.load(args.init_model, _extra_files=extra)
    meta = json.loads(extra["profagent_meta.json"])
    meta["trained_by"] = "workflows/train_fmnist.yaml"
    module = torch.jit.load(source)
    module.eval()
    os.makedirs(FIXTURES, exist_ok=True)
    target = os.path.join(FIXTURES, f"{args.name}_fmnist.pt")
    tmp = target + ".tmp-install"
    save_with_meta(module, tmp, meta)
    shutil.move(tmp, target)
    print(f"wrote {target}: {os.path.getsize(target)} bytes (from {source})")


def main() -> None:
    # TorchScript writes a module's constants in Python set order, which string hashing randomizes
    # per process; a fixed hash seed makes the saved file byte-identical from run to run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ex = commands.add_parser("export", help="write the untrained models")
    ex.add_argument("--output-dir", default=os.path.join(REPO, "runs", "fmnist_init"))
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--resnet-depth", type=int, default=14, choices=[8, 14, 20, 26, 32])
    ex.add_argument("--vit-layers", type=int, default=4)
    ex.add_argument("--vit-patch", type=int, default=7, choices=[4, 7, 14])
    inst = commands.add_parser("install", help="copy a trained model into tests/fixtures/models")
    inst.add_argument("name", choices=["resnet", "vit"])
    inst.add_argument("run_dir", help="the --output-dir of the train_fmnist run")
    inst.add_argument("--init-model", help="the untrained export the run trained (for its metadata); "
                                           "default: runs/fmnist_init/<name>_fmnist_init.pt")
    args = parser.parse_args()
    if args.command == "export":
        export(args)
    else:
        if not args.init_model:
            args.init_model = os.path.join(REPO, "runs", "fmnist_init", f"{args.name}_fmnist_init.pt")
        install(args)


if __name__ == "__main__":
    main()
