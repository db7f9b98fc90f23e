#!/usr/bin/python3
"""Exports a torchvision classification model to TorchScript for profagent's `torchvision:` source.

The acquisition agent runs this with a Python that has torch and torchvision (Debian: /usr/bin/python3
with python3-torch and python3-torchvision; elsewhere set PROFAGENT_PYTHON or the agent's `python`
key). It builds the real class, `getattr(torchvision.models, NAME)(weights=None, **kwargs)`, scripts or
traces it in eval mode under torch.no_grad(), stores the input shape in the archive as
`profagent_meta.json` and saves atomically (temp file + os.replace).

    /usr/bin/python3 tools/export_torchvision.py --name resnet18 --kwargs '{"num_classes": 10}' \
        --export trace --input-shape 1x3x224x224 --output /tmp/resnet18.pt

Exit codes: 0 exported; 2 a bad request (unknown model, refused or unknown keyword, bad shape) with a
one-line reason on stderr prefixed "error: "; 3 torch or torchvision cannot be imported; 1 the export
itself failed (the traceback is on stderr). On success one JSON line on stdout describes the file.
"""
import argparse
import difflib
import json
import os
import shutil
import sys
import time

META_FILE = "profagent_meta.json"
# Keywords that would download pretrained weights; there is no network where profagent runs its tests,
# and a silent download of hundreds of MB is not what a `torchvision:` source should do.
DOWNLOAD_KEYWORDS = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")


class RequestError(Exception):
    """A request that cannot be served as given: exit code 2, the message is the whole story."""


def progress(message):
    print(message, file=sys.stderr, flush=True)


def parse_shape(text):
    try:
        dims = [int(part) for part in text.lower().split("x")]
    except ValueError:
        dims = []
    if not dims or any(d <= 0 for d in dims):
        raise RequestError(f"bad input shape '{text}' (expected positive integers joined by 'x', "
                           "e.g. 1x3x224x224)")
    return dims


def model_names(models):
    # list_models (torchvision >= 0.14) names exactly the builders of classification models;
    # older versions: every lower-case callable that is not a helper.
    if hasattr(models, "list_models"):
        return sorted(models.list_models(module=models))
    return sorted(n for n in dir(models)
                  if n[:1].islower() and callable(getattr(models, n)) and not n.startswith("get_"))


def default_input_shape(name, kwargs):
    # A ViT's position embedding fixes its input size; everything else here pools adaptively.
    if name.startswith("vit_") and isinstance(kwargs.get("image_size"), int):
        size = kwargs["image_size"]
        return [1, 3, size, size]
    return [1, 3, 224, 224]


def build(name, kwargs):
    import torchvision.models as models

    names = model_names(models)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else \
            f" (torchvision {__import__('torchvision').__version__} has {len(names)} classification " \
            "models, e.g. resnet50, vit_b_16, swin_t)"
        raise RequestError(f"unknown torchvision model '{name}'{hint}")
    for key in DOWNLOAD_KEYWORDS:
        if key in kwargs:
            raise RequestError(f"'{key}' is refused: pretrained weights cannot be downloaded by profagent; "
                               f"torchvision:{name} is built with random weights (weights=None)")
    try:
        return getattr(models, name)(weights=None, **kwargs)
    except TypeError as error:
        # The builder or the model class rejected a keyword: the caller's mistake, not an export failure.
        raise RequestError(f"torchvision.models.{name} does not accept {json.dumps(kwargs)}: {error}")
    except ValueError as error:
        raise RequestError(f"torchvision.models.{name}(**{json.dumps(kwargs)}) refused its arguments: {error}")


def save_atomically(module, output, extra_files):
    # The archive's inner folder is named after the file, so the temp file sits in a private directory
    # under the final name: the bytes then do not depend on the temp name (reproducible exports).
    output = os.path.abspath(output)
    temp_dir = os.path.join(os.path.dirname(output), f".{os.path.basename(output)}.tmp-{os.getpid()}")
    os.makedirs(temp_dir, exist_ok=True)
    temp = os.path.join(temp_dir, os.path.basename(output))
    try:
        module.save(temp, _extra_files=extra_files)
        os.replace(temp, output)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def main():
    # TorchScript writes a module's constants in Python set order, which string hashing randomizes
    # per process; a fixed hash seed makes the same request write the same bytes.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="a torchvision.models builder, e.g. resnet50")
    parser.add_argument("--kwargs", default="{}", help="keyword arguments of the builder as a JSON object")
    parser.add_argument("--export", choices=("script", "trace"), default="script")
    parser.add_argument("--input-shape", default="", help="e.g. 1x3x224x224 (trace input, and metadata)")
    parser.add_argument("--source", default="", help="the profagent source string, recorded in metadata")
    parser.add_argument("--output", required=True)
    # Hidden: an archive without profagent_meta.json, to test shape probing on a real model.
    parser.add_argument("--no-meta", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    try:
        kwargs = json.loads(args.kwargs)
        if not isinstance(kwargs, dict):
            raise RequestError(f"--kwargs must be a JSON object, got {args.kwargs}")
        shape = parse_shape(args.input_shape) if args.input_shape else default_input_shape(args.name, kwargs)
    except json.JSONDecodeError as error:
        print(f"error: --kwargs is not JSON ({error})", file=sys.stderr)
        return 2
    except RequestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    try:
        import torch
        import torchvision
    except ImportError as error:
        print(f"error: {sys.executable} cannot import torch and torchvision ({error}); use a Python that has "
              "them (Debian: apt install python3-torch python3-torchvision)", file=sys.stderr)
        return 3

    started = time.monotonic()
    torch.manual_seed(0)
    try:
        model = build(args.name, kwargs)
    except RequestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model.eval()
    progress(f"built torchvision.models.{args.name}: "
             f"{sum(p.numel() for p in model.parameters())} parameters; {args.export} ...")

    with torch.no_grad():
        if args.export == "script":
            module = torch.jit.script(model)
        else:
            example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
            module = torch.jit.trace(model, example)
    module.eval()

    meta = {
        "input_shapes": [shape],
        "dtype": "float32",
        "source": args.source or f"torchvision:{args.name}",
        "export": args.export,
        "torchvision_version": torchvision.__version__,
        "torch_version": torch.__version__,
    }
    extra_files = {} if args.no_meta else {META_FILE: json.dumps(meta, sort_keys=True)}
    save_atomically(module, args.output, extra_files)
    seconds = time.monotonic() - started
    progress(f"saved {args.output} ({os.path.getsize(args.output)} bytes) in {seconds:.1f} s")
    print(json.dumps({"path": os.path.abspath(args.output), "seconds": round(seconds, 3),
                      "meta": None if args.no_meta else meta}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
