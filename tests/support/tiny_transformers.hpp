#pragma once
// The tiny torchvision transformers of the pruning tests: a VisionTransformer (28×28, 2 layers, 4
// heads of 8) and a SwinTransformer (32×32, depths [2, 2], heads [2, 4]), scripted and traced,
// exported once per build tree by the Debian Python with random norm affine parameters. Include after
// torch_doctest.hpp.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "model_loader.hpp"
#include "torchvision_source.hpp"

namespace profagent::test {

inline const std::filesystem::path kTinyTransformerCache = std::filesystem::path(PROFAGENT_TEST_BINARY_DIR) / "attention_cache";

// The tiny models, exported once per cache (script and trace of each) by the Debian Python.
// "vit_decomposed": the same ViT whose nn.MultiheadAttention is replaced by self-attention written
// out (Swin's layout, head_dim an attribute of its own): what the fused kernel computes, in ops.
inline const char* kTinyTransformerExport = R"(import sys, os, torch
from typing import Optional, Tuple
from torchvision.models import VisionTransformer
from torchvision.models.swin_transformer import SwinTransformer

class DecomposedSelfAttention(torch.nn.Module):
    def __init__(self, mha):
        super().__init__()
        self.num_heads = mha.num_heads
        self.head_dim = mha.head_dim
        self.in_proj_weight = mha.in_proj_weight
        self.in_proj_bias = mha.in_proj_bias
        self.out_proj = mha.out_proj
    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                need_weights: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        B = query.size(0)
        T = query.size(1)
        qkv = torch.nn.functional.linear(query, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.reshape(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * (float(self.head_dim) ** -0.5)
        attn = torch.softmax(q.matmul(k.transpose(-2, -1)), dim=-1)
        return self.out_proj(attn.matmul(v).transpose(1, 2).reshape(B, T, -1)), None

out = sys.argv[1]
torch.manual_seed(0)
models = {
    "vit": (VisionTransformer(image_size=28, patch_size=7, num_layers=2, num_heads=4, hidden_dim=32,
                              mlp_dim=64, num_classes=10), (1, 3, 28, 28)),
    "swin": (SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2], num_heads=[2, 4],
                             window_size=[4, 4], num_classes=10), (1, 3, 32, 32)),
}
import copy
decomposed = copy.deepcopy(models["vit"][0])
for layer in decomposed.encoder.layers:
    layer.self_attention = DecomposedSelfAttention(layer.self_attention)
models["vit_decomposed"] = (decomposed, (1, 3, 28, 28))
with torch.no_grad():
    for name, (model, shape) in models.items():
        model.eval()
        # Untrained norms are identities: random affine parameters make wrong mappings visible.
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
        torch.jit.script(model).save(os.path.join(out, name + "_script.pt.tmp"))
        torch.jit.trace(model, torch.randn(shape)).save(os.path.join(out, name + "_trace.pt.tmp"))
for f in os.listdir(out):
    if f.endswith(".tmp"):
        os.replace(os.path.join(out, f), os.path.join(out, f[:-4]))
)";

inline torch::jit::Module tiny_model(const std::string& name, const std::string& export_kind) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  const std::filesystem::path file = kTinyTransformerCache / (name + "_" + export_kind + ".pt");
  if (!std::filesystem::exists(file)) {
    std::filesystem::create_directories(kTinyTransformerCache);
    const std::filesystem::path program = kTinyTransformerCache / "export.py";
    std::ofstream(program) << kTinyTransformerExport;
    const std::string command =
        profagent::agents::default_python().string() + " " + program.string() + " " + kTinyTransformerCache.string() + " 2>/dev/null";
    REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "export failed: " << command);
  }
  REQUIRE(std::filesystem::exists(file));
  torch::jit::Module module = torch::jit::load(file.string());
  module.eval();
  return module;
}

inline torch::Tensor vit_input() {
  torch::manual_seed(7);
  return torch::randn({2, 3, 28, 28});
}

inline torch::Tensor swin_input() {
  torch::manual_seed(8);
  return torch::randn({1, 3, 32, 32});
}

}  // namespace profagent::test
