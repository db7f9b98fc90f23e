# The python3-torch side of bench/quantize.cpp: PyTorch's own quantize_dynamic ({nn.Linear}, qint8)
# on the same weights, at one thread, with the same quantized engine; prints one JSON line.
#   /usr/bin/python3 bench/quantize.py MODEL.pt TORCHVISION_NAME C H W REPEATS
# quantize_dynamic needs the eager module: the torchvision class is built and the TorchScript file's
# state_dict loaded into it (same names), so both sides quantize the same weights.
import io, json, os, sys, time
import torch, torchvision

path, name, c, h, w, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(1)
torch.backends.quantized.engine = 'onednn'
scripted = torch.jit.load(path).eval()
model = getattr(torchvision.models, name)()
model.load_state_dict(scripted.state_dict())
model.eval()
q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
buffer = io.BytesIO()
torch.save(q.state_dict(), buffer)
torch.manual_seed(0)
x = torch.randn(1, c, h, w)
out = {"size_bytes": buffer.getbuffer().nbytes}
with torch.no_grad():
    ref = scripted(x)
    try:
        y = q(x)
        out["rel_l2"] = float((y - ref).norm() / ref.norm())
        for _ in range(2):
            q(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            q(x)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        out["p50_ms"] = times[len(times) // 2]
    except Exception as e:  # the issue reports a crash on swin_b
        out["error"] = str(e).splitlines()[0][:200]
print(json.dumps(out))
