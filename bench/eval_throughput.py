"""PyTorch side of bench_eval_throughput: the same model file, the same Fashion-MNIST test set, the
same preprocessing (scale to [0,1], normalize, optional 1->3 channels) and batch size; prints one
JSON line. Run with /usr/bin/python3 (Debian's python3-torch)."""
import gzip
import json
import sys
import time

import numpy as np
import torch


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    model_path, images_path, labels_path = sys.argv[1:4]
    batch_size, threads, channels, repeats = (int(v) for v in sys.argv[4:8])
    mean, std = float(sys.argv[8]), float(sys.argv[9])
    torch.set_num_threads(threads)
    images = torch.from_numpy(read_idx(images_path).copy()).unsqueeze(1)  # N,1,H,W uint8
    labels = torch.from_numpy(read_idx(labels_path).astype(np.int64))
    model = torch.jit.load(model_path).eval()
    best = None
    correct = 0
    for _ in range(repeats):
        correct = 0
        start = time.perf_counter()
        with torch.no_grad():
            for begin in range(0, images.shape[0], batch_size):
                x = images[begin:begin + batch_size].float().div_(255).sub_(mean).div_(std)
                if channels == 3:
                    x = x.expand(-1, 3, -1, -1).contiguous()
                logits = model(x)
                correct += int((logits.argmax(1) == labels[begin:begin + batch_size]).sum())
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    print(json.dumps({"images_per_s": images.shape[0] / best, "seconds": best,
                      "accuracy": correct / images.shape[0], "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
